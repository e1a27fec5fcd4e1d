package sender

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sync/errgroup"
)

// kept is a batch a send loop works on, whose visibility and leases the keeper renews.
type kept struct {
	job   *sendJob
	owner string
}

// keep registers a batch for renewal until unkeep.
func (w *Worker) keep(j *sendJob, owner string) {
	w.keptMu.Lock()
	w.kept[j] = kept{job: j, owner: owner}
	w.keptMu.Unlock()
}

func (w *Worker) unkeep(j *sendJob) {
	w.keptMu.Lock()
	delete(w.kept, j)
	w.keptMu.Unlock()
}

// keeperParallel bounds the renewals in flight at once. A worker holds up to a batch per
// send loop, and each renewal is a queue call and a ledger call: one after the other, on a
// backend answering in tens of milliseconds under load, a round for 64 loops would take
// longer than a lease, and leases would run out under live holders.
const keeperParallel = 16

// keeper renews, every Renew, the visibility of every batch message the send loops hold and
// their ledger leases on its recipients, keeperParallel at a time, so that the worker keeps
// them however long a push or a retry wait takes, and others take them over within about
// Lease of its death. It runs until work ends (the worker's drain included).
func (w *Worker) keeper(work context.Context) error {
	t := time.NewTicker(w.cfg.Renew)
	defer t.Stop()
	for {
		select {
		case <-work.Done():
			return nil
		case <-t.C:
		}
		w.keptMu.Lock()
		jobs := make([]kept, 0, len(w.kept))
		for _, k := range w.kept {
			jobs = append(jobs, k)
		}
		w.keptMu.Unlock()
		var g errgroup.Group
		g.SetLimit(keeperParallel)
		for _, k := range jobs {
			g.Go(func() error {
				w.renew(work, k)
				return nil
			})
		}
		_ = g.Wait() // renew logs its own failures
	}
}

// renew extends one batch message's visibility and its loop's leases.
func (w *Worker) renew(work context.Context, k kept) {
	j := k.job
	if err := w.cfg.Batches.ExtendVisibility(work, j.msg.Receipt, w.cfg.Visibility); err != nil && work.Err() == nil {
		w.cfg.Log.Warn("send: extend visibility", "campaign", j.bm.Campaign, "err", err)
	}
	err := w.cfg.Ledger.Renew(work, j.bm.Campaign, k.owner, j.bm.Start, j.bm.Count, w.cfg.Lease)
	switch {
	case err == nil, work.Err() != nil:
	case errors.Is(err, ErrLeaseLost):
		// Nothing held any more (all finished meanwhile), or a claim ran out before this
		// renewal: in the second case another worker may push some of these recipients too.
		w.cfg.Log.Debug("send: lease not renewed", "campaign", j.bm.Campaign, "start", j.bm.Start, "n", j.bm.Count, "err", err)
	default:
		w.cfg.Log.Warn("send: renew lease", "campaign", j.bm.Campaign, "err", err)
	}
}
