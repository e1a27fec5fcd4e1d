package sender

import (
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/salvopush/salvo/sender/metrics"
)

// SendStats is what send loops measured: every accepted notification's latency from the GO
// press in an HdrHistogram (microseconds), a timeline, and outcome counters. Send loops
// record into their own loopStats; Worker.Stats merges those into a SendStats, which is a
// value for reading, merging and publishing.
type SendStats struct {
	Latency   *hdrhistogram.Histogram
	Timeline  *metrics.Timeline
	Accepted  int64
	Rejected  map[string]int64 // permanent rejections by reason
	Transient map[string]int64 // transient results by reason (each retried or failed)
	Failed    int64            // given up after the last attempt
	Retries   int64            // tries beyond the first
}

// NewSendStats returns empty statistics.
func NewSendStats() *SendStats {
	return &SendStats{Latency: metrics.NewLatencyHistogram(), Timeline: metrics.NewTimeline(0),
		Rejected: map[string]int64{}, Transient: map[string]int64{}}
}

// Done is accepted + permanently rejected + failed: the recipients this worker finished.
func (s *SendStats) Done() int64 {
	n := s.Accepted + s.Failed
	for _, c := range s.Rejected {
		n += c
	}
	return n
}

// Merge adds o into s. Neither may be in use by another goroutine.
func (s *SendStats) Merge(o *SendStats) {
	metrics.MergeLatency(s.Latency, o.Latency)
	s.addCounts(o.Timeline, o.Accepted, o.Failed, o.Retries, o.Rejected, o.Transient)
}

// addCounts adds everything but latencies into s.
func (s *SendStats) addCounts(t *metrics.Timeline, accepted, failed, retries int64, rejected, transient map[string]int64) {
	s.Timeline.Merge(t)
	s.Accepted += accepted
	s.Failed += failed
	s.Retries += retries
	for k, v := range rejected {
		s.Rejected[k] += v
	}
	for k, v := range transient {
		s.Transient[k] += v
	}
}

// loopStats is what one send loop records, apart from latencies (which go to the worker's
// shared metrics.Latency). The loop holds mu once per answered chunk, not per notification;
// Worker.Stats holds it while it adds the loop's figures to a SendStats.
type loopStats struct {
	mu        sync.Mutex
	timeline  *metrics.Timeline
	accepted  int64
	rejected  map[string]int64
	transient map[string]int64
	failed    int64
	retries   int64
}

func newLoopStats() *loopStats {
	l := &loopStats{}
	l.reset()
	return l
}

func (l *loopStats) accept(sincePress time.Duration) {
	l.accepted++
	l.timeline.Add(sincePress, true)
}

func (l *loopStats) reject(sincePress time.Duration, reason string) {
	l.rejected[reason]++
	l.timeline.Add(sincePress, false)
}

func (l *loopStats) transientResult(reason string) { l.transient[reason]++ }

// addTo adds l into s except for latencies; the caller holds l.mu.
func (l *loopStats) addTo(s *SendStats) {
	s.addCounts(l.timeline, l.accepted, l.failed, l.retries, l.rejected, l.transient)
}

// reset clears l; the caller holds l.mu (or owns l alone).
func (l *loopStats) reset() {
	l.timeline = metrics.NewTimeline(0)
	l.rejected, l.transient = map[string]int64{}, map[string]int64{}
	l.accepted, l.failed, l.retries = 0, 0, 0
}
