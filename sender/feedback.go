package sender

import (
	"context"
	"fmt"
	"strings"
	"sync"
)

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
