package results

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"runtime"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/salvopush/salvo/sender/metrics"
)

// Schema is the value of report.json's "schema" field.
const Schema = "salvo.report/v1"

// Report is one run's report.json (schema "salvo.report/v1"). Its JSON field names and
// meanings are a contract read by CI gates and dashboards: fields may be added, never
// renamed or removed. Times are milliseconds from the GO press unless named otherwise;
// counts are integers. Build fills it; ReadReport reads it back.
type Report struct {
	Schema    string    `json:"schema"`
	Scenario  string    `json:"scenario"`
	StartedAt time.Time `json:"started_at"`
	Machine   Machine   `json:"machine"`
	Config    Config    `json:"config"`
	Audience  Audience  `json:"audience"`
	Delivery  Delivery  `json:"delivery"`
	// Mock holds the mock servers' own counts; nil (and absent from the JSON) when the run
	// sent to real providers.
	Mock    *Mock   `json:"mock,omitempty"`
	Latency Latency `json:"latency_ms"`
	// NoLatencySample counts accepted notifications that have no latency sample (a worker
	// died before publishing its figures): the latencies, milestones and throughput describe
	// the others, so a gap can only make the milestones later, never earlier. Present (even
	// at 0) in reports of sends whose latencies come from published figures, such as `salvo
	// report`'s; absent when every acceptance was measured (an addition to the contract's
	// fields).
	NoLatencySample *int64     `json:"no_latency_sample,omitempty"`
	Milestones      Milestones `json:"milestones_ms"`
	Throughput      Throughput `json:"throughput_per_s"`
	Target          Target     `json:"target"`
	Resources       Resources  `json:"resources"`
	// Capacity sizes a send fleet and the provider side for the audience within the target
	// from the measured sender CPU (an addition to the contract's fields); absent when the
	// run measured no sender CPU.
	Capacity *Capacity `json:"capacity,omitempty"`
	// Criteria are the pass criteria the run was judged against (an addition to the
	// contract's fields).
	Criteria Criteria `json:"criteria"`
	// Faults describes what was injected (an addition to the contract's fields); absent when
	// nothing was.
	Faults any `json:"faults,omitempty"`
	// Campaign is the campaign's own account of the run (terminal states, stall, dead
	// letters, redrives) and what the run did to the pipeline; absent when the run did not
	// follow it (an addition to the contract's fields).
	Campaign *Campaign `json:"campaign,omitempty"`
	// VersusFirst compares the run with the scenario's first arm; absent for the first arm
	// and for single runs (an addition to the contract's fields).
	VersusFirst *VersusFirst `json:"vs_first_arm,omitempty"`
	// Identity compares, token by token, what the mock accepted with what the registry and
	// the audience say the send had to deliver; absent when the run did not compare them (an
	// addition to the contract's fields).
	Identity *Identity `json:"identity,omitempty"`
	// Mode is "gameday" for a rehearsal against real providers (ModeGameday); empty for a
	// benchmark run (an addition to the contract's fields).
	Mode string `json:"mode,omitempty"`
	// Aborted says whether an operator stopped the run (gameday reports always carry it).
	Aborted *bool `json:"aborted,omitempty"`
	// Providers holds each provider's own figures ("apns", "fcm") where the run measured
	// them apart.
	Providers map[string]ProviderReport `json:"providers,omitempty"`
	// Notes are plain statements a reader must not miss (what the figures do and do not
	// say); never judged.
	Notes []string `json:"notes,omitempty"`
	// Pass is true when Failures is empty.
	Pass bool `json:"pass"`
	// Failures lists, in plain words, every truth check and criterion that did not hold;
	// never null in the JSON.
	Failures []string `json:"failures"`
}

// Machine describes the machine the run's report was built on.
type Machine struct {
	CPUs int    `json:"cpus"`
	Go   string `json:"go"`
	OS   string `json:"os"`
	Arch string `json:"arch"`
}

// Config is the run's configuration as the scenario set it.
type Config struct {
	Audience  int64   `json:"audience"`
	IOSShare  float64 `json:"ios_share"`
	Transport string  `json:"transport"`
	Workers   int     `json:"workers"`
	// Extra holds scenario-specific parameters (connections per worker, fault rates...);
	// values must marshal to JSON.
	Extra map[string]any `json:"extra,omitempty"`
}

// Audience counts the campaign's recipients. Recipients = IOS + Android; Control is the
// part of Recipients held back on purpose (a control group gets nothing).
type Audience struct {
	Recipients int64 `json:"recipients"`
	IOS        int64 `json:"ios"`
	Android    int64 `json:"android"`
	Control    int64 `json:"control"`
}

// Delivery counts outcomes per recipient, as the sender saw them.
type Delivery struct {
	// Accepted counts recipients accepted by the provider (or mock) at least once.
	Accepted int64 `json:"accepted"`
	// Rejected counts recipients whose final outcome was a permanent rejection, by reason
	// ("Unregistered", "BadDeviceToken", "UNREGISTERED"...). Rejections that were retried
	// are not counted here but in Retries. Never null in the JSON.
	Rejected map[string]int64 `json:"rejected"`
	// Failed counts recipients the sender gave up on and said so (retries exhausted,
	// transport errors).
	Failed int64 `json:"failed"`
	// Lost counts recipients that should have been sent (not control, not rejected for
	// good) and were never accepted, failed ones included: Build computes it as
	// recipients - control - rejected - accepted. A non-zero value given to Build is the
	// run's own count and is checked against that.
	Lost int64 `json:"lost"`
	// Duplicates counts recipients accepted more than once.
	Duplicates int64 `json:"duplicates"`
	// Retries counts send attempts beyond the first.
	Retries int64 `json:"retries"`
}

// RejectedTotal is the sum of Rejected over all reasons.
func (d Delivery) RejectedTotal() int64 {
	var n int64
	for _, c := range d.Rejected {
		n += c
	}
	return n
}

// Mock holds what the mock servers counted on their own, from what they received.
type Mock struct {
	Received   int64 `json:"received"`
	Unique     int64 `json:"unique"`
	Duplicates int64 `json:"duplicates"`
	// Milestones, when the run gave the mock's receipts (Inputs.MockArrivals), are the
	// milestones computed from them: when the n-th accepted request reached the mock, from
	// the press. The independent view of milestones_ms; a repeated push counts as a receipt,
	// so with d duplicates a milestone may read up to d receipts early.
	Milestones *Milestones `json:"milestones_ms,omitempty"`
	// MilestoneCheck compares milestones_ms with Milestones, the sender's clock with the
	// mock's (ClockCheck): the gaps, the allowance and whether they were judged, or why not
	// (an addition to the contract's fields); absent in reports built before the check.
	MilestoneCheck *ClockCheck `json:"milestone_check,omitempty"`
}

// Identity is "nothing lost" by identity rather than count: the set of device tokens the
// mock accepted for the campaign against the set the registry and the audience say it had
// to deliver (worked out without the sender's code: the audience's users' devices on the
// platforms the message covers, less the control group's and the tokens the mock always
// rejects).
type Identity struct {
	// Expected counts the devices expected to be accepted; Accepted the distinct tokens the
	// mock accepted for the campaign; Matched those in both.
	Expected int64 `json:"expected"`
	Accepted int64 `json:"accepted"`
	Matched  int64 `json:"matched"`
	// Missing were expected and never accepted (Expected - Matched); Unexpected were
	// accepted and not expected (another user's device, a control user's, a token the
	// registry never held).
	Missing    int64 `json:"missing"`
	Unexpected int64 `json:"unexpected"`
	// Invalid counts the audience's devices the mock rejects for good and Control those of
	// the control group: with Expected, every device the audience resolves to, which
	// audience.recipients must equal.
	Invalid int64 `json:"invalid"`
	Control int64 `json:"control"`
	// Examples name a few missing and unexpected tokens ("missing ios,<token>").
	Examples []string `json:"examples,omitempty"`
}

// Latency holds latency percentiles in milliseconds from the GO press, among accepted
// notifications.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// Milestones holds, in milliseconds from the GO press, when a share of the deliverable
// audience had been accepted; Unreached (-1) when that share never was.
type Milestones struct {
	First float64 `json:"first"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	All   float64 `json:"all"`
}

// Unreached is the value of a milestone that was never reached.
const Unreached = -1

// Throughput holds accepted notifications per second.
type Throughput struct {
	// Mean is accepted / the time of the last acceptance (counting only acceptances with a
	// latency sample when some have none).
	Mean float64 `json:"mean"`
	// Peak1s is the most accepted in any 1-second window of the timeline.
	Peak1s float64 `json:"peak_1s"`
}

// Target is the delivery target: Percentile % of the deliverable audience accepted within
// Seconds of the GO press. Build sets Met and MilestoneMs.
type Target struct {
	Seconds    float64 `json:"seconds"`
	Percentile float64 `json:"percentile"`
	// Met is MilestoneMs <= Seconds*1000 (false when unreached).
	Met bool `json:"met"`
	// MilestoneMs is the milestone at Percentile, Unreached (-1) when it never was (an
	// addition to the contract's fields).
	MilestoneMs float64 `json:"milestone_ms"`
}

// DefaultTarget is the mission's target: 99% within 5 seconds. Build uses its fields for
// the zero fields of Inputs.Target.
func DefaultTarget() Target { return Target{Seconds: 5, Percentile: 99} }

// Resources holds what the run cost.
type Resources struct {
	SenderCPUSeconds float64 `json:"sender_cpu_seconds"`
	// SenderCPUUsPerNotification is CPU microseconds per accepted notification; Build
	// computes it from SenderCPUSeconds when it is zero.
	SenderCPUUsPerNotification float64 `json:"sender_cpu_us_per_notification"`
	SenderPeakRSSBytes         int64   `json:"sender_peak_rss_bytes"`
	MockCPUSeconds             float64 `json:"mock_cpu_seconds"`
	// PrepareMs is how long the workers took to load the campaign and report ready.
	PrepareMs                 float64 `json:"prepare_ms"`
	ResidentBytesPerRecipient float64 `json:"resident_bytes_per_recipient"`
}

// Criteria are a scenario's pass criteria. The zero value is strict on counts (no lost, no
// duplicate, no failed recipient) and sets no latency bound. A negative Max* count means no
// bound; a zero float bound means no bound.
type Criteria struct {
	// RequireTarget fails the run when the target milestone is above the target or unreached.
	RequireTarget bool  `json:"require_target"`
	MaxLost       int64 `json:"max_lost"`
	// MaxDuplicates bounds both the sender's and the mock's duplicate counts.
	MaxDuplicates int64   `json:"max_duplicates"`
	MaxFailed     int64   `json:"max_failed"`
	MaxP95Ms      float64 `json:"max_p95_ms,omitempty"`
	MaxP99Ms      float64 `json:"max_p99_ms,omitempty"`
	// MinThroughputPerS is a floor on throughput_per_s.mean.
	MinThroughputPerS float64 `json:"min_throughput_per_s,omitempty"`
	// MaxPrepareMs bounds resources.prepare_ms.
	MaxPrepareMs float64 `json:"max_prepare_ms,omitempty"`
	// MaxSenderPeakRSSBytes bounds resources.sender_peak_rss_bytes; 0 means no bound.
	MaxSenderPeakRSSBytes int64 `json:"max_sender_peak_rss_bytes,omitempty"`
	// ExactMockReceived fails the run unless the mock servers received exactly one request
	// per non-control recipient: no retry, no duplicate on the wire. Meant for runs without
	// faults, such as the double press.
	ExactMockReceived bool `json:"exact_mock_received,omitempty"`
	// ExpectState is the terminal state the campaign must end in (campaign.state), from its
	// status in the API; empty means no check.
	ExpectState string `json:"expect_state,omitempty"`
	// RequireStall fails the run unless the campaign's status showed the send stalled while
	// a fault lasted (campaign.stall).
	RequireStall bool `json:"require_stall,omitempty"`
	// RequireRedrive fails the run unless recipients were dead-lettered and a redrive sent
	// every one of them again (whose fate then counts in delivery like everyone's).
	RequireRedrive bool `json:"require_redrive,omitempty"`
	// RequireRedelivery fails the run unless it delivered batch messages and range messages
	// twice (campaign.batches_sent_twice, ranges_delivered_twice): a redelivery scenario
	// that forced nothing proves nothing.
	RequireRedelivery bool `json:"require_redelivery,omitempty"`
	// MaxAllDelayMs bounds milestones_ms.all minus the scenario's first arm's (vs_first_arm):
	// how much later a fault or a kill let the last recipient be accepted; 0 means no bound.
	MaxAllDelayMs float64 `json:"max_all_delay_ms,omitempty"`
	// MaxRatePerS is a rate cap per provider: the run fails when a provider's busiest second
	// (Providers[...].PushesPeak1s) is above RateAllowance of it. 0: no cap.
	MaxRatePerS float64 `json:"max_rate_per_s,omitempty"`
}

// Inputs is everything a run measured; Build turns it into a Report. Latency and Timeline
// are read, never modified.
type Inputs struct {
	Scenario  string
	StartedAt time.Time
	Config    Config
	Audience  Audience
	Delivery  Delivery
	// Mock is nil when the run did not use the mock servers.
	Mock *Mock
	// Latency holds one sample per accepted recipient (its first acceptance), in
	// microseconds from the GO press; see NewLatencyHistogram and RecordLatency.
	Latency *hdrhistogram.Histogram
	// Timeline counts accepted and rejected responses over time; nil skips the timeline
	// checks and outputs.
	Timeline *metrics.Timeline
	// MockArrivals holds one sample per request the mock accepted, its arrival in
	// microseconds from the GO press (from the mock's receipts), for mock.milestones_ms; nil
	// leaves them out.
	MockArrivals *hdrhistogram.Histogram
	// NoLatencySample, when set, counts acceptances in Delivery.Accepted that Latency and
	// Timeline do not hold (their figures were never published): Build then checks that
	// samples + NoLatencySample == accepted, and states the count in the report. Nil means
	// every acceptance was measured (samples == accepted), unless Campaign says a sending
	// process was killed: Build then counts the gap itself.
	NoLatencySample *int64
	Resources       Resources
	// Capacity holds the capacity line's assumptions; the zero value takes
	// DefaultCapacityModel's.
	Capacity CapacityModel
	// Target: a zero Seconds or Percentile takes DefaultTarget's.
	Target   Target
	Criteria Criteria
	// Faults describes what was injected; it must marshal to JSON. Nil means none.
	Faults any
	// TimedOut says the send was still unfinished TimeoutSeconds after GO, when the run
	// stopped waiting; Build fails such a run.
	TimedOut       bool
	TimeoutSeconds int
	// Presses are the answers of the GO presses, in any order; nil skips the press checks.
	// Build fails a run unless every press answered the same send ID and exactly one of
	// them started the send.
	Presses []Press
	// WorkersExpected send workers should have reported their statistics and
	// WorkersReporting did; Build fails a run where fewer reported. Zero WorkersExpected
	// skips the check.
	WorkersExpected, WorkersReporting int
	// Campaign is the campaign's account of the run (nil: not followed). When it says a
	// sending process was killed (Killed > 0), the latency histogram and the timeline may
	// lack that process's unpublished acceptances (Build counts them in
	// campaign.no_latency_sample) and may hold a repeated push at most InFlightBound times;
	// the mock's and the sender's duplicates may reach MaxDuplicates + InFlightBound.
	Campaign *Campaign
	// FirstArm is the scenario's first arm when this run is a later one (nil otherwise),
	// for the criteria relative to it.
	FirstArm *FirstArm
	// Identity, when the run compared the mock's accepted tokens with the expected ones,
	// holds the comparison. Build fails the run when a token was accepted that was not
	// expected, or when the expected tokens the mock accepted are not as many as the
	// sender's delivery.accepted (the right number of the wrong recipients, or a recipient
	// counted accepted that the mock never saw).
	Identity *Identity
	// Mode, Aborted and Notes are copied to the report; an aborted run fails.
	Mode    string
	Aborted *bool
	Notes   []string
	// Providers are the figures of each provider measured apart (nil: none).
	Providers map[string]ProviderInputs
}

// Press is the answer to one GO press.
type Press struct {
	// SendID is the send the press answered with.
	SendID string
	// Started is true for the press that started the send, false for one that found it
	// started already.
	Started bool
}

// Build computes a report from a run's measurements: latency percentiles and milestones
// from the histogram, throughput, the target verdict, the truth checks (the report's own
// numbers must agree) and the scenario's criteria. Every check that does not hold adds a
// line to Failures; Pass is true when there is none. Build never fails: bad inputs show up
// as failures.
func Build(in Inputs) *Report {
	hist := in.Latency
	if hist == nil {
		hist = metrics.NewLatencyHistogram()
	}
	target := in.Target
	if target.Seconds <= 0 {
		target.Seconds = DefaultTarget().Seconds
	}
	if target.Percentile <= 0 || target.Percentile > 100 {
		target.Percentile = DefaultTarget().Percentile
	}
	r := &Report{
		Schema:    Schema,
		Scenario:  in.Scenario,
		StartedAt: in.StartedAt.UTC().Truncate(time.Second),
		Machine: Machine{
			CPUs: runtime.NumCPU(),
			Go:   runtime.Version(),
			OS:   runtime.GOOS,
			Arch: runtime.GOARCH,
		},
		Config:    in.Config,
		Audience:  in.Audience,
		Delivery:  in.Delivery,
		Resources: in.Resources,
		Target:    target,
		Criteria:  in.Criteria,
		Faults:    in.Faults,
		Mode:      in.Mode,
		Notes:     in.Notes,
	}
	if in.Aborted != nil {
		aborted := *in.Aborted
		r.Aborted = &aborted
	}
	r.Delivery.Rejected = make(map[string]int64, len(in.Delivery.Rejected))
	for reason, n := range in.Delivery.Rejected {
		r.Delivery.Rejected[reason] = n
	}
	if in.Mock != nil {
		m := *in.Mock
		r.Mock = &m
	}
	var failures []string
	fail := func(format string, a ...any) { failures = append(failures, fmt.Sprintf(format, a...)) }

	d := &r.Delivery
	a := r.Audience
	rejected := d.RejectedTotal()
	deliverable := a.Recipients - a.Control - rejected

	// Lost is computed from the audience as the contract defines it: recipients that should
	// have been sent (not control, not rejected for good) and were never accepted. Failed
	// recipients (the sender gave up and said so) are part of it. The run's own count, when it
	// gave one, must agree.
	lost := a.Recipients - a.Control - rejected - d.Accepted
	if lost < 0 {
		fail("truth: audience does not add up: accepted %d + rejected %d + control %d = %d exceeds audience.recipients %d",
			d.Accepted, rejected, a.Control, d.Accepted+rejected+a.Control, a.Recipients)
		lost = 0
	}
	if d.Failed > lost {
		fail("truth: delivery.failed %d exceeds the %d recipients never accepted (recipients - control - rejected - accepted)",
			d.Failed, lost)
	}
	if in.Delivery.Lost != 0 && in.Delivery.Lost != lost {
		fail("truth: delivery.lost %d counted by the run != %d computed as recipients - control - rejected - accepted",
			in.Delivery.Lost, lost)
	}
	d.Lost = lost
	if a.IOS+a.Android != a.Recipients {
		fail("truth: audience.ios %d + audience.android %d != audience.recipients %d", a.IOS, a.Android, a.Recipients)
	}
	// A rehearsal's dry run with no Android token validated nothing, and says so with zero
	// recipients; every other run must have someone to deliver to.
	if deliverable <= 0 && !(in.Mode == ModeGameday && a.Recipients == 0) {
		fail("truth: no deliverable recipients (recipients %d - control %d - rejected %d)", a.Recipients, a.Control, rejected)
	}
	var inFlight int64
	if in.Campaign != nil {
		c := *in.Campaign
		c.States = append([]string{}, c.States...)
		r.Campaign = &c
		inFlight = c.InFlightBound
	}
	killed := r.Campaign != nil && r.Campaign.Killed > 0
	var gap int64
	switch n := hist.TotalCount(); {
	case in.NoLatencySample != nil:
		gap = *in.NoLatencySample
		r.NoLatencySample = &gap
		if gap < 0 {
			fail("truth: no_latency_sample %d is negative", gap)
		}
		if n+gap != d.Accepted {
			fail("truth: latency histogram holds %d samples + %d accepted without a sample != delivery.accepted %d", n, gap, d.Accepted)
		}
	case killed:
		// A killed process's acceptances since it last published are in the ledger only, and
		// a push it made without recording it may be sampled again by whoever repeats it.
		gap = max(d.Accepted-n, 0)
		r.NoLatencySample = &gap
		if n > d.Accepted+inFlight {
			fail("truth: latency histogram holds %d samples, more than delivery.accepted %d plus the in-flight bound %d", n, d.Accepted, inFlight)
		}
	case n != d.Accepted:
		fail("truth: latency histogram holds %d samples but delivery.accepted is %d", n, d.Accepted)
	}
	if in.Timeline != nil {
		switch acc, _ := in.Timeline.Totals(); {
		case killed && in.NoLatencySample == nil:
			if acc > d.Accepted+inFlight {
				fail("truth: timeline counts %d accepted, more than delivery.accepted %d plus the in-flight bound %d", acc, d.Accepted, inFlight)
			}
		case acc+gap != d.Accepted && gap == 0:
			fail("truth: timeline counts %d accepted but delivery.accepted is %d", acc, d.Accepted)
		case acc+gap != d.Accepted:
			fail("truth: timeline counts %d accepted + %d without a sample != delivery.accepted %d", acc, gap, d.Accepted)
		}
	}
	if m := r.Mock; m != nil {
		if d.Accepted != m.Unique {
			fail("truth: delivery.accepted %d != mock.unique %d (the mock saw a different number of distinct notifications)", d.Accepted, m.Unique)
		}
		if m.Unique+m.Duplicates > m.Received {
			fail("truth: mock.unique %d + mock.duplicates %d exceeds mock.received %d", m.Unique, m.Duplicates, m.Received)
		}
		// Every repeat the sender recorded was a second accepted push: the mock, which sees
		// every push, counted it too (and perhaps more the sender never recorded).
		if d.Duplicates > m.Duplicates {
			fail("truth: delivery.duplicates %d (repeats the sender recorded) exceeds mock.duplicates %d", d.Duplicates, m.Duplicates)
		}
	}

	if id := in.Identity; id != nil {
		idc := *id
		idc.Examples = append([]string(nil), id.Examples...)
		r.Identity = &idc
		if id.Unexpected > 0 {
			fail("identity: the mock accepted %d tokens that were not to be sent (%s)", id.Unexpected, strings.Join(id.Examples, "; "))
		}
		if id.Matched != d.Accepted {
			fail("identity: the mock accepted %d of the %d expected tokens (%d missing), but delivery.accepted is %d",
				id.Matched, id.Expected, id.Missing, d.Accepted)
		}
		if n := id.Expected + id.Invalid + id.Control; n != a.Recipients || id.Control != a.Control {
			fail("identity: the registry and the audience give %d devices (%d control), the sender resolved %d (%d control)",
				n, id.Control, a.Recipients, a.Control)
		}
		if id.Missing != id.Expected-id.Matched {
			fail("truth: identity.missing %d != expected %d - matched %d", id.Missing, id.Expected, id.Matched)
		}
	}

	r.Latency = latencyOf(hist)
	r.Milestones = Milestones{
		First: Unreached,
		P50:   milestoneMs(hist, deliverable, 50),
		P95:   milestoneMs(hist, deliverable, 95),
		P99:   milestoneMs(hist, deliverable, 99),
		All:   Unreached,
	}
	if hist.TotalCount() > 0 {
		r.Milestones.First = usToMs(hist.Min())
		// With acceptances that have no sample, the last one's time is unknown.
		if deliverable > 0 && d.Accepted-gap >= deliverable {
			r.Milestones.All = usToMs(hist.Max())
		}
	}
	if h := in.MockArrivals; h != nil && r.Mock != nil {
		r.Mock.Milestones = &Milestones{First: Unreached, P50: milestoneMs(h, deliverable, 50),
			P95: milestoneMs(h, deliverable, 95), P99: milestoneMs(h, deliverable, 99), All: Unreached}
		if h.TotalCount() > 0 {
			r.Mock.Milestones.First = usToMs(h.Min())
			if deliverable > 0 && h.TotalCount() >= deliverable {
				r.Mock.Milestones.All = usToMs(h.Max())
			}
		}
	}
	// After a kill that left acceptances without a sample, the sender's milestones would read
	// late or unreached: they are the mock's, which saw every acceptance.
	mockMilestones := killed && gap > 0 && r.Mock != nil && r.Mock.Milestones != nil
	senderMilestones := r.Milestones
	if mockMilestones {
		r.Milestones = *r.Mock.Milestones
	}
	// The two clocks must agree: the sender's milestones against the mock's receipts.
	if r.Mock != nil {
		var clockFails []string
		var redriven int64
		if r.Campaign != nil {
			redriven = r.Campaign.Redriven
		}
		r.Mock.MilestoneCheck, clockFails = clockCheck(r.Mock, senderMilestones, hist, in.MockArrivals, deliverable, mockMilestones, redriven)
		failures = append(failures, clockFails...)
		if over := r.Mock.MilestoneCheck.OverAllowance; len(over) > 0 {
			more := ""
			if len(over) > 1 {
				more = fmt.Sprintf(" (and %d more milestones: mock.milestone_check.over_allowance)", len(over)-1)
			}
			r.Notes = append(append([]string(nil), r.Notes...), fmt.Sprintf(
				"%s%s; a sender short of CPU reads its answers late, and its latencies and milestones include that wait", over[0], more))
		}
	} else {
		// Real providers: nothing independent saw the acceptances; the report says so.
		r.Notes = append(append([]string(nil), r.Notes...), clockNote)
	}
	r.Throughput = throughputOf(d.Accepted-gap, hist, in.Timeline)
	if r.Resources.SenderCPUUsPerNotification == 0 && d.Accepted > 0 {
		r.Resources.SenderCPUUsPerNotification = round(r.Resources.SenderCPUSeconds*1e6/float64(d.Accepted), 3)
	}

	r.Capacity = capacityOf(r.Audience, r.Resources, target, in.Capacity)

	targetMs := milestoneMs(hist, deliverable, target.Percentile)
	if mockMilestones {
		targetMs = milestoneMs(in.MockArrivals, deliverable, target.Percentile)
	}
	r.Target.MilestoneMs = targetMs
	r.Target.Met = targetMs != Unreached && targetMs <= target.Seconds*1000

	c := r.Criteria
	if c.MaxLost >= 0 && d.Lost > c.MaxLost {
		fail("lost: %d recipients were never accepted (max %d)", d.Lost, c.MaxLost)
	}
	if c.MaxFailed >= 0 && d.Failed > c.MaxFailed {
		fail("failed: the sender gave up on %d recipients (max %d)", d.Failed, c.MaxFailed)
	}
	maxDup, inFlightNote := c.MaxDuplicates, ""
	if inFlight > 0 && maxDup >= 0 {
		maxDup += inFlight
		inFlightNote = fmt.Sprintf(", of which %d for what the killed processes had in flight", inFlight)
	}
	if maxDup >= 0 && d.Duplicates > maxDup {
		fail("duplicates: %d recipients were accepted more than once (max %d%s)", d.Duplicates, maxDup, inFlightNote)
	}
	if m := r.Mock; m != nil && maxDup >= 0 && m.Duplicates > maxDup {
		fail("duplicates: the mock received %d duplicate notifications (max %d%s)", m.Duplicates, maxDup, inFlightNote)
	}
	if c.MaxP95Ms > 0 && r.Latency.P95 > c.MaxP95Ms {
		fail("latency: p95 %s exceeds %s", fmtMs(r.Latency.P95), fmtMs(c.MaxP95Ms))
	}
	if c.MaxP99Ms > 0 && r.Latency.P99 > c.MaxP99Ms {
		fail("latency: p99 %s exceeds %s", fmtMs(r.Latency.P99), fmtMs(c.MaxP99Ms))
	}
	if c.MinThroughputPerS > 0 && r.Throughput.Mean < c.MinThroughputPerS {
		fail("throughput: mean %s/s is below %s/s", fmtFloat(r.Throughput.Mean), fmtFloat(c.MinThroughputPerS))
	}
	if c.MaxPrepareMs > 0 && r.Resources.PrepareMs > c.MaxPrepareMs {
		fail("prepare: %s exceeds %s", fmtMs(r.Resources.PrepareMs), fmtMs(c.MaxPrepareMs))
	}
	if c.MaxSenderPeakRSSBytes > 0 && r.Resources.SenderPeakRSSBytes > c.MaxSenderPeakRSSBytes {
		fail("memory: sender peak RSS %d bytes exceeds %d bytes", r.Resources.SenderPeakRSSBytes, c.MaxSenderPeakRSSBytes)
	}
	if c.RequireTarget {
		name := percentileName(target.Percentile)
		switch {
		case targetMs == Unreached:
			fail("target: %s milestone unreached: %d of %d deliverable recipients were accepted, the target needs %d",
				name, d.Accepted, max(deliverable, 0), countFor(deliverable, target.Percentile))
		case !r.Target.Met:
			fail("target: %s milestone %s is later than the %s s target", name, fmtMs(targetMs), fmtFloat(target.Seconds))
		}
	}

	if f := in.FirstArm; f != nil {
		// The mock's view when both runs have it (a killed process's unpublished samples
		// are missing from the sender's), the sender's otherwise.
		mine, theirs, src := r.Milestones.All, f.Milestones.All, "sender"
		if r.Mock != nil && r.Mock.Milestones != nil && f.MockMilestones != nil {
			mine, theirs, src = r.Mock.Milestones.All, f.MockMilestones.All, "mock"
		}
		r.VersusFirst = &VersusFirst{Arm: f.Name, Source: src, AllMs: theirs, AllDelayMs: Unreached}
		if theirs != Unreached && mine != Unreached {
			r.VersusFirst.AllDelayMs = round(mine-theirs, 3)
		}
	}
	if c.MaxAllDelayMs > 0 {
		switch v := r.VersusFirst; {
		case v == nil:
			fail("delay: no first arm to compare the last acceptance with")
		case v.AllDelayMs == Unreached:
			fail("delay: the last acceptance of this run or of %s is unreached", v.Arm)
		case v.AllDelayMs > c.MaxAllDelayMs:
			fail("delay: the last recipient was accepted %s after %s's last, more than %s",
				fmtMs(v.AllDelayMs), v.Arm, fmtMs(c.MaxAllDelayMs))
		}
	}
	failures = append(failures, campaignFailures(r)...)
	failures = append(failures, pressFailures(in.Presses)...)
	if m := r.Mock; m != nil && c.ExactMockReceived {
		if want := a.Recipients - a.Control; m.Received != want {
			fail("mock: received %d requests, want exactly one per non-control recipient (%d)", m.Received, want)
		}
	}
	if in.TimedOut {
		fail("timeout: the send was unfinished %d s after GO", in.TimeoutSeconds)
	}
	// A killed send worker may die before it first publishes, and its replacement may find
	// no work left: neither is a silent failure, so only the workers not killed are owed.
	if want := in.WorkersExpected - killedWorkers(r.Campaign); in.WorkersExpected > 0 && in.WorkersReporting < want {
		fail("workers: %d of %d send workers published statistics", in.WorkersReporting, want)
	}
	failures = append(failures, buildProviders(r, in)...)
	if r.Aborted != nil && *r.Aborted {
		fail("aborted: an operator stopped the run before it finished")
	}

	r.Failures = failures
	if r.Failures == nil {
		r.Failures = []string{}
	}
	r.Pass = len(r.Failures) == 0
	return r
}

// pressFailures checks the answers of simultaneous presses: every press answers the same
// send ID and exactly one of them started the send. No presses, no failures.
func pressFailures(presses []Press) []string {
	if len(presses) == 0 {
		return nil
	}
	var fails []string
	for _, p := range presses {
		if p.SendID != presses[0].SendID {
			fails = append(fails, fmt.Sprintf("press: presses answered different send IDs: %s and %s", presses[0].SendID, p.SendID))
			break
		}
	}
	started := 0
	for _, p := range presses {
		if p.Started {
			started++
		}
	}
	if started != 1 {
		fails = append(fails, fmt.Sprintf("press: %d of %d presses started a send, want exactly 1", started, len(presses)))
	}
	return fails
}

// Verdict sums the run up in a few words: "PASS" when every criterion held and the target
// was met, "PASS, TARGET MISSED" when every criterion held but the target, which the
// scenario reports without requiring it, was missed, and "FAIL" when a criterion failed.
func (r *Report) Verdict() string {
	switch {
	case !r.Pass:
		return "FAIL"
	case !r.Target.Met:
		return "PASS, TARGET MISSED"
	}
	return "PASS"
}

// TargetLine says in one sentence how the run did against the target, with the measured
// milestone: met, missed and by how much, or never reached.
func (r *Report) TargetLine() string {
	t := r.Target
	name := fmtFloat(t.Percentile) + "%"
	required := ""
	if !r.Criteria.RequireTarget && !t.Met {
		required = " (reported, not required by this scenario)"
	}
	switch {
	case t.MilestoneMs == Unreached:
		return fmt.Sprintf("target missed: %s of the deliverable audience was never accepted (target: within %s s)%s",
			name, fmtFloat(t.Seconds), required)
	case t.Met:
		return fmt.Sprintf("target met: %s of the deliverable audience accepted in %s (target: %s s)",
			name, fmtMs(t.MilestoneMs), fmtFloat(t.Seconds))
	}
	return fmt.Sprintf("target missed: %s of the deliverable audience accepted in %s, %s over the %s s target%s",
		name, fmtMs(t.MilestoneMs), fmtMs(t.MilestoneMs-t.Seconds*1000), fmtFloat(t.Seconds), required)
}

// latencyOf reads the latency percentiles from h.
func latencyOf(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		P50:  usToMs(h.ValueAtQuantile(50)),
		P90:  usToMs(h.ValueAtQuantile(90)),
		P95:  usToMs(h.ValueAtQuantile(95)),
		P99:  usToMs(h.ValueAtQuantile(99)),
		P999: usToMs(h.ValueAtQuantile(99.9)),
		Max:  usToMs(h.Max()),
	}
}

// countFor is how many recipients make pct % of deliverable (at least one).
func countFor(deliverable int64, pct float64) int64 {
	n := int64(math.Ceil(pct/100*float64(deliverable) - 1e-9))
	return max(n, 1)
}

// milestoneMs is the time, in ms, at which pct % of the deliverable audience had been
// accepted: the histogram's value at the countFor(deliverable, pct)-th sample, or Unreached.
func milestoneMs(h *hdrhistogram.Histogram, deliverable int64, pct float64) float64 {
	total := h.TotalCount()
	if deliverable <= 0 || pct <= 0 || pct > 100 {
		return Unreached
	}
	need := countFor(deliverable, pct)
	if need > total {
		return Unreached
	}
	return usToMs(h.ValueAtQuantile(100 * float64(need) / float64(total)))
}

// throughputOf computes the mean over the time of the last acceptance and the peak over
// sliding one-second windows of the timeline.
func throughputOf(accepted int64, h *hdrhistogram.Histogram, tl *metrics.Timeline) Throughput {
	var t Throughput
	if last := h.Max(); accepted > 0 && h.TotalCount() > 0 && last > 0 {
		t.Mean = round(float64(accepted)/(float64(last)/1e6), 1)
	}
	if tl != nil && tl.Len() > 0 {
		t.Peak1s = round(tl.PeakPerSecond(), 1)
	}
	return t
}

// usToMs converts histogram microseconds to milliseconds (exact to the microsecond).
func usToMs(us int64) float64 { return float64(us) / 1000 }

// round rounds v to the given number of decimals.
func round(v float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(v*p) / p
}

// ReadReport reads and checks a report.json. Errors name the file and, where known, the
// field (an *InputError).
func ReadReport(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fileError(path, err)
	}
	return parseReport(path, data)
}

// parseReport decodes report.json bytes; path names them in errors.
func parseReport(path string, data []byte) (*Report, error) {
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, jsonInputError(path, err)
	}
	if r.Schema != Schema {
		return nil, &InputError{File: path, Field: "schema", Err: fmt.Errorf("got %q, want %q", r.Schema, Schema)}
	}
	if r.Delivery.Rejected == nil {
		r.Delivery.Rejected = map[string]int64{}
	}
	if r.Failures == nil {
		r.Failures = []string{}
	}
	return &r, nil
}

// InputError is bad input: a file that cannot be read or does not hold what it should.
// File and, when known, Field say where.
type InputError struct {
	File  string
	Field string
	Err   error
}

// Error says "file: field F: what is wrong", or "file: what is wrong" without a field.
func (e *InputError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: field %s: %v", e.File, e.Field, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

// Unwrap returns the underlying error (fs.ErrNotExist for a missing file, for instance).
func (e *InputError) Unwrap() error { return e.Err }

// fileError is an InputError for a file that cannot be read, without repeating its path.
func fileError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &InputError{File: path, Err: err}
}

// jsonInputError turns a JSON decoding error into an InputError naming the field when the
// decoder knows it.
func jsonInputError(path string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "(top level)"
		}
		return &InputError{File: path, Field: field, Err: fmt.Errorf("cannot hold a JSON %s", te.Value)}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &InputError{File: path, Err: fmt.Errorf("invalid JSON at byte %d: %w", se.Offset, err)}
	}
	return &InputError{File: path, Err: err}
}

// killedWorkers is how many sending processes the run killed with SIGKILL.
func killedWorkers(c *Campaign) int {
	if c == nil {
		return 0
	}
	return c.Killed
}
