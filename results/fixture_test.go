package results

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/salvopush/salvo/sender/metrics"
)

// fixtureMachine replaces the machine Build reads from the runtime, so that golden files
// do not depend on where the tests run.
func fixtureMachine() Machine {
	return Machine{CPUs: 2, Go: "go1.26.8", OS: "linux", Arch: "amd64"}
}

// fixture returns the inputs of a deterministic synthetic run of n recipients: sends ramp
// over about 3.5 s after a 50 ms start, with jitter and a small slow tail; 0.5% of the
// recipients are Unregistered and 0.1% BadDeviceToken, and 1% are a control group.
func fixture(n int64, seed uint64) Inputs {
	// Only PCG's own output is used: its sequence is specified, so golden files stay put.
	rng := rand.NewPCG(seed, 7)
	uniform := func() float64 { return float64(rng.Uint64()>>11) / (1 << 53) }
	h := metrics.NewLatencyHistogram()
	tl := metrics.NewTimeline(metrics.DefaultStep)
	control := n / 100
	unregistered, badToken := n/200, n/1000
	sent := n - control
	var accepted int64
	for i := int64(0); i < sent; i++ {
		d := 50*time.Millisecond + time.Duration(float64(i)/float64(sent)*3.5*float64(time.Second))
		d += time.Duration(-math.Log(1-uniform()) * float64(20*time.Millisecond))
		if rng.Uint64()%200 == 0 {
			d += time.Duration(uniform() * float64(1500*time.Millisecond))
		}
		if i%200 == 199 && unregistered > 0 || i%1000 == 998 && badToken > 0 {
			tl.Add(d, false)
			continue
		}
		metrics.RecordLatency(h, d)
		tl.Add(d, true)
		accepted++
	}
	rejected := map[string]int64{"Unregistered": 0, "BadDeviceToken": 0}
	for i := int64(0); i < sent; i++ {
		switch {
		case i%200 == 199:
			rejected["Unregistered"]++
		case i%1000 == 998:
			rejected["BadDeviceToken"]++
		}
	}
	ios := n / 2
	return Inputs{
		Scenario:  "throughput",
		StartedAt: time.Date(2026, 11, 22, 1, 2, 3, 456, time.UTC),
		Config: Config{Audience: n, IOSShare: 0.5, Transport: "mock-http2", Workers: 2,
			Extra: map[string]any{"connections_per_worker": 4, "silent": true}},
		Audience: Audience{Recipients: n, IOS: ios, Android: n - ios, Control: control},
		Delivery: Delivery{Accepted: accepted, Rejected: rejected, Retries: 12},
		Mock:     &Mock{Received: sent + 12, Unique: accepted, Duplicates: 0},
		Latency:  h,
		Timeline: tl,
		Resources: Resources{SenderCPUSeconds: 1.75, SenderPeakRSSBytes: 96 << 20, MockCPUSeconds: 2.5,
			PrepareMs: 420, ResidentBytesPerRecipient: 212.5},
		Target:   Target{Seconds: 5, Percentile: 99},
		Criteria: Criteria{RequireTarget: true},
		Faults: map[string]any{
			"apns": map[string]any{"status_503_rate": 0.01, "retry_after": "1s"},
			"fcm":  map[string]any{"status_429_rate": 0.02},
		},
	}
}
