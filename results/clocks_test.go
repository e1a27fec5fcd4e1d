package results

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// clockRun is smallRun (8 accepted of 8 deliverable) with the sender's samples and the mock's
// receipts at the given ms: p50 is the 4th of each, p95, p99 and all the 8th.
func clockRun(sender, mock []int64) func(in *Inputs) {
	return func(in *Inputs) {
		in.Latency = histOf(sender...)
		in.MockArrivals = histOf(mock...)
	}
}

// ramp returns 8 values, step apart, the 4th at p50 and the 8th at last.
func ramp(p50, last int64) []int64 {
	return []int64{p50 - 300, p50 - 200, p50 - 100, p50, last - 300, last - 200, last - 100, last}
}

func TestClockCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(in *Inputs)
		judged bool
		fails  []string // substrings of the clock failures, in order; none: no clock failure
		reason string   // a substring of milestone_check.reason; "" for none
	}{
		// The mock's receipts a few ms before the sender read the answers: agreement.
		{"agreeing clocks", clockRun(ramp(1000, 2000), ramp(998, 1997)), true, nil, ""},
		// At p50 = 1,000 ms the allowance is 50 + 10 = 60 ms: 55 ms is inside (more than the
		// fixed 50 ms: the 1% counts)...
		{"55 ms at 1 s is inside", clockRun(ramp(1055, 2000), ramp(1000, 2000)), true, nil, ""},
		// ...and 75 ms outside: the sender early fails (no answer comes before its request
		// arrived)...
		{"sender 75 ms early at 1 s fails", clockRun(ramp(925, 2000), ramp(1000, 2000)), true,
			[]string{"truth: milestones_ms.p50 925.2 ms by the sender's clock and 1,000 ms by the mock's receipts differ by 75.3 ms, more than the 60 ms allowed (50 ms + 1% of the later)"}, ""},
		// ...the sender late is stated (over_allowance, notes), not failed.
		{"sender 75 ms late at 1 s is stated", clockRun(ramp(1075, 2000), ramp(1000, 2000)), true, nil, ""},
		// At 20 s the 1% is 200 ms: 240 ms early is inside the 250 ms allowed, 280 ms is not
		// (at p95, p99 and all, the 8th sample).
		{"240 ms early at 20 s is inside", clockRun(ramp(1000, 20000), ramp(1000, 20240)), true, nil, ""},
		{"280 ms early at 20 s fails", clockRun(ramp(1000, 20000), ramp(1000, 20280)), true,
			[]string{"truth: milestones_ms.p95 ", "more than the 252.8 ms allowed", "truth: milestones_ms.p99 ", "truth: milestones_ms.all "}, ""},
		// first is shown, not judged: the first answer read 300 ms late fails nothing.
		{"first is not judged", clockRun([]int64{400, 500, 600, 700, 1700, 1800, 1900, 2000}, []int64{100, 500, 600, 700, 1700, 1800, 1900, 2000}), true, nil, ""},
		// The sender saw p99 while the mock never had that many receipts: a contradiction.
		{"sender reached what the mock never did", clockRun(ramp(1000, 2000), []int64{700, 800, 900, 1000, 1700, 1800, 1900}), true,
			[]string{"truth: milestones_ms.p95 is 2,001 ms by the sender's clock but unreached by the mock's receipts"},
			"the mock holds 7 receipts, fewer than the sender's 8 samples"},
		// No receipts given: nothing to compare with, said so, no failure.
		{"no receipts", func(in *Inputs) { in.MockArrivals = nil }, false, nil, "the run gave no mock receipts"},
		// A push accepted twice: its first answer was lost at 100 ms, the repeat answered at
		// 2,000 ms. The mock's 4th receipt (p50) is 100 ms before the sender's 4th sample,
		// which is still no later than the mock's 5th: within the span, no failure.
		{"a repeat widens the span", func(in *Inputs) {
			in.Latency = histOf(200, 300, 400, 500, 600, 700, 800, 2000)
			in.MockArrivals = histOf(100, 200, 300, 400, 500, 600, 700, 800, 2000)
			in.Mock.Received, in.Mock.Duplicates = 10, 1
			in.Criteria.MaxDuplicates = 1
		}, true, nil, "the mock holds 1 receipt(s) beyond the sender's 8 samples"},
		// The span does not excuse a sender earlier than the mock's receipts.
		{"a repeat does not excuse an early sender", func(in *Inputs) {
			in.Latency = histOf(200, 300, 400, 500, 600, 700, 800, 2000)
			in.MockArrivals = histOf(100, 200, 300, 600, 700, 800, 900, 1000, 2000)
			in.Mock.Received, in.Mock.Duplicates = 10, 1
			in.Criteria.MaxDuplicates = 1
		}, true, []string{"truth: milestones_ms.p50 500.2 ms by the sender's clock and 600.1 ms by the mock's receipts (600.1 ms to 700.4 ms allowing for 1 receipt(s) beyond the sender's samples) differ by 99.8 ms"}, "the mock holds 1 receipt(s) beyond"},
		// A redrive: the sender timed the redriven from its press (here 1 s after GO's),
		// the mock from GO's; shown, not judged.
		{"redrive", func(in *Inputs) {
			in.Campaign = &Campaign{State: "done", States: []string{"done_with_failures", "done"}, Redriven: 4}
			in.Latency = histOf(100, 200, 300, 400, 50, 60, 70, 80)
			in.MockArrivals = histOf(100, 200, 300, 400, 1050, 1060, 1070, 1080)
		}, false, nil, "4 recipients were sent again by a redrive"},
		// A kill left 2 acceptances without a sample: milestones_ms are the mock's, and the
		// sender's own (from its 6 samples) are judged against the span of 2 receipts.
		{"kill: the sender's own samples agree", func(in *Inputs) {
			in.Campaign = &Campaign{State: "done", Killed: 1, InFlightBound: 10}
			in.Latency = histOf(100, 200, 300, 400, 500, 600)
			in.MockArrivals = histOf(99, 199, 299, 399, 499, 599, 700, 800)
		}, true, nil, "sender_ms the sender's own, from its 6 samples"},
		{"kill: the sender's own samples early", func(in *Inputs) {
			in.Campaign = &Campaign{State: "done", Killed: 1, InFlightBound: 10}
			in.Latency = histOf(100, 200, 300, 310, 800, 900)
			in.MockArrivals = histOf(99, 199, 299, 399, 499, 599, 700, 800)
		}, true, []string{"truth: the sender's own milestone.p50 310 ms by the sender's clock and 399.1 ms by the mock's receipts (399.1 ms to 599 ms allowing for 2 receipt(s) beyond the sender's samples) differ by 89.1 ms, more than the 54 ms allowed"}, "sender_ms the sender's own, from its 6 samples"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := buildSmallRun(tc.change)
			var clock []string
			for _, f := range r.Failures {
				if strings.Contains(f, "clock") {
					clock = append(clock, f)
				} else {
					t.Errorf("unexpected failure %q", f)
				}
			}
			if len(tc.fails) == 0 && len(clock) > 0 {
				t.Fatalf("clock failures %q, want none", clock)
			}
			joined := strings.Join(clock, "\n")
			at := 0
			for _, want := range tc.fails {
				i := strings.Index(joined[at:], want)
				if i < 0 {
					t.Fatalf("clock failures %q lack %q (in order)", clock, want)
				}
				at += i + len(want)
			}
			c := r.Mock.MilestoneCheck
			if c == nil {
				t.Fatal("no mock.milestone_check")
			}
			if c.Judged != tc.judged {
				t.Errorf("judged %v, want %v (reason %q)", c.Judged, tc.judged, c.Reason)
			}
			if !strings.Contains(c.Reason, tc.reason) || tc.reason == "" && c.Reason != "" {
				t.Errorf("reason %q, want %q", c.Reason, tc.reason)
			}
			if late := strings.Contains(tc.name, "late"); late != (len(c.OverAllowance) > 0) || late != (len(r.Notes) > 0) {
				t.Errorf("over allowance %q, notes %q: want them stated only when the sender reads late", c.OverAllowance, r.Notes)
			}
			gate := 0
			for _, p := range runProblems(r) {
				if strings.Contains(p, "mock.milestone_check") {
					gate++
				}
			}
			if (len(c.Failed) > 0) != (len(clock) > 0) || gate != min(len(c.Failed), 1) {
				t.Errorf("milestone_check.failed %q with clock failures %q; the gate's run problems %q", c.Failed, clock, runProblems(r))
			}
			if tc.judged && (c.GapMs == nil || c.GapMs.P50 == nil || c.AllowedMs == nil || c.AllowedMs.P50 == nil) {
				t.Errorf("judged without a p50 gap and allowance: %+v", c)
			}
		})
	}
}

// TestClockCheckShown: the gaps are in report.json (mock.milestone_check) and report.md
// beside the mock's milestones; a report without a mock says its milestones are unchecked.
func TestClockCheckShown(t *testing.T) {
	t.Parallel()
	r := buildSmallRun(clockRun(ramp(1000, 2000), ramp(998, 1997)))
	if !r.Pass {
		t.Fatalf("failures %q", r.Failures)
	}
	c := r.Mock.MilestoneCheck
	if *c.GapMs.P50 != 2.048 || *c.AllowedMs.P50 != 60.004 || *c.GapMs.All != 3.072 || *c.AllowedMs.All != 70.009 {
		t.Errorf("gaps %v %v allowed %v %v", *c.GapMs.P50, *c.GapMs.All, *c.AllowedMs.P50, *c.AllowedMs.All)
	}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(js, []byte(`"milestone_check":{"judged":true,"gap_ms":{"first":`)) {
		t.Errorf("report.json lacks mock.milestone_check: %s", js)
	}
	var md bytes.Buffer
	if err := writeReportMD(&md, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| sender's clock | 699.9 ms | 1,000 ms | 2,001 ms |", "| sender - mock | +2.048 ms | +2.048 ms | +3.072 ms |", "| allowed gap | - | 60 ms | 70 ms |",
		"at p50, p95, p99 and all the sender's may not read earlier than the mock's by more than 50 ms + 1% of the later figure"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md.String())
		}
	}

	r = buildSmallRun(func(in *Inputs) { in.Mock = nil })
	if !r.Pass || len(r.Notes) != 1 || r.Notes[0] != clockNote {
		t.Errorf("no mock: pass %v, failures %q, notes %q; want a pass with the note", r.Pass, r.Failures, r.Notes)
	}
}

func TestClockAllowance(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ a, b, want float64 }{
		{0, 0, 50}, {1000, 940, 60}, {940, 1000, 60}, {20000, 19000, 250},
	} {
		if got := ClockAllowanceMs(tc.a, tc.b); got != tc.want {
			t.Errorf("ClockAllowanceMs(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestClockCheckSenderLate: a sender that read its answers late beyond the allowance is
// stated in mock.milestone_check.over_allowance and the report's notes, never failed.
func TestClockCheckSenderLate(t *testing.T) {
	t.Parallel()
	r := buildSmallRun(clockRun(ramp(1075, 2300), ramp(1000, 2000)))
	if !r.Pass {
		t.Fatalf("failures %q, want a pass", r.Failures)
	}
	over := r.Mock.MilestoneCheck.OverAllowance
	if len(over) != 4 || !strings.HasPrefix(over[0], "the sender read its answers late: milestones_ms.p50 1,075 ms by the sender's clock and 1,000 ms by the mock's receipts differ by 74.8 ms, more than the 60.8 ms allowed") {
		t.Errorf("over allowance %q, want p50, p95, p99 and all", over)
	}
	if len(r.Notes) != 1 || !strings.Contains(r.Notes[0], over[0]+" (and 3 more milestones: mock.milestone_check.over_allowance); a sender short of CPU") {
		t.Errorf("notes %q", r.Notes)
	}
}
