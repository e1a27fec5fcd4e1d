package results

import (
	"fmt"
	"math"
	"strings"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// The sender's milestones (milestones_ms) and the mock's (mock.milestones_ms) are two clocks
// on one machine read from the same press: the sender stamps a notification when it reads
// the provider's answer, the mock when the request arrives (plus any latency it injects,
// which holds the answer back as long). The sender's figure is therefore the mock's plus the
// answer's way back and the time the sender takes to get to it: a few milliseconds on a
// machine with CPU to spare, more when the sender is short of CPU and reads its answers late, and a
// little more the longer the run (a stall costs a share of the time, not a fixed amount).
// Beyond ClockToleranceMs + ClockToleranceShare of the later figure, one of the two counts
// the wrong thing (a sample recorded against another press, a receipt lost or invented).
//
// Only the sender reading earlier than the mock by more than that fails the report: no
// answer comes before its request arrived, however busy the machine, so an early sender
// clock is wrong (a flattering one: latency measured from after the press, acceptance
// stamped before the answer). The sender reading later is stated, not failed
// (ClockCheck.OverAllowance and the report's notes): on a loaded 2-core machine a sender
// short of CPU reads its answers tens to hundreds of milliseconds after they arrive (stock
// transports: 40-100 ms at p50 with other benchmarks running, 300 ms with both cores
// busy; every end-to-end test under -race: 180-600 ms), and its milestones rightly include
// that wait.
const (
	// ClockToleranceMs is the fixed part of the gap allowed between the two clocks at a
	// milestone, in milliseconds.
	ClockToleranceMs = 50.0
	// ClockToleranceShare is the part of the later of the two figures allowed on top.
	ClockToleranceShare = 0.01
)

// ClockAllowanceMs is the gap allowed between a sender's and a mock's milestone of a and b
// milliseconds: ClockToleranceMs + ClockToleranceShare of the later one.
func ClockAllowanceMs(a, b float64) float64 {
	return ClockToleranceMs + ClockToleranceShare*max(a, b)
}

// ClockCheck compares the sender's milestones with the mock's (mock.milestone_check): the
// truth check that fails a report when, at p50, p95, p99 or all, the sender's clock reads
// earlier than the mock's by more than the allowance (ClockAllowanceMs); later by more is
// stated in OverAllowance.
type ClockCheck struct {
	// Judged is true when the gaps were held to the allowance; Reason says why they were
	// not, or what the judgement took into account.
	Judged bool   `json:"judged"`
	Reason string `json:"reason,omitempty"`
	// GapMs holds, per milestone, the sender's figure minus the mock's (positive: the sender
	// read it later); a milestone unreached on either side is absent. First is shown, never
	// judged: it is one answer at the busiest moment of the send's start (connections
	// opening, every send loop writing its first requests), when a sender short of CPU reads
	// late; it sits in no criterion, and a clock that counted wrongly would show at p50
	// already.
	GapMs *MilestoneFigures `json:"gap_ms,omitempty"`
	// SenderMs, present when milestones_ms are the mock's (a kill left acceptances without
	// a latency sample), holds the sender's own milestones from the samples it has: what
	// GapMs compares.
	SenderMs *MilestoneFigures `json:"sender_ms,omitempty"`
	// AllowedMs holds, per judged milestone, the largest gap allowed.
	AllowedMs *MilestoneFigures `json:"allowed_ms,omitempty"`
	// ExtraReceipts counts the mock's receipts beyond the sender's latency samples (pushes
	// accepted twice, acceptances the sender never sampled). With e of them the sender's
	// n-th sample can only be known to lie between the mock's n-th and (n+e)-th receipt, so
	// a milestone is judged against that span: MockLateMs holds the span's late end where it
	// differs from the mock's figure.
	ExtraReceipts int64             `json:"extra_receipts"`
	MockLateMs    *MilestoneFigures `json:"mock_late_ms,omitempty"`
	// OverAllowance lists the milestones the sender read later than the mock by more than
	// the allowance: stated (here and in the report's notes), not failed, as a sender short
	// of CPU reads its answers that late (see ClockToleranceMs).
	OverAllowance []string `json:"over_allowance,omitempty"`
	// Failed lists the milestones that failed the check (the sender's clock earlier than the
	// mock's receipts allow, or one reached on one side only): each is one of the report's
	// failures, and a correctness failure in salvo gate.
	Failed []string `json:"failed,omitempty"`
}

// MilestoneFigures holds a figure per milestone; an absent one was not measured.
type MilestoneFigures struct {
	First *float64 `json:"first,omitempty"`
	P50   *float64 `json:"p50,omitempty"`
	P95   *float64 `json:"p95,omitempty"`
	P99   *float64 `json:"p99,omitempty"`
	All   *float64 `json:"all,omitempty"`
}

// clockCheck compares the sender's milestones (sender, from hist, its latency histogram)
// with the mock's (from receipts, the mock's arrival histogram) and returns the comparison
// and its failures. deliverable is the audience the milestones count. substituted says the
// report's milestones_ms are the mock's (a kill left acceptances without a sample): sender
// then holds the sender's own, from the samples it has, and the comparison states them.
//
// Why the comparison is sound whatever the counts: every latency sample is the answer to
// one accepted request, which the mock holds a receipt of, stamped no later than the
// answer; no two samples share a receipt. So with n samples and n+e receipts, the sender's
// k-th sample is at or after the mock's k-th receipt (k distinct receipts came first) and at
// or before its (k+e)-th receipt plus the answer's delay (at most e receipts have no sample).
// Repeats (mock.duplicates), a killed process's unsampled acceptances and other receipts
// only widen the span; they never make two honest clocks disagree.
//
// redriven, when positive, counts recipients a redrive sent again: the sender times those
// from the redrive's press, the mock from GO's, so the gaps are shown and not judged.
func clockCheck(m *Mock, sender Milestones, hist, receipts *hdrhistogram.Histogram, deliverable int64, substituted bool, redriven int64) (*ClockCheck, []string) {
	if m.Milestones == nil || receipts == nil {
		return &ClockCheck{Reason: "the run gave no mock receipts"}, nil
	}
	mock := *m.Milestones
	n, total := hist.TotalCount(), receipts.TotalCount()
	c := &ClockCheck{Judged: true, GapMs: &MilestoneFigures{}, AllowedMs: &MilestoneFigures{}, ExtraReceipts: max(total-n, 0)}
	if substituted {
		c.SenderMs = &MilestoneFigures{}
		for _, f := range []struct {
			v  float64
			to **float64
		}{{sender.First, &c.SenderMs.First}, {sender.P50, &c.SenderMs.P50}, {sender.P95, &c.SenderMs.P95},
			{sender.P99, &c.SenderMs.P99}, {sender.All, &c.SenderMs.All}} {
			if f.v != Unreached {
				v := f.v
				*f.to = &v
			}
		}
	}
	var why []string
	label := "milestones_ms" // what the failures call the sender's figures
	if substituted {
		why = append(why, fmt.Sprintf("after a kill that left acceptances without a latency sample, milestones_ms are the mock's and sender_ms the sender's own, from its %d samples", n))
		label = "the sender's own milestone"
	}
	if total < n {
		why = append(why, fmt.Sprintf("the mock holds %d receipts, fewer than the sender's %d samples: judged on the mock's figures alone", total, n))
	} else if c.ExtraReceipts > 0 {
		why = append(why, fmt.Sprintf("the mock holds %d receipt(s) beyond the sender's %d samples (repeats, acceptances without a sample): each milestone is judged against the span from the mock's figure to its figure %d receipt(s) later (mock_late_ms)",
			c.ExtraReceipts, n, c.ExtraReceipts))
		c.MockLateMs = &MilestoneFigures{}
	}
	c.Reason = strings.Join(why, "; ")
	if g, ok := gapOf(sender.First, mock.First); ok {
		c.GapMs.First = &g
	}
	var fails []string
	for _, ms := range []struct {
		name         string
		pct          float64 // 0: all
		sender, mock float64
		gap, allowed **float64
		late         func(*MilestoneFigures) **float64
	}{
		{"p50", 50, sender.P50, mock.P50, &c.GapMs.P50, &c.AllowedMs.P50, func(g *MilestoneFigures) **float64 { return &g.P50 }},
		{"p95", 95, sender.P95, mock.P95, &c.GapMs.P95, &c.AllowedMs.P95, func(g *MilestoneFigures) **float64 { return &g.P95 }},
		{"p99", 99, sender.P99, mock.P99, &c.GapMs.P99, &c.AllowedMs.P99, func(g *MilestoneFigures) **float64 { return &g.P99 }},
		{"all", 0, sender.All, mock.All, &c.GapMs.All, &c.AllowedMs.All, func(g *MilestoneFigures) **float64 { return &g.All }},
	} {
		// The sender reaching a milestone the mock did not is a contradiction (each sample
		// has its own receipt); the other way round only when the mock has no receipt
		// more than the sender has samples (else the sender may lack the samples).
		if ms.sender == Unreached && ms.mock != Unreached && c.ExtraReceipts > 0 {
			continue
		}
		if (ms.sender == Unreached) != (ms.mock == Unreached) {
			fails = append(fails, fmt.Sprintf("truth: %s.%s is %s by the sender's clock but %s by the mock's receipts",
				label, ms.name, fmtMs(ms.sender), fmtMs(ms.mock)))
			c.Failed = append(c.Failed, ms.name)
			continue
		}
		if ms.sender == Unreached {
			continue
		}
		g, _ := gapOf(ms.sender, ms.mock)
		*ms.gap = &g
		// The span of the mock's figures the sender's may match: from the k-th receipt to
		// the (k+e)-th, where the sender's figure is its k-th sample.
		k := n // all: the sender's last sample
		if ms.pct > 0 {
			k = countFor(deliverable, ms.pct)
		}
		early, late := ms.mock, ms.mock
		if c.ExtraReceipts > 0 {
			early = nthMs(receipts, k)
			late = nthMs(receipts, k+c.ExtraReceipts)
		}
		if c.MockLateMs != nil && late != ms.mock {
			v := late
			*ms.late(c.MockLateMs) = &v
		}
		var off, allowed float64
		switch {
		case ms.sender < early:
			off, allowed = early-ms.sender, ClockAllowanceMs(ms.sender, early)
		case ms.sender > late:
			off, allowed = ms.sender-late, ClockAllowanceMs(ms.sender, late)
		default:
			allowed = ClockAllowanceMs(ms.sender, ms.mock)
		}
		allowed = round(allowed, 3)
		*ms.allowed = &allowed
		if off > allowed {
			span := ""
			if late != early {
				span = fmt.Sprintf(" (%s to %s allowing for %d receipt(s) beyond the sender's samples)", fmtMs(early), fmtMs(late), c.ExtraReceipts)
			}
			msg := fmt.Sprintf("%s.%s %s by the sender's clock and %s by the mock's receipts%s differ by %s, more than the %s allowed (%s ms + %s%% of the later)",
				label, ms.name, fmtMs(ms.sender), fmtMs(ms.mock), span, fmtMs(off), fmtMs(allowed), fmtFloat(ClockToleranceMs), fmtFloat(ClockToleranceShare*100))
			if ms.sender > late {
				// Late: the sender read its answers late (see ClockToleranceMs). Stated, not failed.
				c.OverAllowance = append(c.OverAllowance, "the sender read its answers late: "+msg)
				continue
			}
			fails = append(fails, "truth: "+msg)
			c.Failed = append(c.Failed, ms.name)
		}
	}
	if redriven > 0 {
		c.Judged, c.AllowedMs, c.Failed = false, nil, nil
		c.Reason = strings.Join(append([]string{fmt.Sprintf(
			"%s recipients were sent again by a redrive, which the sender times from the redrive's press and the mock from GO's", fmtCount(redriven))},
			why...), "; ")
		return c, nil
	}
	return c, fails
}

// gapOf is sender - mock in ms, rounded to the microsecond; false when either is unreached.
func gapOf(sender, mock float64) (float64, bool) {
	if sender == Unreached || mock == Unreached {
		return 0, false
	}
	return round(sender-mock, 3), true
}

// nthMs is the time of h's n-th smallest sample in ms (n clamped to 1..count); Unreached
// for an empty h.
func nthMs(h *hdrhistogram.Histogram, n int64) float64 {
	total := h.TotalCount()
	if total == 0 {
		return Unreached
	}
	n = min(max(n, 1), total)
	if n == total {
		return usToMs(h.Max())
	}
	return usToMs(h.ValueAtQuantile(100 * float64(n) / float64(total)))
}

// clockNote is the report's note when there is no mock to check the sender's milestones by.
const clockNote = "milestones_ms are the sender's clock alone: there are no mock receipts to check them against"

// clockGapMs formats a gap with its sign ("+0.512 ms", "-3.1 ms").
func clockGapMs(v float64) string {
	s := fmtMs(math.Abs(v))
	if v < 0 {
		return "-" + s
	}
	return "+" + s
}
