package results

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/salvopush/salvo/sender/metrics"
)

// gamedayInputs is a rehearsal of 100 iOS and 100 Android recipients, all accepted within
// a second, 20 pushes per 100 ms per provider (200 per second), with a cap of rate.
func gamedayInputs(t *testing.T, rate float64, aborted bool) Inputs {
	t.Helper()
	all := metrics.NewLatencyHistogram()
	tl := metrics.NewTimeline(0)
	providers := map[string]ProviderInputs{}
	for _, name := range []string{"apns", "fcm"} {
		h := metrics.NewLatencyHistogram()
		pushes := metrics.NewTimeline(0)
		for i := range 100 {
			d := time.Duration(i/20)*100*time.Millisecond + time.Millisecond
			metrics.RecordLatency(h, d)
			metrics.RecordLatency(all, d)
			pushes.Add(d, true)
			tl.Add(d, true)
		}
		providers[name] = ProviderInputs{Recipients: 100, Accepted: 100, Rejected: map[string]int64{}, Latency: h, Pushes: pushes}
	}
	return Inputs{Scenario: "gameday rehearsal-1", StartedAt: time.Unix(1_800_000_000, 0), Mode: ModeGameday, Aborted: &aborted,
		Audience: Audience{Recipients: 200, IOS: 100, Android: 100}, Delivery: Delivery{Accepted: 200},
		Latency: all, Timeline: tl, Providers: providers, Criteria: Criteria{MaxRatePerS: rate},
		Notes: []string{"Acceptance by a provider is not display on a device."}}
}

func TestBuildGameday(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		rate    float64
		aborted bool
		fails   []string // substrings of the expected failures, in order; none: a pass
	}{
		// 100 pushes in the busiest second per provider, under a cap of 100 (allowed 110).
		{"within the cap", 100, false, nil},
		// No cap: nothing to hold.
		{"no cap", 0, false, nil},
		// A cap of 80 allows 88: 100 is over.
		{"over the cap", 80, false, []string{"rate: apns saw 100 pushes", "rate: fcm saw 100 pushes"}},
		// An aborted run fails, whatever it delivered.
		{"aborted", 0, true, []string{"aborted: an operator stopped the run"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := Build(gamedayInputs(t, tc.rate, tc.aborted))
			if len(r.Failures) != len(tc.fails) {
				t.Fatalf("failures %q, want %d matching %q", r.Failures, len(tc.fails), tc.fails)
			}
			for i, f := range tc.fails {
				if !strings.Contains(r.Failures[i], f) {
					t.Errorf("failure %d = %q, want it to contain %q", i, r.Failures[i], f)
				}
			}
			if r.Pass != (len(tc.fails) == 0) {
				t.Errorf("pass %v with failures %q", r.Pass, r.Failures)
			}
			p := r.Providers["fcm"]
			if p.PushesPeak1s != 100 || p.Milestones.All < 401 || p.Milestones.All > 402 || !p.TargetMet {
				t.Errorf("fcm figures %+v", p)
			}
		})
	}
}

// TestGamedayReportShape: a rehearsal's report.json says mode gameday and aborted (false
// too), has no mock object, and its report.md carries the notes and the per-provider table.
func TestGamedayReportShape(t *testing.T) {
	t.Parallel()
	in := gamedayInputs(t, 0, false)
	r := Build(in)
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil {
		t.Fatal(err)
	}
	if string(top["mode"]) != `"gameday"` || string(top["aborted"]) != "false" {
		t.Errorf("mode %s aborted %s", top["mode"], top["aborted"])
	}
	if _, ok := top["mock"]; ok {
		t.Error("a gameday report has a mock object")
	}
	var md bytes.Buffer
	if err := writeReportMD(&md, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Mode: **gameday**", "Acceptance by a provider is not display on a device.", "## Per provider", "| fcm "} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	bench := Build(Inputs{Audience: in.Audience, Delivery: in.Delivery, Latency: in.Latency})
	if js, _ := json.Marshal(bench); bytes.Contains(js, []byte(`"mode"`)) || bytes.Contains(js, []byte(`"aborted"`)) {
		t.Error("a benchmark report carries gameday fields")
	}
}
