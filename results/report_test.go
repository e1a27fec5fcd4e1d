package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/salvopush/salvo/sender/metrics"
)

// smallRun is a consistent run of 10 recipients: 6 iOS and 4 Android, 1 in the control
// group, 1 Unregistered, 8 accepted at 100, 200, ... 800 ms, as the mock also counted.
func smallRun() Inputs {
	h := metrics.NewLatencyHistogram()
	tl := metrics.NewTimeline(metrics.DefaultStep)
	for i := 1; i <= 8; i++ {
		d := time.Duration(i) * 100 * time.Millisecond
		metrics.RecordLatency(h, d)
		tl.Add(d, true)
	}
	tl.Add(50*time.Millisecond, false)
	return Inputs{
		Scenario:  "unit",
		StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Config:    Config{Audience: 10, IOSShare: 0.6, Transport: "mock", Workers: 1},
		Audience:  Audience{Recipients: 10, IOS: 6, Android: 4, Control: 1},
		Delivery:  Delivery{Accepted: 8, Rejected: map[string]int64{"Unregistered": 1}},
		Mock:      &Mock{Received: 9, Unique: 8},
		Latency:   h,
		Timeline:  tl,
		Target:    Target{Seconds: 5, Percentile: 99},
	}
}

// smallIdentity is smallRun's identity comparison: the 8 expected tokens accepted, the
// Unregistered one and the control user's not expected.
func smallIdentity() *Identity {
	return &Identity{Expected: 8, Accepted: 8, Matched: 8, Invalid: 1, Control: 1}
}

func TestBuildSmallRunPasses(t *testing.T) {
	t.Parallel()
	r := Build(smallRun())
	if !r.Pass || len(r.Failures) != 0 {
		t.Fatalf("want pass, got failures %q", r.Failures)
	}
	if r.Delivery.Lost != 0 {
		t.Errorf("lost = %d, want 0", r.Delivery.Lost)
	}
	// 8 deliverable recipients: p50 is the 4th sample, p95 and p99 the 8th.
	checkMs(t, "milestones.p50", r.Milestones.P50, 400)
	checkMs(t, "milestones.p99", r.Milestones.P99, 800)
	checkMs(t, "milestones.all", r.Milestones.All, 800)
	checkMs(t, "milestones.first", r.Milestones.First, 100)
	if !r.Target.Met {
		t.Error("target not met at 800 ms")
	}
	// 8 accepted over 0.8 s; at most 8 in any second.
	if math.Abs(r.Throughput.Mean-10) > 0.1 || r.Throughput.Peak1s != 8 {
		t.Errorf("throughput = %+v, want mean 10, peak 8", r.Throughput)
	}
	if r.Schema != Schema || r.StartedAt.Nanosecond() != 0 {
		t.Errorf("schema %q, started_at %v", r.Schema, r.StartedAt)
	}
}

// checkMs compares a histogram-derived value with the exact one, allowing the histogram's
// 3-significant-figure resolution.
func checkMs(t *testing.T, name string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > want*0.001+0.001 {
		t.Errorf("%s = %v ms, want %v ms", name, got, want)
	}
}

func TestTruthChecksAndCriteria(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(in *Inputs)
		want   string // a failure that must be listed; "" means the run passes
	}{
		// The consistent run passes untouched.
		{"consistent", func(in *Inputs) {}, ""},
		// One accepted notification is missing from the histogram.
		{"histogram count != accepted", func(in *Inputs) {
			in.Latency = histOf(100, 200, 300, 400, 500, 600, 700)
		}, "truth: latency histogram holds 7 samples but delivery.accepted is 8"},
		// The timeline lost one acceptance.
		{"timeline != accepted", func(in *Inputs) {
			in.Timeline = metrics.NewTimeline(metrics.DefaultStep)
			for i := 1; i <= 7; i++ {
				in.Timeline.Add(time.Duration(i)*100*time.Millisecond, true)
			}
		}, "truth: timeline counts 7 accepted but delivery.accepted is 8"},
		// The sender claims 8 accepted but the mock saw 7 distinct notifications.
		{"accepted != mock unique", func(in *Inputs) { in.Mock.Unique = 7 },
			"truth: delivery.accepted 8 != mock.unique 7"},
		// The mock counts more unique and duplicate receipts than it received.
		{"mock counts exceed received", func(in *Inputs) { in.Mock.Received = 7 },
			"truth: mock.unique 8 + mock.duplicates 0 exceeds mock.received 7"},
		// Outcomes add up to more than the audience.
		{"audience over-counted", func(in *Inputs) {
			in.Audience.Recipients, in.Audience.IOS = 9, 5
		}, "truth: audience does not add up: accepted 8 + rejected 1 + control 1 = 10 exceeds audience.recipients 9"},
		// The platform split does not add up to the audience.
		{"ios + android != recipients", func(in *Inputs) { in.Audience.IOS = 7 },
			"truth: audience.ios 7 + audience.android 4 != audience.recipients 10"},
		// The run's own lost count disagrees with the audience arithmetic.
		{"run's lost disagrees", func(in *Inputs) { in.Delivery.Lost = 2 },
			"truth: delivery.lost 2 counted by the run != 0 computed"},
		// Nobody is left to deliver to.
		{"no deliverable recipients", func(in *Inputs) {
			in.Audience = Audience{Recipients: 2, IOS: 2, Control: 1}
			in.Delivery.Accepted = 0
			in.Latency, in.Timeline, in.Mock = nil, nil, nil
		}, "truth: no deliverable recipients"},
		// Two recipients were never accepted and nothing accounts for them.
		{"lost beyond the bound", func(in *Inputs) {
			in.Audience.Recipients, in.Audience.IOS = 12, 8
		}, "lost: 2 recipients were never accepted (max 0)"},
		// The same loss is allowed by the scenario's bound.
		{"lost within the bound", func(in *Inputs) {
			in.Audience.Recipients, in.Audience.IOS = 12, 8
			in.Criteria.MaxLost = 2
		}, ""},
		// A negative bound means no bound.
		{"lost without a bound", func(in *Inputs) {
			in.Audience.Recipients, in.Audience.IOS = 12, 8
			in.Criteria.MaxLost = -1
		}, ""},
		// The sender gave up on one recipient.
		{"failed beyond the bound", func(in *Inputs) {
			in.Audience.Recipients, in.Audience.IOS = 11, 7
			in.Delivery.Failed = 1
		}, "failed: the sender gave up on 1 recipients (max 0)"},
		// The sender saw a recipient accepted twice.
		{"sender duplicates", func(in *Inputs) { in.Delivery.Duplicates, in.Mock.Duplicates, in.Mock.Received = 1, 1, 10 },
			"duplicates: 1 recipients were accepted more than once (max 0)"},
		// The sender recorded a repeat the mock never received.
		{"sender duplicates beyond the mock's", func(in *Inputs) { in.Delivery.Duplicates = 1 },
			"truth: delivery.duplicates 1 (repeats the sender recorded) exceeds mock.duplicates 0"},
		// The mock received a duplicate the sender never knew about.
		{"mock duplicates", func(in *Inputs) { in.Mock.Duplicates, in.Mock.Received = 1, 10 },
			"duplicates: the mock received 1 duplicate notifications (max 0)"},
		// The mock accepted exactly the expected tokens.
		{"identity holds", func(in *Inputs) { in.Identity = smallIdentity() }, ""},
		// The mock accepted a token nobody was to get (a control user's, say).
		{"identity: an unexpected token", func(in *Inputs) {
			in.Identity = smallIdentity()
			in.Identity.Accepted, in.Identity.Unexpected = 9, 1
			in.Identity.Examples = []string{"unexpected ios,ab"}
		}, "identity: the mock accepted 1 tokens that were not to be sent (unexpected ios,ab)"},
		// The right number of the wrong recipients: counts agree, one expected token missing,
		// a stranger in its place.
		{"identity: right count, wrong recipients", func(in *Inputs) {
			in.Identity = smallIdentity()
			in.Identity.Matched, in.Identity.Missing, in.Identity.Unexpected = 7, 1, 1
		}, "identity: the mock accepted 7 of the 8 expected tokens (1 missing), but delivery.accepted is 8"},
		// The sender resolved a device fewer than the registry holds for the audience, and so
		// never counted it lost.
		{"identity: a device never resolved", func(in *Inputs) {
			in.Identity = smallIdentity()
			in.Identity.Expected, in.Identity.Missing = 9, 1
		}, "identity: the registry and the audience give 11 devices (1 control), the sender resolved 10 (1 control)"},
		// The target percentile is reached after the target.
		{"target missed", func(in *Inputs) {
			in.Latency = histOf(100, 200, 300, 400, 500, 600, 700, 6000)
			in.Criteria.RequireTarget = true
		}, "target: p99 milestone 6,001 ms is later than the 5 s target"},
		// A late target percentile is only reported when the target is not required.
		{"target missed, not required", func(in *Inputs) {
			in.Latency = histOf(100, 200, 300, 400, 500, 600, 700, 6000)
		}, ""},
		// Too few recipients were accepted to ever reach 99%.
		{"target unreached", func(in *Inputs) {
			in.Audience.Recipients, in.Audience.IOS = 12, 8
			in.Criteria.MaxLost = -1
			in.Criteria.RequireTarget = true
		}, "target: p99 milestone unreached: 8 of 10 deliverable recipients were accepted, the target needs 10"},
		// p99 above the scenario's latency bound (800 ms reads 800.3 at 3 significant figures).
		{"p99 bound", func(in *Inputs) { in.Criteria.MaxP99Ms = 500 },
			"latency: p99 800.3 ms exceeds 500 ms"},
		// p95 above the scenario's latency bound.
		{"p95 bound", func(in *Inputs) { in.Criteria.MaxP95Ms = 700 },
			"latency: p95 800.3 ms exceeds 700 ms"},
		// Mean throughput under the scenario's floor.
		{"throughput floor", func(in *Inputs) { in.Criteria.MinThroughputPerS = 100 },
			"throughput: mean 10/s is below 100/s"},
		// Prepare took longer than allowed.
		{"prepare bound", func(in *Inputs) { in.Resources.PrepareMs, in.Criteria.MaxPrepareMs = 2500, 2000 },
			"prepare: 2,500 ms exceeds 2,000 ms"},
		// The sender used more memory than allowed.
		{"memory bound", func(in *Inputs) {
			in.Resources.SenderPeakRSSBytes, in.Criteria.MaxSenderPeakRSSBytes = 2000, 1000
		}, "memory: sender peak RSS 2000 bytes exceeds 1000 bytes"},
		// Fifty presses at once: one started the send, the others saw it started.
		{"presses: exactly one started", func(in *Inputs) {
			in.Presses = []Press{{SendID: "s"}, {SendID: "s", Started: true}, {SendID: "s"}}
		}, ""},
		// Two presses started a send each.
		{"presses: two started", func(in *Inputs) {
			in.Presses = []Press{{SendID: "s", Started: true}, {SendID: "s", Started: true}}
		}, "press: 2 of 2 presses started a send, want exactly 1"},
		// Nobody started the send.
		{"presses: none started", func(in *Inputs) {
			in.Presses = []Press{{SendID: "s"}, {SendID: "s"}}
		}, "press: 0 of 2 presses started a send"},
		// The presses were answered with different sends.
		{"presses: different send IDs", func(in *Inputs) {
			in.Presses = []Press{{SendID: "s", Started: true}, {SendID: "t"}}
		}, "press: presses answered different send IDs: s and t"},
		// One request per non-control recipient reached the mock (8 accepted + 1 rejected).
		{"exact mock count holds", func(in *Inputs) { in.Criteria.ExactMockReceived = true }, ""},
		// A retry reached the mock: one request too many.
		{"exact mock count broken", func(in *Inputs) {
			in.Criteria.ExactMockReceived = true
			in.Mock.Received = 10
		}, "mock: received 10 requests, want exactly one per non-control recipient (9)"},
		// A request more than one per recipient is fine when exactness is not asked for.
		{"mock count not judged", func(in *Inputs) { in.Mock.Received = 10 }, ""},
		// The send was still running when the scenario stopped waiting.
		{"timed out", func(in *Inputs) { in.TimedOut, in.TimeoutSeconds = true, 120 },
			"timeout: the send was unfinished 120 s after GO"},
		// One of two send workers never published its statistics.
		{"a worker did not report", func(in *Inputs) { in.WorkersExpected, in.WorkersReporting = 2, 1 },
			"workers: 1 of 2 send workers published statistics"},
		// Every send worker reported.
		{"every worker reported", func(in *Inputs) { in.WorkersExpected, in.WorkersReporting = 2, 2 }, ""},
		// A replacement worker reported besides the two the run started.
		{"a replacement reported too", func(in *Inputs) { in.WorkersExpected, in.WorkersReporting = 2, 3 }, ""},
		// One of two was killed before it first published and its replacement found no work.
		{"a killed worker did not report", func(in *Inputs) {
			in.WorkersExpected, in.WorkersReporting = 2, 1
			in.Campaign = &Campaign{State: "done", States: []string{"done"}, Killed: 1, InFlightBound: 400}
		}, ""},
		// One was killed, and the other did not report either.
		{"a killed worker and a silent one", func(in *Inputs) {
			in.WorkersExpected, in.WorkersReporting = 2, 0
			in.Campaign = &Campaign{State: "done", States: []string{"done"}, Killed: 1, InFlightBound: 400}
		}, "workers: 0 of 1 send workers published statistics"},
		// The campaign ended in the state the scenario expects.
		{"expected state", func(in *Inputs) {
			in.Campaign = &Campaign{State: "done", States: []string{"done"}}
			in.Criteria.ExpectState = "done"
		}, ""},
		// The campaign gave some recipients up where it should have delivered them all.
		{"wrong state", func(in *Inputs) {
			in.Campaign = &Campaign{State: "done_with_failures", States: []string{"done_with_failures"}}
			in.Criteria.ExpectState = "done"
		}, "state: the campaign ended done_with_failures, want done"},
		// The campaign never finished while the run waited.
		{"no terminal state", func(in *Inputs) {
			in.Campaign = &Campaign{}
			in.Criteria.ExpectState = "done"
		}, "state: the campaign reached no terminal state, want done"},
		// A state criterion without the campaign's account cannot hold.
		{"state not followed", func(in *Inputs) { in.Criteria.ExpectState = "done" },
			"campaign: the run did not follow the campaign"},
		// A long outage that the status never showed as a stall.
		{"stall not shown", func(in *Inputs) {
			in.Campaign = &Campaign{State: "done"}
			in.Criteria.RequireStall = true
		}, "stall: the campaign's status never showed the send stalled"},
		// The stall was shown.
		{"stall shown", func(in *Inputs) {
			in.Campaign = &Campaign{State: "done", Stall: &StallSeen{SeenMs: 15000, SinceMs: 100, Cause: "ServiceUnavailable"}}
			in.Criteria.RequireStall = true
		}, ""},
		// A redrive arm where nothing was dead-lettered proves nothing.
		{"nothing to redrive", func(in *Inputs) {
			in.Campaign = &Campaign{State: "done"}
			in.Criteria.RequireRedrive = true
		}, "redrive: nothing was dead-lettered"},
		// The redrive sent fewer than were dead-lettered.
		{"partial redrive", func(in *Inputs) {
			in.Campaign = &Campaign{State: "done", DeadLettered: 8, Redriven: 5}
			in.Criteria.RequireRedrive = true
		}, "redrive: 8 recipients were dead-lettered but the mock accepted 5 after the redrive"},
		// Every dead-lettered recipient was sent again (and, by the counts, accepted).
		{"full redrive", func(in *Inputs) {
			in.Campaign = &Campaign{State: "done", States: []string{"done_with_failures", "done"}, DeadLettered: 8, Redriven: 8}
			in.Criteria.RequireRedrive = true
		}, ""},
		// The dead-letter queue holds fewer recipients than the campaign gave up on.
		{"dead letters missing from the queue", func(in *Inputs) {
			q := int64(5)
			in.Campaign = &Campaign{State: "done", DeadLettered: 8, Redriven: 8, DeadLetterQueue: &q}
		}, "dead letters: the campaign counted 8 recipients given up on, its dead letters on the queue name 5"},
		// A redelivery run that redelivered nothing.
		{"no redelivery", func(in *Inputs) {
			in.Campaign = &Campaign{State: "done", BatchesSentTwice: 10}
			in.Criteria.RequireRedelivery = true
		}, "redelivery: 10 batch messages were sent twice and 0 ranges delivered twice"},
		// Both kinds of message were delivered twice.
		{"redelivery forced", func(in *Inputs) {
			in.Campaign = &Campaign{State: "done", BatchesSentTwice: 10, RangesDeliveredTwice: 2}
			in.Criteria.RequireRedelivery = true
		}, ""},
		// The campaign left out fewer devices than the registry holds of the uncovered platform.
		{"exclusions do not match the registry", func(in *Inputs) {
			in.Campaign = &Campaign{State: "done", NoMessage: 5, NoMessageExpected: 6}
		}, "audience: the campaign excluded 5 devices for want of a message; the registry holds 6"},
		// A malformed message never reached the dead-letter queue.
		{"poison not dead-lettered", func(in *Inputs) {
			in.Campaign = &Campaign{State: "done", Malformed: 2, MalformedDeadLettered: 1}
		}, "poison: 2 malformed batch messages were put on the batch queue, 1 reached the dead-letter queue"},
		// A message is still going round the batch queue.
		{"poison loops", func(in *Inputs) {
			in.Campaign = &Campaign{State: "done", Malformed: 2, MalformedDeadLettered: 2, BatchQueueLeft: 1}
		}, "poison: 1 messages were left on the batch queue"},
		// After a SIGKILL the mock may count what was in flight twice, up to the bound.
		{"duplicates within the in-flight bound", func(in *Inputs) {
			in.Campaign = &Campaign{State: "done", Killed: 1, InFlightBound: 2}
			in.Mock.Duplicates, in.Mock.Received = 2, 11
		}, ""},
		// More repeats than the killed process can have had in flight.
		{"duplicates over the in-flight bound", func(in *Inputs) {
			in.Campaign = &Campaign{State: "done", Killed: 1, InFlightBound: 2}
			in.Mock.Duplicates, in.Mock.Received = 3, 12
		}, "duplicates: the mock received 3 duplicate notifications (max 2, of which 2 for what the killed processes had in flight)"},
		// A killed worker never published its last acceptances: counted, not a failure.
		{"killed: samples missing", func(in *Inputs) {
			in.Campaign = &Campaign{State: "done", Killed: 1, InFlightBound: 2}
			in.Latency = histOf(100, 200, 300, 400, 500, 600)
		}, ""},
		// Without a kill, a missing sample is still a truth failure.
		{"not killed: samples missing", func(in *Inputs) {
			in.Campaign = &Campaign{State: "done"}
			in.Latency = histOf(100, 200, 300, 400, 500, 600)
		}, "truth: latency histogram holds 6 samples but delivery.accepted is 8"},
		// More samples than acceptances and the in-flight bound can explain.
		{"killed: samples beyond the bound", func(in *Inputs) {
			in.Campaign = &Campaign{State: "done", Killed: 1, InFlightBound: 1}
			in.Latency = histOf(100, 200, 300, 400, 500, 600, 700, 800, 900, 1000)
		}, "truth: latency histogram holds 10 samples, more than delivery.accepted 8 plus the in-flight bound 1"},
		// The last acceptance came within the allowed delay of the first arm's.
		{"delay within the bound", func(in *Inputs) {
			in.FirstArm = &FirstArm{Name: "baseline", Milestones: Milestones{All: 500}}
			in.Criteria.MaxAllDelayMs = 400
		}, ""},
		// The last acceptance came too long after the first arm's.
		{"delay over the bound", func(in *Inputs) {
			in.FirstArm = &FirstArm{Name: "baseline", Milestones: Milestones{All: 100}}
			in.Criteria.MaxAllDelayMs = 400
		}, "delay: the last recipient was accepted 700.3 ms after baseline's last, more than 400 ms"},
		// A delay bound with nothing to compare with.
		{"delay without a first arm", func(in *Inputs) { in.Criteria.MaxAllDelayMs = 400 },
			"delay: no first arm to compare the last acceptance with"},
		// A worker died before publishing one acceptance: 7 samples + 1 stated == 8 accepted.
		{"gap stated and adding up", func(in *Inputs) { withoutLastSample(in, 1) }, ""},
		// The stated gap does not account for the missing sample.
		{"gap that does not add up", func(in *Inputs) { withoutLastSample(in, 2) },
			"truth: latency histogram holds 7 samples + 2 accepted without a sample != delivery.accepted 8"},
		// The timeline still holds the acceptance the gap says has no sample.
		{"gap stated, timeline complete", func(in *Inputs) {
			gap := int64(1)
			in.Latency, in.NoLatencySample = histOf(100, 200, 300, 400, 500, 600, 700), &gap
		}, "truth: timeline counts 8 accepted + 1 without a sample != delivery.accepted 8"},
		// A gap is never negative.
		{"negative gap", func(in *Inputs) { gap := int64(-1); in.NoLatencySample = &gap },
			"truth: no_latency_sample -1 is negative"},
		// A gap of zero stated: the strict equality still holds.
		{"zero gap stated", func(in *Inputs) { gap := int64(0); in.NoLatencySample = &gap }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := buildSmallRun(tt.change)
			if tt.want == "" {
				if !r.Pass {
					t.Fatalf("want pass, got failures %q", r.Failures)
				}
				return
			}
			if r.Pass {
				t.Fatalf("want a failure %q, got a pass", tt.want)
			}
			if !slices.ContainsFunc(r.Failures, func(f string) bool { return strings.HasPrefix(f, tt.want) }) {
				t.Fatalf("failures %q lack %q", r.Failures, tt.want)
			}
		})
	}
}

// TestVerdict checks the verdict words and the target sentence of the three kinds of run,
// and that report.md's first line says a missed target plainly.
func TestVerdict(t *testing.T) {
	t.Parallel()
	late := func(in *Inputs) { in.Latency = histOf(100, 200, 300, 400, 500, 600, 700, 6000) }
	tests := []struct {
		name        string
		change      func(in *Inputs)
		verdict     string
		target      string // prefix of TargetLine
		mdFirstLine string // prefix of report.md's verdict line
	}{
		// Every criterion held and the target was met.
		{"pass", func(in *Inputs) {}, "PASS",
			"target met: 99% of the deliverable audience accepted in 800.3 ms (target: 5 s)",
			"**PASS**. Target met:"},
		// Every criterion held; the target, only reported, was missed by about a second.
		{"pass, target missed", late, "PASS, TARGET MISSED",
			"target missed: 99% of the deliverable audience accepted in 6,001 ms, 1,001 ms over the 5 s target (reported, not required by this scenario)",
			"**PASS, TARGET MISSED**: every criterion held. Target missed: 99%"},
		// The target is required and missed: a failure.
		{"fail on the target", func(in *Inputs) { late(in); in.Criteria.RequireTarget = true }, "FAIL",
			"target missed: 99% of the deliverable audience accepted in 6,001 ms, 1,001 ms over the 5 s target",
			"**FAIL**: 1 check did not hold (see Failures). Target missed:"},
		// Too few accepted to reach the target at all.
		{"target never reached", func(in *Inputs) {
			in.Audience.Recipients, in.Audience.IOS = 12, 8
			in.Criteria.MaxLost = -1
		}, "PASS, TARGET MISSED",
			"target missed: 99% of the deliverable audience was never accepted (target: within 5 s) (reported, not required",
			"**PASS, TARGET MISSED**: every criterion held. Target missed: 99% of the deliverable audience was never accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := buildSmallRun(tt.change)
			if got := r.Verdict(); got != tt.verdict {
				t.Errorf("Verdict = %q, want %q (failures %q)", got, tt.verdict, r.Failures)
			}
			if got := r.TargetLine(); !strings.HasPrefix(got, tt.target) {
				t.Errorf("TargetLine = %q, want prefix %q", got, tt.target)
			}
			if got := verdictLine(r); !strings.HasPrefix(got, tt.mdFirstLine) {
				t.Errorf("verdictLine = %q, want prefix %q", got, tt.mdFirstLine)
			}
		})
	}
}

// buildSmallRun builds the report of smallRun after change.
func buildSmallRun(change func(in *Inputs)) *Report {
	in := smallRun()
	change(&in)
	return Build(in)
}

// withoutLastSample drops the 800 ms acceptance from the histogram and the timeline of a
// small run, as a worker that died before publishing it would, and states gap.
func withoutLastSample(in *Inputs, gap int64) {
	in.Latency = histOf(100, 200, 300, 400, 500, 600, 700)
	in.Timeline = metrics.NewTimeline(metrics.DefaultStep)
	for i := 1; i <= 7; i++ {
		in.Timeline.Add(time.Duration(i)*100*time.Millisecond, true)
	}
	in.Timeline.Add(50*time.Millisecond, false)
	in.NoLatencySample = &gap
}

// TestGapIsStatedNeverHidden checks a report with acceptances that have no latency sample:
// the count is in report.json and report.md, the last milestone is not claimed, and the
// mean throughput counts only the sampled acceptances; a report without a gap stated has
// no such field.
func TestGapIsStatedNeverHidden(t *testing.T) {
	t.Parallel()
	r := buildSmallRun(func(in *Inputs) { withoutLastSample(in, 1) })
	if !r.Pass {
		t.Fatalf("failures %q", r.Failures)
	}
	if r.NoLatencySample == nil || *r.NoLatencySample != 1 {
		t.Fatalf("no_latency_sample %v, want 1", r.NoLatencySample)
	}
	if r.Milestones.All != Unreached || r.Milestones.P50 != 400.127 {
		t.Errorf("milestones %+v: want all unreached (the last acceptance's time is unknown), p50 at the 4th sample", r.Milestones)
	}
	if r.Throughput.Mean != 10 { // 7 sampled acceptances by 700 ms
		t.Errorf("mean throughput %v, want 10/s", r.Throughput.Mean)
	}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(js, []byte(`"no_latency_sample":1`)) {
		t.Errorf("report.json lacks no_latency_sample: %s", js)
	}
	var md bytes.Buffer
	if err := writeReportMD(&md, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "**1 accepted notifications (12.5%) have no latency sample**") {
		t.Errorf("report.md does not state the gap:\n%s", md.String())
	}
	plain, err := json.Marshal(buildSmallRun(func(*Inputs) {}))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(plain, []byte("no_latency_sample")) {
		t.Errorf("a report measured in full names a gap: %s", plain)
	}
}

// histOf records latencies given in ms.
func histOf(ms ...int64) *hdrhistogram.Histogram {
	h := metrics.NewLatencyHistogram()
	for _, v := range ms {
		metrics.RecordLatency(h, time.Duration(v)*time.Millisecond)
	}
	return h
}

func TestMilestones(t *testing.T) {
	t.Parallel()
	// 100 samples at 1, 2, ... 100 ms.
	hundred := func() *hdrhistogram.Histogram {
		h := metrics.NewLatencyHistogram()
		for i := int64(1); i <= 100; i++ {
			metrics.RecordLatency(h, time.Duration(i)*time.Millisecond)
		}
		return h
	}
	tests := []struct {
		name                  string
		audience              Audience
		rejected              int64
		first, p50, p95, p99  float64
		all                   float64
		targetMet             bool
		wantUnreachedFailures bool
	}{
		// Everyone deliverable was accepted: milestones are the latency percentiles.
		{"all accepted", Audience{Recipients: 100, IOS: 100}, 0, 1, 50, 95, 99, 100, true, false},
		// Control and rejected recipients are not part of the deliverable audience.
		{"control and rejected excluded", Audience{Recipients: 110, IOS: 110, Control: 5}, 5, 1, 50, 95, 99, 100, true, false},
		// Half the deliverable audience was accepted: p50 is the last acceptance, the rest never happened.
		{"half accepted", Audience{Recipients: 200, IOS: 200}, 0, 1, 100, Unreached, Unreached, Unreached, false, true},
		// 95% of 105 deliverable needs 100 accepted, reached by the last sample; 99% needs 104.
		{"p95 exactly reached", Audience{Recipients: 105, IOS: 105}, 0, 1, 53, 100, Unreached, Unreached, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := Inputs{
				Audience: tt.audience,
				Delivery: Delivery{Accepted: 100, Rejected: map[string]int64{"BadDeviceToken": tt.rejected}},
				Latency:  hundred(),
				Criteria: Criteria{MaxLost: -1, RequireTarget: true},
			}
			r := Build(in)
			for _, c := range []struct {
				name      string
				got, want float64
			}{
				{"first", r.Milestones.First, tt.first}, {"p50", r.Milestones.P50, tt.p50},
				{"p95", r.Milestones.P95, tt.p95}, {"p99", r.Milestones.P99, tt.p99}, {"all", r.Milestones.All, tt.all},
			} {
				if c.want == Unreached {
					if c.got != Unreached {
						t.Errorf("%s = %v, want unreached", c.name, c.got)
					}
					continue
				}
				checkMs(t, c.name, c.got, c.want)
			}
			if r.Target.Met != tt.targetMet {
				t.Errorf("target.met = %v, want %v", r.Target.Met, tt.targetMet)
			}
			unreached := slices.ContainsFunc(r.Failures, func(f string) bool { return strings.Contains(f, "unreached") })
			if unreached != tt.wantUnreachedFailures {
				t.Errorf("unreached failure listed = %v, want %v (failures %q)", unreached, tt.wantUnreachedFailures, r.Failures)
			}
		})
	}
}

func TestBuildDefaultsTheTarget(t *testing.T) {
	t.Parallel()
	in := smallRun()
	in.Target = Target{}
	r := Build(in)
	if r.Target.Seconds != 5 || r.Target.Percentile != 99 {
		t.Fatalf("target = %+v, want 5 s and p99", r.Target)
	}
	in.Target = Target{Percentile: 50}
	if r := Build(in); r.Target.Seconds != 5 || r.Target.Percentile != 50 {
		t.Fatalf("target = %+v, want 5 s and p50", r.Target)
	}
}

func TestBuildComputesCPUPerNotification(t *testing.T) {
	t.Parallel()
	in := smallRun()
	in.Resources.SenderCPUSeconds = 0.0004 // 400 µs for 8 notifications
	if got := Build(in).Resources.SenderCPUUsPerNotification; got != 50 {
		t.Fatalf("cpu per notification = %v µs, want 50", got)
	}
	in.Resources.SenderCPUUsPerNotification = 7 // given by the run: kept
	if got := Build(in).Resources.SenderCPUUsPerNotification; got != 7 {
		t.Fatalf("cpu per notification = %v µs, want the given 7", got)
	}
}

// TestReportJSONMatchesContract checks every field of the contract's example report.json
// exists in a built report at the same path with the same JSON type.
func TestReportJSONMatchesContract(t *testing.T) {
	t.Parallel()
	want := readJSONMap(t, mustRead(t, filepath.Join("testdata", "contract_report.json")))
	data, err := json.Marshal(Build(fixture(2000, 1)))
	if err != nil {
		t.Fatal(err)
	}
	got := readJSONMap(t, data)
	var walk func(path string, w, g any)
	walk = func(path string, w, g any) {
		switch wv := w.(type) {
		case map[string]any:
			gv, ok := g.(map[string]any)
			if !ok {
				t.Errorf("%s: got %T, want an object", path, g)
				return
			}
			if path == "delivery.rejected" { // keys are reasons, values counts
				for k, v := range gv {
					if _, ok := v.(json.Number); !ok {
						t.Errorf("%s.%s: got %T, want a count", path, k, v)
					}
				}
				return
			}
			for k, v := range wv {
				p := strings.TrimPrefix(path+"."+k, ".")
				gv2, ok := gv[k]
				if !ok {
					t.Errorf("%s: missing", p)
					continue
				}
				walk(p, v, gv2)
			}
		case []any:
			if _, ok := g.([]any); !ok {
				t.Errorf("%s: got %T, want an array", path, g)
			}
		case json.Number:
			gv, ok := g.(json.Number)
			if !ok {
				t.Errorf("%s: got %T, want a number", path, g)
				return
			}
			if isCount(path) && strings.ContainsAny(gv.String(), ".eE") {
				t.Errorf("%s: got %s, want an integer count", path, gv)
			}
		default:
			if w == nil || g == nil || typeName(w) != typeName(g) {
				t.Errorf("%s: got %T, want %T", path, g, w)
			}
		}
	}
	walk("", want, got)
}

// isCount reports whether a contract path holds a count (an integer).
func isCount(path string) bool {
	return strings.HasPrefix(path, "audience.") || strings.HasPrefix(path, "delivery.") ||
		strings.HasPrefix(path, "mock.") || path == "machine.cpus" || path == "config.audience" ||
		path == "config.workers" || path == "resources.sender_peak_rss_bytes"
}

func typeName(v any) string {
	b, _ := json.Marshal(v)
	switch {
	case bytes.HasPrefix(b, []byte(`"`)):
		return "string"
	case string(b) == "true" || string(b) == "false":
		return "bool"
	}
	return string(b)
}

func readJSONMap(t *testing.T, data []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReportRoundTrip(t *testing.T) {
	t.Parallel()
	in := fixture(3000, 5)
	r := Build(in)
	dir := t.TempDir()
	if err := WriteRun(dir, r, in); err != nil {
		t.Fatal(err)
	}
	back, err := ReadReport(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(r)
	b, _ := json.Marshal(back)
	if !bytes.Equal(a, b) {
		t.Fatalf("round trip changed the report:\n%s\n%s", a, b)
	}
	// The contract's own example reads back too.
	if _, err := ReadReport(filepath.Join("testdata", "contract_report.json")); err != nil {
		t.Fatal(err)
	}
}

func TestReadReportBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, data, field string
	}{
		// Another schema is refused, naming the field.
		{"wrong schema", `{"schema": "salvo.report/v0"}`, "schema"},
		// A count given as a string names the nested field.
		{"bad type", `{"schema": "salvo.report/v1", "delivery": {"accepted": "many"}}`, "delivery.accepted"},
		// Broken JSON names the file only.
		{"syntax", `{"schema": `, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), "report.json")
			if err := os.WriteFile(p, []byte(tt.data), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadReport(p)
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v, want an *InputError", err)
			}
			if ie.File != p || ie.Field != tt.field {
				t.Fatalf("err names file %q field %q, want %q and %q", ie.File, ie.Field, p, tt.field)
			}
		})
	}
}

// TestCampaignAccount: the campaign's account reaches the report as given, with the
// acceptances that have no latency sample counted after a kill, and report.md and
// delivered.svg show it (the events numbered alike in both).
func TestCampaignAccount(t *testing.T) {
	t.Parallel()
	r := buildSmallRun(func(in *Inputs) {
		in.Campaign = &Campaign{State: "done", States: []string{"done"}, Killed: 1, InFlightBound: 200,
			Stall:  &StallSeen{SeenMs: 11000, SinceMs: 300, Cause: "transport: connection refused"},
			Events: []Event{{AtMs: 350, What: "SIGKILL send1"}, {AtMs: 420, What: "started send3"}}}
		in.Latency = histOf(100, 200, 300, 400, 500)
		in.FirstArm = &FirstArm{Name: "baseline", Milestones: Milestones{All: Unreached}}
	})
	if !r.Pass {
		t.Fatalf("failures %q", r.Failures)
	}
	if c := r.Campaign; c == nil || r.NoLatencySample == nil || *r.NoLatencySample != 3 || c.Stall == nil || len(c.Events) != 2 {
		t.Fatalf("campaign %+v, want 3 acceptances without a sample, the stall and two events", r.Campaign)
	}
	if v := r.VersusFirst; v == nil || v.Arm != "baseline" || v.AllDelayMs != Unreached {
		t.Fatalf("vs first arm %+v, want baseline with an unreached delay", v)
	}
	var md bytes.Buffer
	if err := writeReportMD(&md, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Campaign", "| state | done |", "transport: connection refused",
		"| 1 | 350 ms | SIGKILL send1 |", "**3 accepted notifications (", "Last acceptance against the first arm (baseline"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md.String())
		}
	}
	svg := deliveredSVG(r, histOf(100, 200, 300, 400, 500), nil)
	if err := xmlWellFormed(svg); err != nil || !bytes.Contains(svg, []byte(`stroke-dasharray="1,3"`)) {
		t.Errorf("delivered.svg: %v; event lines present: %v", err, bytes.Contains(svg, []byte(`1,3`)))
	}
}

// TestMockMilestones: the mock's receipts give mock.milestones_ms; after a kill that left
// acceptances without a sample they stand in for the sender's milestones and the target, and
// a later arm's delay is measured on them when both arms have them.
func TestMockMilestones(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		killed     bool
		wantP99    float64 // milestones_ms.p99
		wantSource string  // vs_first_arm.source
		wantDelay  float64
	}{
		// No kill: the sender's milestones stay; the delay is the mock's (both arms have it).
		{"no kill", false, 800, "mock", 440},
		// A kill left two acceptances without a sample: the mock's milestones are used.
		{"kill", true, 840, "mock", 440},
	} {
		r := buildSmallRun(func(in *Inputs) {
			in.MockArrivals = histOf(120, 220, 320, 420, 520, 620, 720, 840)
			in.FirstArm = &FirstArm{Name: "baseline", Milestones: Milestones{All: 100}, MockMilestones: &Milestones{All: 400}}
			if tc.killed {
				in.Campaign = &Campaign{State: "done", Killed: 1, InFlightBound: 10}
				in.Latency = histOf(100, 200, 300, 400, 500, 600)
			}
		})
		if !r.Pass {
			t.Errorf("%s: failures %q", tc.name, r.Failures)
		}
		if r.Mock.Milestones == nil {
			t.Fatalf("%s: no mock milestones", tc.name)
		}
		checkMs(t, tc.name+": mock all", r.Mock.Milestones.All, 840)
		checkMs(t, tc.name+": milestones p99", r.Milestones.P99, tc.wantP99)
		if v := r.VersusFirst; v == nil || v.Source != tc.wantSource {
			t.Fatalf("%s: vs first arm %+v, want source %s", tc.name, v, tc.wantSource)
		}
		checkMs(t, tc.name+": delay", r.VersusFirst.AllDelayMs, tc.wantDelay)
	}
}
