package scenarios

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/salvopush/salvo/sender"
)

// redeliverVisibility is the visibility timeout of the queues in a redelivery run: a range
// whose delete was skipped comes back this long after it was received.
const redeliverVisibility = 3 * time.Second

// redelivery forces the at-least-once deliveries the pipeline must survive, through the real
// queues, from the fan-out's side of them: every batch message the fan-out sends goes on
// the batch queue twice (two copies in flight at once, as a standard queue may deliver and
// as a fan-out that dies between sending and deleting leaves them), and the first delete of
// every range message the fan-out received is skipped, so that the range comes back after
// its visibility timeout and is fanned out again (two more copies of each of its batches).
// The send workers take the copies from the queue like any other message.
type redelivery struct {
	batchesTwice atomic.Int64 // batch messages sent twice
	rangesAgain  atomic.Int64 // range messages fanned out again (deleted after a skipped delete)

	mu      sync.Mutex
	ids     map[string]string // receipt -> message ID of the ranges received
	skipped map[string]bool   // range message IDs whose delete was skipped
}

func newRedelivery() *redelivery {
	return &redelivery{ids: map[string]string{}, skipped: map[string]bool{}}
}

// wrap returns the fan-out's view of the range and batch queues.
func (r *redelivery) wrap(ranges, batches sender.Queue) (sender.Queue, sender.Queue) {
	return &rangesOnce{Queue: ranges, r: r}, &batchesTwice{Queue: batches, r: r}
}

// counts returns the batch messages sent twice and the ranges fanned out again (their
// copies on the batch queue) so far.
func (r *redelivery) counts() (batches, ranges int64) {
	if r == nil {
		return 0, 0
	}
	return r.batchesTwice.Load(), r.rangesAgain.Load()
}

// batchesTwice sends every message twice.
type batchesTwice struct {
	sender.Queue
	r *redelivery
}

func (q *batchesTwice) Send(ctx context.Context, msgs []sender.OutMessage) error {
	twice := make([]sender.OutMessage, 0, 2*len(msgs))
	twice = append(append(twice, msgs...), msgs...)
	if err := q.Queue.Send(ctx, twice); err != nil {
		return err
	}
	q.r.batchesTwice.Add(int64(len(msgs)))
	return nil
}

// rangesOnce skips the first delete of every message it received.
type rangesOnce struct {
	sender.Queue
	r *redelivery
}

func (q *rangesOnce) Receive(ctx context.Context, max int, wait time.Duration) ([]sender.Message, error) {
	msgs, err := q.Queue.Receive(ctx, max, wait)
	q.r.mu.Lock()
	defer q.r.mu.Unlock()
	for _, m := range msgs {
		q.r.ids[m.Receipt] = m.ID
	}
	return msgs, err
}

func (q *rangesOnce) Delete(ctx context.Context, receipts []string) error {
	q.r.mu.Lock()
	var pass []string
	for _, rc := range receipts {
		id, ok := q.r.ids[rc]
		delete(q.r.ids, rc)
		switch {
		case ok && !q.r.skipped[id]:
			q.r.skipped[id] = true // left on the queue: it comes back after its visibility timeout
			continue
		case ok:
			q.r.rangesAgain.Add(1) // fanned out a second time: its copies are on the batch queue
		}
		pass = append(pass, rc)
	}
	q.r.mu.Unlock()
	if len(pass) == 0 {
		return nil
	}
	return q.Queue.Delete(ctx, pass)
}
