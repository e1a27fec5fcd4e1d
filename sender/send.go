package sender

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"time"
)

// sender is one send loop: it takes batch messages and pushes them. Its buffers are reused
// from batch to batch, so the steady state allocates nothing per notification.
type sender struct {
	w     *Worker
	stats *loopStats
	rng   *rand.Rand

	ids, retry, finished, invalid, claimed []uint32
	batch                                  Batch
	done                                   []string // receipts of finished batch messages
}

func newSender(w *Worker, st *loopStats) *sender {
	return &sender{w: w, stats: st, rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
}

// sendJob is one batch message being pushed.
type sendJob struct {
	msg      Message
	bm       BatchMessage
	c        *loaded
	tmpl     *Batch // platform and rendered message
	tr       Transport
	pressed  time.Time
	received time.Time // when the message's visibility was last set
	gaveUp   int       // recipients given up on (counted failed)
}

// run takes batch messages until ctx ends.
func (s *sender) run(ctx context.Context) error {
	w := s.w
	for ctx.Err() == nil {
		msgs, err := w.cfg.Batches.Receive(ctx, 1, w.cfg.Wait)
		if err != nil {
			if ctx.Err() == nil {
				w.cfg.Log.Warn("send: receive", "err", err)
				sleepCtx(ctx, w.cfg.Poll)
			}
			continue
		}
		s.done = s.done[:0]
		for _, m := range msgs {
			if s.handle(ctx, m) {
				s.done = append(s.done, m.Receipt)
			}
		}
		if len(s.done) > 0 {
			if err := w.cfg.Batches.Delete(context.WithoutCancel(ctx), s.done); err != nil {
				w.cfg.Log.Warn("send: delete batches", "err", err)
			}
		}
	}
	return ctx.Err()
}

// handle pushes one batch message and reports whether it may be deleted.
func (s *sender) handle(ctx context.Context, m Message) bool {
	w := s.w
	j := sendJob{msg: m}
	if err := json.Unmarshal(m.Body, &j.bm); err != nil || j.bm.Count == 0 {
		w.cfg.Log.Error("send: dropping malformed batch message", "id", m.ID, "err", err)
		return true
	}
	bm := &j.bm
	c, err := w.campaign(ctx, bm.Campaign)
	if err != nil {
		if ctx.Err() == nil {
			w.cfg.Log.Warn("send: campaign", "campaign", bm.Campaign, "err", err)
		}
		return false
	}
	if bm.Start+bm.Count > uint32(c.pre.Len()) {
		w.cfg.Log.Error("send: batch outside the campaign", "campaign", bm.Campaign, "start", bm.Start, "n", bm.Count)
		return true
	}
	j.c, j.pressed = c, time.Unix(0, bm.PressedAt)
	if j.tmpl, err = c.template(bm.Start, j.pressed); err != nil {
		w.cfg.Log.Error("send: render", "campaign", bm.Campaign, "err", err)
		return false
	}
	if j.tr = w.cfg.Transports[j.tmpl.Platform]; j.tr == nil {
		w.cfg.Log.Error("send: no transport", "platform", j.tmpl.Platform)
		return false
	}
	s.ids, err = w.cfg.Ledger.Claim(ctx, bm.Campaign, bm.Start, bm.Count, w.cfg.Lease, s.ids[:0])
	if err != nil {
		w.cfg.Log.Warn("send: claim", "err", err)
		return false
	}
	s.claimed = append(s.claimed[:0], s.ids...)
	chunk := len(s.claimed)
	if w.cfg.Chunk > 0 {
		chunk = w.cfg.Chunk
	}
	j.received = time.Now()
	for lo := 0; lo < len(s.claimed); lo += chunk {
		s.ids = append(s.ids[:0], s.claimed[lo:min(lo+chunk, len(s.claimed))]...)
		if !s.push(ctx, &j) {
			_ = w.cfg.Ledger.Release(context.WithoutCancel(ctx), bm.Campaign, s.claimed[lo:])
			return false
		}
	}
	if len(s.claimed) == int(bm.Count) && j.gaveUp == 0 {
		return true // every recipient of the batch is done
	}
	// Some recipients were not ours to send: another worker holds them (a second copy of
	// the batch in flight), or held them and died. Keep the message while any of those is
	// unfinished: it comes back after its visibility timeout, and by then a dead worker's
	// lease has run out and the recipients can be claimed again. Recipients this worker gave
	// up on (counted failed) do not keep it.
	left, err := w.cfg.Ledger.Remaining(ctx, bm.Campaign, bm.Start, bm.Count)
	if err != nil {
		w.cfg.Log.Warn("send: ledger remaining", "err", err)
		return false
	}
	return left <= j.gaveUp
}

// push sends s.ids (claimed recipients of one batch) with retries, records outcomes and
// marks finished recipients done in the ledger. It reports false when the context ended
// before the chunk was finished (its unfinished recipients are then released by the caller).
func (s *sender) push(ctx context.Context, j *sendJob) bool {
	w, st := s.w, s.stats
	for attempt := 1; len(s.ids) > 0; attempt++ {
		if time.Since(j.received) > w.cfg.Visibility/2 {
			j.received = time.Now()
			if err := w.cfg.Batches.ExtendVisibility(ctx, j.msg.Receipt, w.cfg.Visibility); err != nil {
				w.cfg.Log.Warn("send: extend visibility", "err", err)
			}
		}
		bt := &s.batch
		toks, res := bt.Tokens[:0], bt.Results[:0]
		*bt = *j.tmpl
		bt.Tokens, bt.Results = toks, res
		for _, id := range s.ids {
			bt.Tokens = append(bt.Tokens, j.c.pre.Token(id))
			bt.Results = append(bt.Results, Result{})
		}
		if err := j.tr.Send(ctx, bt); err != nil {
			return false
		}
		var retryAfter time.Duration
		s.retry, s.finished, s.invalid = s.retry[:0], s.finished[:0], s.invalid[:0]
		st.mu.Lock()
		for i, r := range bt.Results {
			switch r.Outcome {
			case Accepted:
				st.accept(r.At.Sub(j.pressed))
				w.latency.Record(r.At.Sub(j.pressed))
				s.finished = append(s.finished, s.ids[i])
			case Permanent:
				st.reject(r.At.Sub(j.pressed), r.Reason)
				s.finished = append(s.finished, s.ids[i])
				if r.InvalidToken {
					s.invalid = append(s.invalid, uint32(i))
				}
			default:
				st.transientResult(r.Reason)
				retryAfter = max(retryAfter, r.RetryAfter)
				s.retry = append(s.retry, s.ids[i])
			}
		}
		if len(s.retry) > 0 && attempt >= w.cfg.Retry.Attempts {
			st.failed += int64(len(s.retry))
		} else {
			st.retries += int64(len(s.retry))
		}
		st.mu.Unlock()
		for _, i := range s.invalid {
			w.feedback.add(j.bm.Campaign, j.tmpl.Platform, bt.Tokens[i], bt.Results[i].Reason)
		}
		if len(s.finished) > 0 {
			if err := w.cfg.Ledger.Done(context.WithoutCancel(ctx), j.bm.Campaign, s.finished); err != nil {
				w.cfg.Log.Warn("send: ledger done", "err", err)
			}
		}
		if len(s.retry) == 0 {
			break
		}
		if attempt >= w.cfg.Retry.Attempts {
			// Given up: counted failed above; give the claims back so that a later delivery
			// of the batch may try again.
			_ = w.cfg.Ledger.Release(context.WithoutCancel(ctx), j.bm.Campaign, s.retry)
			j.gaveUp += len(s.retry)
			break
		}
		s.ids, s.retry = append(s.ids[:0], s.retry...), s.ids
		if !sleepCtx(ctx, w.cfg.Retry.Backoff(attempt, retryAfter, s.rng)) {
			return false
		}
	}
	return true
}
