package sender

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/salvopush/salvo/results"
)

// SendStats is what send loops measured: every accepted notification's latency from the GO
// press in an HdrHistogram (microseconds), a timeline, and outcome counters. Each send loop
// owns one; Worker.Stats merges them.
type SendStats struct {
	mu        sync.Mutex
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

func (s *SendStats) accept(sincePress time.Duration) {
	s.Accepted++
	results.RecordLatency(s.Latency, sincePress)
	s.Timeline.Add(sincePress, true)
}

func (s *SendStats) reject(sincePress time.Duration, reason string) {
	s.Rejected[reason]++
	s.Timeline.Add(sincePress, false)
}

func (s *SendStats) transient(reason string) { s.Transient[reason]++ }

// Done is accepted + permanently rejected + failed: the recipients this worker finished.
func (s *SendStats) Done() int64 {
	n := s.Accepted + s.Failed
	for _, c := range s.Rejected {
		n += c
	}
	return n
}

// Merge adds o into s. Neither may be in use by a send loop (Worker.Stats hands out copies).
func (s *SendStats) Merge(o *SendStats) {
	s.Latency.Merge(o.Latency)
	s.Timeline.Merge(o.Timeline)
	s.Accepted += o.Accepted
	s.Failed += o.Failed
	s.Retries += o.Retries
	for k, v := range o.Rejected {
		s.Rejected[k] += v
	}
	for k, v := range o.Transient {
		s.Transient[k] += v
	}
}

// reset clears s; the caller holds s.mu.
func (s *SendStats) reset() {
	s.Latency, s.Timeline = results.NewLatencyHistogram(), results.NewTimeline(0)
	s.Rejected, s.Transient = map[string]int64{}, map[string]int64{}
	s.Accepted, s.Failed, s.Retries = 0, 0, 0
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
