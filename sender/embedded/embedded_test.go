package embedded_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/salvopush/salvo/loadgen"
	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
	"github.com/salvopush/salvo/sender/diskregistry"
	"github.com/salvopush/salvo/sender/embedded"
	"github.com/salvopush/salvo/sender/transport"
)

// harness is one embedded pipeline against the in-process mock servers over real TLS
// HTTP/2, with a synthetic registry.
type harness struct {
	t       *testing.T
	regSpec loadgen.RegistrySpec
	reg     *diskregistry.Registry
	mock    *mockpush.Server
	sys     *embedded.System
	api     *api.Client
	dir     string // the system's Config.Dir
}

func newHarness(t *testing.T, users int, invalidShare float64) *harness {
	t.Helper()
	return newHarnessOf(t, users, invalidShare, transport.Stock)
}

// newHarnessOf is newHarness with the push transports of kind.
func newHarnessOf(t *testing.T, users int, invalidShare float64, kind transport.Kind) *harness {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	spec := loadgen.RegistrySpec{Users: users, IOSShare: 0.5, InvalidShare: invalidShare, MultiDeviceShare: 0.1, Seed: 7}
	if _, err := loadgen.WriteRegistry(ctx, spec, filepath.Join(dir, "registry")); err != nil {
		t.Fatal(err)
	}
	reg, err := diskregistry.Open(filepath.Join(dir, "registry"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	cfg := mockpush.DefaultConfig()
	cfg.Dir = filepath.Join(dir, "mock")
	cfg.APNsTopic, cfg.FCMProject = loadgen.DefaultAPNsTopic, loadgen.DefaultFCMProject
	cfg.KeepAccepted = true
	mock, err := mockpush.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mock.Close() })
	r := mock.Ready()
	trs, err := transport.Open(ctx, transport.Config{Kind: kind,
		APNs:   transport.APNs{URL: r.APNsURL, KeyFile: r.APNsKeyFile, KeyID: r.APNsKeyID, TeamID: r.APNsTeamID},
		FCM:    transport.FCM{Endpoint: r.FCMURL, ServiceAccountFile: r.FCMServiceAccountFile, ProjectID: r.FCMProjectID},
		CAFile: r.CAFile, Connections: 2, Concurrency: 128})
	if err != nil {
		t.Fatal(err)
	}
	sysDir := filepath.Join(dir, "objects")
	sys, err := embedded.Start(ctx, embedded.Config{Dir: sysDir, Registry: reg,
		Transports: trs,
		Send:       16, Retry: sender.RetryPolicy{Attempts: 10, Base: 20 * time.Millisecond, Max: 500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sys.Close()
		trs.Close()
	})
	return &harness{t: t, regSpec: spec, reg: reg, mock: mock, sys: sys, api: sys.Client(), dir: sysDir}
}

// expectation counts, from the registry and the campaign's spec by loadgen (the control
// group and variants by the rule docs/api.md states, not the sender's code), what a send must
// do: devices to push, of which unregistered, per variant.
type expectation struct {
	send, invalid, controlDevices int
	byVariant                     map[int]int
}

func (h *harness) expect(id string, spec *sender.CampaignSpec) expectation {
	h.t.Helper()
	e, err := loadgen.Expect(h.regSpec.Each, strings.NewReader(strings.Join(spec.Audience.UserIDs, "\n")), expectSpec(id, spec))
	if err != nil {
		h.t.Fatal(err)
	}
	out := expectation{send: int(e.Devices - e.Control), invalid: int(e.Invalid), controlDevices: int(e.Control), byVariant: map[int]int{}}
	for v, n := range e.ByVariant {
		out.byVariant[v] = int(n)
	}
	return out
}

// expectSpec is what loadgen needs of campaign id's spec.
func expectSpec(id string, spec *sender.CampaignSpec) loadgen.ExpectSpec {
	es := loadgen.ExpectSpec{Campaign: id, ControlPercent: spec.ControlPercent}
	for _, v := range spec.Variants {
		es.Variants = append(es.Variants, v.Percent)
	}
	return es
}

// requireDelivered fails the test unless the mock accepted, for campaign id, exactly the
// tokens the registry and spec's audience say it must (worked out by loadgen, without the
// sender's code: every audience device but the control group's and the unregistered ones),
// each once.
func (h *harness) requireDelivered(id string, spec *sender.CampaignSpec) {
	h.t.Helper()
	h.requireDeliveredRepeating(id, spec, 0)
}

// requireDeliveredRepeating is requireDelivered allowing up to maxRepeated accepted requests
// beyond the first for a token (pushes whose answer a fault lost, so that they were sent
// again).
func (h *harness) requireDeliveredRepeating(id string, spec *sender.CampaignSpec, maxRepeated int64) {
	h.t.Helper()
	want, err := loadgen.Expect(h.regSpec.Each, strings.NewReader(strings.Join(spec.Audience.UserIDs, "\n")), expectSpec(id, spec))
	if err != nil {
		h.t.Fatal(err)
	}
	got, err := h.mock.Accepted(id)
	if err != nil {
		h.t.Fatal(err)
	}
	m, err := want.Compare(got)
	if err != nil {
		h.t.Fatal(err)
	}
	if m.Missing != 0 || m.Unexpected != 0 || m.Repeated > maxRepeated || m.Expected == 0 {
		h.t.Errorf("delivered by identity: %d expected, %d missing %q, %d unexpected %q, %d repeated (at most %d)",
			m.Expected, m.Missing, m.MissingExamples, m.Unexpected, m.UnexpectedExamples, m.Repeated, maxRepeated)
	}
}

// drained waits until the range and batch queues hold no message, visible or in flight:
// every push the send will make has been answered, so the mock's counts are final.
func (h *harness) drained() {
	h.t.Helper()
	h.waitFor("queues drained", func() bool {
		r, b := h.sys.Ranges.Stats(), h.sys.Batches.Stats()
		return r.Visible+r.InFlight+b.Visible+b.InFlight == 0
	})
}

// users returns the first n user IDs of the registry (all of them when n <= 0).
func (h *harness) users(n int) []string {
	h.t.Helper()
	var ids []string
	err := h.reg.Each(context.Background(), func(user string, _ []sender.Device) error {
		if n > 0 && len(ids) == n {
			return errStop
		}
		ids = append(ids, user)
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		h.t.Fatal(err)
	}
	return ids
}

var errStop = errors.New("stop")

func silentSpec(users []string) sender.CampaignSpec {
	return sender.CampaignSpec{
		Name:     "test",
		Audience: sender.AudienceSource{UserIDs: users},
		Silent:   true,
		Message: sender.MessageSpec{
			APNs: &sender.APNsSpec{Payload: json.RawMessage(`{"aps":{"content-available":1}}`)},
			FCM:  &sender.FCMSpec{Data: map[string]string{"k": "v"}},
		},
	}
}

// prepare creates the campaign, waits for resolution and for the worker to be ready.
func (h *harness) prepare(id string, spec sender.CampaignSpec) *sender.Status {
	h.t.Helper()
	ctx := context.Background()
	if _, err := h.api.Create(ctx, id, spec); err != nil {
		h.t.Fatal(err)
	}
	var st *sender.Status
	h.waitFor("resolution", func() bool {
		var err error
		st, err = h.api.Status(ctx, id)
		if err != nil {
			h.t.Fatal(err)
		}
		if st.Campaign.State == sender.StateFailed {
			h.t.Fatalf("resolution failed: %s", st.Campaign.Error)
		}
		return st.Campaign.State == sender.StateResolved
	})
	// The resolution spilled its tokens under Dir/resolving and took them away when it ended.
	if left, err := os.ReadDir(filepath.Join(h.dir, "resolving")); err != nil || len(left) != 0 {
		h.t.Errorf("Dir/resolving after the resolution: %v, %v", left, err)
	}
	if err := h.api.Prepare(ctx, id, 1); err != nil {
		h.t.Fatal(err)
	}
	h.waitFor("prepare", func() bool {
		var err error
		st, err = h.api.Status(ctx, id)
		if err != nil {
			h.t.Fatal(err)
		}
		return st.Prepared
	})
	return st
}

// waitSent waits until the workers have finished n recipients.
func (h *harness) waitSent(n int) *sender.SendStats {
	h.t.Helper()
	var st *sender.SendStats
	h.waitFor("send", func() bool {
		st = h.sys.Stats()
		return st.Done() >= int64(n)
	})
	return st
}

// waitFor polls cond; the bound only keeps a broken build from hanging (it asserts nothing
// about speed).
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("%s did not finish", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func rejectedTotal(st *sender.SendStats) int64 {
	var n int64
	for _, c := range st.Rejected {
		n += c
	}
	return n
}

func TestEndToEnd(t *testing.T) {
	h := newHarness(t, 20000, 0.01)
	spec := silentSpec(h.users(0))
	spec.ControlPercent = 10
	spec.Variants = []sender.VariantSpec{{Name: "a", Percent: 45}, {Name: "b", Percent: 45,
		Message: sender.MessageSpec{FCM: &sender.FCMSpec{Data: map[string]string{"variant": "b"}}}}}
	st := h.prepare("e2e", spec)
	want := h.expect("e2e", &spec)
	res := st.Campaign.Resolution
	if int(res.Recipients) != want.send || res.ControlDevices != want.controlDevices {
		t.Fatalf("resolved %d recipients, %d control devices; want %d, %d", res.Recipients, res.ControlDevices, want.send, want.controlDevices)
	}
	if res.ByVariant["a"] != want.byVariant[0] || res.ByVariant["b"] != want.byVariant[1] {
		t.Errorf("by variant %v, want a=%d b=%d", res.ByVariant, want.byVariant[0], want.byVariant[1])
	}
	// The split is within a percentage point of 10/45/45 of the users.
	for name, pct := range map[string]float64{"a": 45, "b": 45} {
		share := float64(res.ByVariant[name]) / float64(want.send+want.controlDevices) * 100
		if share < pct-1.5 || share > pct+1.5 {
			t.Errorf("variant %s got %.1f%% of devices, want %.0f ± 1.5", name, share, pct)
		}
	}
	p, err := h.api.Press(context.Background(), "e2e")
	if err != nil || p.AlreadyPressed {
		t.Fatalf("press = %+v, %v", p, err)
	}
	stats := h.waitSent(want.send)
	h.drained()
	h.requireDelivered("e2e", &spec)
	ms := h.mock.Stats()
	mockUnique := ms.APNs.Unique + ms.FCM.Unique
	if stats.Accepted != int64(want.send-want.invalid) || mockUnique != stats.Accepted {
		t.Errorf("accepted %d, mock unique %d, want %d", stats.Accepted, mockUnique, want.send-want.invalid)
	}
	if got := rejectedTotal(stats); got != int64(want.invalid) {
		t.Errorf("rejected %d (%v), want %d unregistered tokens", got, stats.Rejected, want.invalid)
	}
	if stats.FailedTotal() != 0 || ms.APNs.Duplicates+ms.FCM.Duplicates != 0 {
		t.Errorf("failed %v, mock duplicates %d", stats.Failed, ms.APNs.Duplicates+ms.FCM.Duplicates)
	}
	if stats.Latency.TotalCount() != stats.Accepted {
		t.Errorf("histogram holds %d samples for %d accepted", stats.Latency.TotalCount(), stats.Accepted)
	}
	// Every permanently rejected token is in the feedback files.
	if err := h.sys.Workers[0].FlushFeedback(context.Background()); err != nil {
		t.Fatal(err)
	}
	keys, err := h.sys.Objects.List(context.Background(), "campaigns/e2e/feedback/")
	if err != nil || len(keys) == 0 {
		t.Fatalf("feedback files: %v, %v", keys, err)
	}
	rows := 0
	for _, k := range keys {
		b, _ := h.sys.Objects.Get(context.Background(), k)
		for _, c := range b {
			if c == '\n' {
				rows++
			}
		}
		rows-- // header
	}
	if rows != want.invalid {
		t.Errorf("feedback rows %d, want %d", rows, want.invalid)
	}
}

func TestConcurrentPressesSendOnce(t *testing.T) {
	h := newHarness(t, 5000, 0)
	spec := silentSpec(h.users(0))
	st := h.prepare("press", spec)
	if st.Campaign.Resolution.Recipients < 5000 {
		t.Fatalf("resolved %d recipients for 5000 users", st.Campaign.Resolution.Recipients)
	}
	var wg sync.WaitGroup
	answers := make([]*sender.PressResult, 20)
	gate := make(chan struct{})
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			var err error
			if answers[i], err = h.api.Press(context.Background(), "press"); err != nil {
				t.Error(err)
			}
		}()
	}
	close(gate)
	wg.Wait()
	started := 0
	for _, a := range answers {
		if a == nil {
			t.FailNow()
		}
		if a.SendID != answers[0].SendID {
			t.Fatalf("different send IDs: %s, %s", a.SendID, answers[0].SendID)
		}
		if !a.AlreadyPressed {
			started++
		}
	}
	if started != 1 {
		t.Fatalf("%d presses started a send, want 1", started)
	}
	n := int(st.Campaign.Resolution.Recipients)
	h.waitSent(n)
	// A late press is a no-op too.
	if a, err := h.api.Press(context.Background(), "press"); err != nil || !a.AlreadyPressed || a.SendID != answers[0].SendID {
		t.Fatalf("late press = %+v, %v", a, err)
	}
	h.drained() // anything wrongly queued has been pushed by now
	h.requireDelivered("press", &spec)
	ms := h.mock.Stats()
	if got := ms.APNs.Received + ms.FCM.Received; got != int64(n) {
		t.Errorf("mock received %d, want %d", got, n)
	}
	if d := ms.APNs.Duplicates + ms.FCM.Duplicates; d != 0 {
		t.Errorf("mock duplicates %d", d)
	}
}

func TestRedeliveredBatchesPushNobodyTwice(t *testing.T) {
	h := newHarness(t, 5000, 0.02)
	spec := silentSpec(h.users(0))
	st := h.prepare("redeliver", spec)
	n := st.Campaign.Resolution.Recipients
	p, err := h.api.Press(context.Background(), "redeliver")
	if err != nil {
		t.Fatal(err)
	}
	// Every range message again, as if a fan-out worker died before deleting them: each
	// batch message then arrives twice, mostly while the first copy is in flight.
	var again []sender.OutMessage
	for i := uint32(0); i < 5; i++ {
		body, _ := json.Marshal(sender.RangeMessage{Campaign: "redeliver", Send: p.SendID, PressedAt: p.PressedAt.UnixNano(),
			Start: n * i / 5, End: n * (i + 1) / 5})
		again = append(again, sender.OutMessage{Body: body, GroupID: fmt.Sprint("again", i), DedupID: fmt.Sprint("again", i)})
	}
	if err := h.sys.Ranges.Send(context.Background(), again); err != nil {
		t.Fatal(err)
	}
	stats := h.waitSent(int(n))
	h.drained()
	h.requireDelivered("redeliver", &spec)
	ms := h.mock.Stats()
	if got := ms.APNs.Received + ms.FCM.Received; got != int64(n) {
		t.Errorf("mock received %d pushes for %d recipients", got, n)
	}
	if d := ms.APNs.Duplicates + ms.FCM.Duplicates; d != 0 {
		t.Errorf("mock duplicates %d", d)
	}
	if stats.Done() != int64(n) {
		t.Errorf("workers finished %d recipients, want %d", stats.Done(), n)
	}
}

// TestTransientFaultsLoseNothing sends through the whole pipeline, with each transport, while
// the mock answers 503 and 429 (with Retry-After) to some pushes, sends GOAWAY on APNs and
// resets FCM connections now and then: everyone accepted, once; except that a reset may cut
// off the answers of pushes the mock had accepted, which are then pushed again: at most the
// pushes in flight (128) per reset.
func TestTransientFaultsLoseNothing(t *testing.T) {
	for _, kind := range transport.Kinds() {
		t.Run(string(kind), func(t *testing.T) { transientFaultsLoseNothing(t, kind) })
	}
}

func transientFaultsLoseNothing(t *testing.T, kind transport.Kind) {
	h := newHarnessOf(t, 10000, 0.01, kind)
	faults := mockpush.Faults{Seed: 3,
		APNs: mockpush.PlatformFaults{Errors: []mockpush.ErrorFault{{Reason: "ServiceUnavailable", Rate: 0.05}, {Reason: "TooManyRequests", Rate: 0.01, RetryAfterSeconds: 1}},
			GoAwayAfterStreams: 700},
		FCM: mockpush.PlatformFaults{Errors: []mockpush.ErrorFault{{Reason: "UNAVAILABLE", Rate: 0.05}, {Reason: "QUOTA_EXCEEDED", Rate: 0.01, RetryAfterSeconds: 1}},
			ResetAfterStreams: 900},
	}
	if err := h.mock.SetFaults(faults); err != nil {
		t.Fatal(err)
	}
	spec := silentSpec(h.users(0))
	st := h.prepare("faults", spec)
	want := h.expect("faults", &spec)
	if _, err := h.api.Press(context.Background(), "faults"); err != nil {
		t.Fatal(err)
	}
	stats := h.waitSent(int(st.Campaign.Resolution.Recipients))
	h.drained()
	ms := h.mock.Stats()
	resets := ms.FCM.Rejected["ConnectionReset"]
	if resets == 0 {
		t.Error("no FCM connection was reset")
	}
	h.requireDeliveredRepeating("faults", &spec, resets*128)
	if stats.FailedTotal() != 0 {
		t.Errorf("failed %v (transient %v)", stats.Failed, stats.Transient)
	}
	if stats.Accepted != int64(want.send-want.invalid) || ms.APNs.Unique+ms.FCM.Unique != stats.Accepted {
		t.Errorf("accepted %d, mock unique %d, want %d", stats.Accepted, ms.APNs.Unique+ms.FCM.Unique, want.send-want.invalid)
	}
	if stats.Retries == 0 {
		t.Error("no retries recorded under a 6% error rate")
	}
	if ms.APNs.Duplicates != 0 || ms.FCM.Duplicates > resets*128 {
		t.Errorf("mock duplicates: APNs %d, FCM %d after %d resets (transient %v)", ms.APNs.Duplicates, ms.FCM.Duplicates,
			resets, stats.Transient)
	}
	t.Logf("FCM: %d resets, %d duplicates", resets, ms.FCM.Duplicates)
}

func TestBadInputIsRefusedAndLosesNothing(t *testing.T) {
	h := newHarness(t, 2000, 0)
	ctx := context.Background()
	fieldOf := func(err error) (int, string) {
		var ae *api.APIError
		if !errors.As(err, &ae) {
			t.Fatalf("want an API error, got %v", err)
		}
		return ae.Status, ae.Field
	}
	// A good campaign first: later bad requests must not disturb it.
	good := silentSpec(h.users(0))
	st := h.prepare("good", good)

	if err := h.api.PutObject(ctx, "aud/bad.csv", []byte("user_id\nu1\n\nu2,extra\n")); err != nil {
		t.Fatal(err)
	}
	oversized := silentSpec([]string{"u1"})
	oversized.Message.APNs.Payload = json.RawMessage(`{"aps":{},"x":"` + strings.Repeat("x", 5000) + `"}`)
	tests := []struct {
		name   string
		call   func() error
		status int
		field  string
	}{
		// A malformed audience file names its line.
		{"bad audience line", func() error {
			s := silentSpec(nil)
			s.Audience = sender.AudienceSource{Object: "aud/bad.csv"}
			_, err := h.api.Create(ctx, "", s)
			return err
		}, 400, "audience line 4"},
		// A missing audience object is named.
		{"missing audience object", func() error {
			s := silentSpec(nil)
			s.Audience = sender.AudienceSource{Object: "aud/none.csv"}
			_, err := h.api.Create(ctx, "", s)
			return err
		}, 400, "audience.object"},
		// An oversized payload is refused before anything is sent.
		{"oversized payload", func() error { _, err := h.api.Create(ctx, "", oversized); return err }, 400, "message.apns.payload"},
		// A push type no provider knows is refused.
		{"unknown push type", func() error {
			s := silentSpec([]string{"u1"})
			s.Message.APNs.PushType = "fax"
			_, err := h.api.Create(ctx, "", s)
			return err
		}, 400, "message.apns.push_type"},
		// An existing campaign ID cannot be reused.
		{"duplicate id", func() error { _, err := h.api.Create(ctx, "good", good); return err }, 400, "id"},
		// An unknown campaign is 404.
		{"unknown campaign", func() error { _, err := h.api.Status(ctx, "nope"); return err }, 404, ""},
		// GO on an unknown campaign is 404.
		{"go unknown", func() error { _, err := h.api.Press(ctx, "nope"); return err }, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, field := fieldOf(tt.call())
			if status != tt.status || field != tt.field {
				t.Errorf("got %d field %q, want %d field %q", status, field, tt.status, tt.field)
			}
		})
	}
	// GO before prepare is refused with 409 and a reason.
	if _, err := h.api.Create(ctx, "early", silentSpec(h.users(100))); err != nil {
		t.Fatal(err)
	}
	h.waitFor("early resolution", func() bool {
		s, err := h.api.Status(ctx, "early")
		return err == nil && s.Campaign.State == sender.StateResolved
	})
	if _, err := h.api.Press(ctx, "early"); err == nil {
		t.Fatal("GO before prepare was accepted")
	} else if status, _ := fieldOf(err); status != 409 {
		t.Errorf("GO before prepare: status %d, want 409", status)
	}
	// The good campaign still sends everything.
	if _, err := h.api.Press(ctx, "good"); err != nil {
		t.Fatal(err)
	}
	n := int(st.Campaign.Resolution.Recipients)
	stats := h.waitSent(n)
	if stats.Accepted != int64(n) {
		t.Errorf("accepted %d of %d", stats.Accepted, n)
	}
}
