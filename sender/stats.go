package sender

import (
	"context"
	"fmt"
	"math/bits"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/salvopush/salvo/results"
)

// SendStats is what send loops measured: every accepted notification's latency from the GO
// press in an HdrHistogram (microseconds), a timeline, and outcome counters. Send loops
// record into their own loopStats; Worker.Stats merges those into a SendStats, which is a
// value for reading, merging and publishing.
type SendStats struct {
	Latency   *hdrhistogram.Histogram
	Timeline  *results.Timeline
	Accepted  int64
	Rejected  map[string]int64 // permanent rejections by reason
	Transient map[string]int64 // transient results by reason (each retried or failed)
	Failed    int64            // given up after the last attempt
	Retries   int64            // tries beyond the first
}

// NewSendStats returns empty statistics.
func NewSendStats() *SendStats {
	return &SendStats{Latency: results.NewLatencyHistogram(), Timeline: results.NewTimeline(0),
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
	mergeLatency(s.Latency, o.Latency)
	s.addCounts(o.Timeline, o.Accepted, o.Failed, o.Retries, o.Rejected, o.Transient)
}

// addCounts adds everything but latencies into s.
func (s *SendStats) addCounts(t *results.Timeline, accepted, failed, retries int64, rejected, transient map[string]int64) {
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
// shared latencyCounts). The loop holds mu once per answered chunk, not per notification;
// Worker.Stats holds it while it adds the loop's figures to a SendStats.
type loopStats struct {
	mu        sync.Mutex
	timeline  *results.Timeline
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
	l.timeline = results.NewTimeline(0)
	l.rejected, l.transient = map[string]int64{}, map[string]int64{}
	l.accepted, l.failed, l.retries = 0, 0, 0
}

// The latency layout: that of results.NewLatencyHistogram (microseconds, 1 µs .. 1 hour,
// 3 significant figures), which HdrHistogram lays out as 2,048 exact values followed by
// one run of 1,024 sub-buckets per further power of two. latencyCounts uses the same
// indexes, so that its counts become the HdrHistogram's counts exactly.
const (
	latencyHighestUs = int64(time.Hour / time.Microsecond)
	latencySubShift  = 10 // 1,024 sub-buckets per power of two beyond the exact range
	latencyExact     = 2 << latencySubShift
	latencyIndexes   = 22<<latencySubShift + latencyExact - 1<<latencySubShift // up to 2^32 µs
)

// latencyCounts is a latency histogram shared by a worker's send loops: recording is an
// index computation and an atomic increment, so no loop waits for another, and reading
// (Worker.Stats, polled many times a second by the benchmark) visits one array instead of
// merging an HdrHistogram per loop, which walks every value up to the largest one. Safe
// for concurrent use. Loops record while holding their loopStats.mu, and Worker.Stats
// reads while holding every loop's, so that the counts match the loops' counters.
type latencyCounts struct {
	counts [latencyIndexes]atomic.Int64
}

// latencyIndex is the index of a latency in microseconds, clamped to 1 µs .. 1 hour.
func latencyIndex(us int64) int {
	us = min(max(us, 1), latencyHighestUs)
	if us < latencyExact {
		return int(us)
	}
	e := bits.Len64(uint64(us)) - latencySubShift - 1 // us>>e is in [1024, 2048)
	return e<<latencySubShift + int(us>>e)
}

// latencyValue is the lowest latency (µs) with index i.
func latencyValue(i int) int64 {
	if i < latencyExact {
		return int64(i)
	}
	e := i>>latencySubShift - 1
	return int64(i-e<<latencySubShift) << e
}

func (c *latencyCounts) record(sincePress time.Duration) {
	c.counts[latencyIndex(sincePress.Microseconds())].Add(1)
}

func (c *latencyCounts) reset() {
	for i := range c.counts {
		c.counts[i].Store(0)
	}
}

// histogram returns c as an HdrHistogram from results.NewLatencyHistogram.
func (c *latencyCounts) histogram() *hdrhistogram.Histogram {
	h := results.NewLatencyHistogram()
	for i := range c.counts {
		if n := c.counts[i].Load(); n != 0 {
			_ = h.RecordValues(latencyValue(i), n) // within range: latencyValue(i) <= 1 hour
		}
	}
	return h
}

// mergeLatency adds src into dst. Histograms with the latency layout are added index by
// index; others go through HdrHistogram's own (slower) Merge.
func mergeLatency(dst, src *hdrhistogram.Histogram) {
	if src.TotalCount() == 0 {
		return
	}
	if !latencyLayout(dst) || !latencyLayout(src) {
		dst.Merge(src)
		return
	}
	snap := src.Export()
	if len(snap.Counts) != latencyIndexes {
		dst.Merge(src)
		return
	}
	for i, n := range snap.Counts {
		if n != 0 {
			_ = dst.RecordValues(latencyValue(i), n)
		}
	}
}

// latencyLayout reports whether h was made like results.NewLatencyHistogram.
func latencyLayout(h *hdrhistogram.Histogram) bool {
	return h.LowestTrackableValue() == 1 && h.HighestTrackableValue() == latencyHighestUs && h.SignificantFigures() == 3
}

// feedbackLog collects permanently rejected tokens and writes them to the object store as
// CSV files (campaigns/<id>/feedback/<worker>-<n>.csv: platform,token,reason) so that the
// registry can be pruned.
type feedbackLog struct {
	store  ObjectStore
	worker string

	mu      sync.Mutex
	pending map[string]*strings.Builder
	rows    map[string]int
	seq     map[string]int
}

const feedbackFlushRows = 10000

func (f *feedbackLog) add(campaign string, p Platform, token []byte, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pending == nil {
		f.pending, f.rows, f.seq = map[string]*strings.Builder{}, map[string]int{}, map[string]int{}
	}
	b := f.pending[campaign]
	if b == nil {
		b = &strings.Builder{}
		f.pending[campaign] = b
	}
	fmt.Fprintf(b, "%s,%s,%s\n", p, token, reason)
	f.rows[campaign]++
	if f.rows[campaign] >= feedbackFlushRows {
		f.writeLocked(context.Background(), campaign)
	}
}

// flush writes every pending row.
func (f *feedbackLog) flush(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var first error
	for c := range f.pending {
		if err := f.writeLocked(ctx, c); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (f *feedbackLog) writeLocked(ctx context.Context, campaign string) error {
	b := f.pending[campaign]
	if b == nil || b.Len() == 0 {
		return nil
	}
	key := fmt.Sprintf("campaigns/%s/feedback/%s-%04d.csv", campaign, f.worker, f.seq[campaign])
	if err := f.store.Put(ctx, key, []byte("platform,token,reason\n"+b.String())); err != nil {
		return fmt.Errorf("feedback: put %s: %w", key, err)
	}
	f.seq[campaign]++
	b.Reset()
	f.rows[campaign] = 0
	return nil
}

// FlushFeedback writes the invalid-token rows collected so far.
func (w *Worker) FlushFeedback(ctx context.Context) error { return w.feedback.flush(ctx) }
