package scenarios

import (
	"bytes"
	"context"

	"github.com/salvopush/salvo/loadgen"
	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/results"
	"github.com/salvopush/salvo/sender"
)

// maxIdentityAudience bounds the audiences whose delivered tokens a run compares one by one
// with the expected ones. Keeping every accepted token costs the mock memory (about 110 bytes
// a token) and CPU (BenchmarkConnAccepted on a 2-core machine: about 330 CPU-ns per accepted
// request without, 410 to 690 with), CPU it takes from the sender it shares the machine with:
// so the correctness-sized runs (ci, chaos, double-press, reliability, redelivery,
// worker-kill, cloud-scale, the sweep) compare tokens, and the speed benchmarks (throughput,
// audience, transport-compare, burst-4m, the gate's 300,000-user workload) are judged on
// counts alone, their reports without an identity object.
const maxIdentityAudience = 100_000

// checksIdentity says whether a run of p compares tokens one by one.
func checksIdentity(p Params) bool { return p.Audience <= maxIdentityAudience }

// identityOf compares what the mock accepted for campaign id with what the synthetic
// registry of p and the uploaded audience say the send had to deliver, worked out by
// loadgen without the sender's code.
func identityOf(ctx context.Context, ctl *mockpush.Control, p Params, id string, audience []byte) (*results.Identity, error) {
	spec := loadgen.ExpectSpec{Campaign: id, ControlPercent: p.ControlPercent, Variants: p.Variants}
	switch p.Message {
	case "fcm-only":
		spec.Platforms = []sender.Platform{sender.PlatformAndroid}
	case "apns-only":
		spec.Platforms = []sender.Platform{sender.PlatformIOS}
	}
	want, err := loadgen.Expect(registrySpec(p).Each, bytes.NewReader(audience), spec)
	if err != nil {
		return nil, setupErr("identity: %v", err)
	}
	got, err := ctl.Accepted(ctx, id)
	if err != nil {
		return nil, setupErr("identity: %v", err)
	}
	m, err := want.Compare(got)
	if err != nil {
		return nil, setupErr("identity: %v", err)
	}
	out := &results.Identity{Expected: m.Expected, Accepted: m.Accepted, Matched: m.Matched, Missing: m.Missing,
		Unexpected: m.Unexpected, Invalid: want.Invalid, Control: want.Control}
	for _, t := range m.MissingExamples {
		out.Examples = append(out.Examples, "missing "+t)
	}
	for _, t := range m.UnexpectedExamples {
		out.Examples = append(out.Examples, "unexpected "+t)
	}
	return out, nil
}
