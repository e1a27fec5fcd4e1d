package sender

import (
	"maps"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/salvopush/salvo/sender/metrics"
)

// SendStats is what send loops measured for one send (or several, merged): every accepted
// notification's latency from the press in an HdrHistogram (microseconds), a timeline, and
// outcome counters. It is a value for reading, merging and publishing; the loops record
// into a sendRecorder.
type SendStats struct {
	Latency   *hdrhistogram.Histogram
	Timeline  *metrics.Timeline
	Accepted  int64
	Rejected  map[string]int64 // permanent rejections by reason
	Transient map[string]int64 // transient results by reason (each retried or failed)
	Failed    map[string]int64 // given up on (deadline passed, unrenderable), by last reason
	Retries   int64            // tries beyond the first
	// Unsent counts recipients released without a push because the campaign was aborted.
	Unsent int64
	// LastProgress is when a recipient was last accepted or rejected (zero: never).
	LastProgress time.Time
	// Stall is set while the send has work in flight but no progress (see WorkerConfig.StallAfter).
	Stall *Stall
}

// Stall describes a send that has work in flight and made no progress for a while.
type Stall struct {
	Since  time.Time `json:"since"`  // the last progress (or when the work began)
	Cause  string    `json:"cause"`  // the last transient reason seen, or "no answer"
	Worker string    `json:"worker"` // who saw it
}

// NewSendStats returns empty statistics.
func NewSendStats() *SendStats { return sendStatsWith(metrics.NewLatencyHistogram()) }

// sendStatsWith is NewSendStats around an existing latency histogram of the latency layout.
func sendStatsWith(latency *hdrhistogram.Histogram) *SendStats {
	return &SendStats{Latency: latency, Timeline: metrics.NewTimeline(0),
		Rejected: map[string]int64{}, Transient: map[string]int64{}, Failed: map[string]int64{}}
}

// FailedTotal is the number of recipients given up on.
func (s *SendStats) FailedTotal() int64 { return sum(s.Failed) }

// RejectedTotal is the number of recipients rejected for good.
func (s *SendStats) RejectedTotal() int64 { return sum(s.Rejected) }

// Done is accepted + permanently rejected + failed: the recipients finished.
func (s *SendStats) Done() int64 { return s.Accepted + s.RejectedTotal() + s.FailedTotal() }

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// Merge adds o into s. Neither may be in use by another goroutine. The later LastProgress
// wins; a stall is kept when either has one.
func (s *SendStats) Merge(o *SendStats) {
	metrics.MergeLatency(s.Latency, o.Latency)
	s.Timeline.Merge(o.Timeline)
	s.Accepted += o.Accepted
	s.Retries += o.Retries
	s.Unsent += o.Unsent
	addReasons(s.Rejected, o.Rejected)
	addReasons(s.Transient, o.Transient)
	addReasons(s.Failed, o.Failed)
	if o.LastProgress.After(s.LastProgress) {
		s.LastProgress = o.LastProgress
	}
	if s.Stall == nil && o.Stall != nil {
		st := *o.Stall
		s.Stall = &st
	}
}

func addReasons(dst, src map[string]int64) {
	for k, v := range src {
		dst[k] += v
	}
}

// sendRecorder is what the send loops of one worker record for one send. Loops hold mu once
// per answered chunk, not per notification, and record latencies (an atomic histogram, so
// reading it needs no copy per loop) while holding it.
type sendRecorder struct {
	campaign, send string

	latency metrics.Latency

	mu           sync.Mutex
	timeline     *metrics.Timeline
	accepted     int64
	rejected     map[string]int64
	transient    map[string]int64
	failed       map[string]int64
	retries      int64
	unsent       int64
	lastProgress time.Time
	lastReason   string    // the last transient reason
	inFlight     int       // chunks being pushed or waiting to retry
	busySince    time.Time // when inFlight last went from 0 to 1
	stall        *Stall
	dirty        bool // changed since last published
	seeded       bool // restored from a published snapshot
}

func newSendRecorder(campaign, send string) *sendRecorder {
	return &sendRecorder{campaign: campaign, send: send, timeline: metrics.NewTimeline(0),
		rejected: map[string]int64{}, transient: map[string]int64{}, failed: map[string]int64{}}
}

// snapshot returns the recorder's figures as a SendStats (its own copies): one consistent
// cut, since loops record latencies while holding mu, so the histogram counts exactly the
// accepted notifications.
func (r *sendRecorder) snapshot() *SendStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := &SendStats{Latency: r.latency.Histogram(), Timeline: metrics.NewTimeline(0), Accepted: r.accepted,
		Rejected: maps.Clone(r.rejected), Transient: maps.Clone(r.transient), Failed: maps.Clone(r.failed),
		Retries: r.retries, Unsent: r.unsent, LastProgress: r.lastProgress}
	out.Timeline.Merge(r.timeline)
	if r.stall != nil {
		st := *r.stall
		out.Stall = &st
	}
	return out
}

// seed adds a published snapshot's figures (a worker restarting where it left off).
func (r *sendRecorder) seed(s *SendStats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.latency.Add(s.Latency)
	r.timeline.Merge(s.Timeline)
	r.accepted += s.Accepted
	r.retries += s.Retries
	r.unsent += s.Unsent
	addReasons(r.rejected, s.Rejected)
	addReasons(r.transient, s.Transient)
	addReasons(r.failed, s.Failed)
	if s.LastProgress.After(r.lastProgress) {
		r.lastProgress = s.LastProgress
	}
	r.seeded, r.dirty = true, true
}

// begin and end bracket a chunk in flight (for stall detection).
func (r *sendRecorder) begin(now time.Time) {
	r.mu.Lock()
	if r.inFlight == 0 {
		r.busySince = now
	}
	r.inFlight++
	r.mu.Unlock()
}

func (r *sendRecorder) end() {
	r.mu.Lock()
	r.inFlight--
	r.mu.Unlock()
}

// checkStall updates the stall state at now: stalled when chunks are in flight and nothing
// was accepted or rejected for after. It returns the stall when it just began, and resumed
// true when a stall just ended, so that the caller logs each once.
func (r *sendRecorder) checkStall(now time.Time, after time.Duration, worker string) (began *Stall, resumed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	since := r.lastProgress
	if r.busySince.After(since) {
		since = r.busySince
	}
	stalled := r.inFlight > 0 && now.Sub(since) >= after
	switch {
	case stalled && r.stall == nil:
		cause := r.lastReason
		if cause == "" {
			cause = "no answer from the provider"
		}
		r.stall = &Stall{Since: since, Cause: cause, Worker: worker}
		r.dirty = true
		st := *r.stall
		return &st, false
	case !stalled && r.stall != nil:
		r.stall = nil
		r.dirty = true
		return nil, true
	}
	return nil, false
}
