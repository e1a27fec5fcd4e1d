package sender

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// sender is one send loop: it takes batch messages and pushes them. Its buffers are reused
// from batch to batch, so the steady state allocates nothing per notification.
type sender struct {
	w     *Worker
	owner string // this loop's name in ledger claims
	rng   *rand.Rand

	ids, retry, accepted, rejected, invalid, claimed []uint32
	batch                                            Batch
	done                                             []string // receipts of finished batch messages
}

func newSender(w *Worker, loop int) *sender {
	return &sender{w: w, owner: fmt.Sprintf("%s/%d", w.cfg.ID, loop),
		rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
}

// sendJob is one batch message being pushed.
type sendJob struct {
	msg      Message
	bm       BatchMessage
	c        *loaded
	rec      *sendRecorder
	tmpl     *Batch // platform and rendered message
	tr       Transport
	pressed  time.Time
	deadline time.Time // give up on transient results past it
	failed   int       // recipients given up on
	reason   string    // why, for the dead letter
	unsent   int       // recipients released unsent because the campaign was aborted
}

// DeadLetter is the body of a message on the dead-letter queue: recipients of a batch that
// were given up on. The ledger records them failed; a redrive makes them pending again.
type DeadLetter struct {
	Batch  BatchMessage `json:"batch"`
	Failed int          `json:"failed"` // recipients of the batch given up on
	Reason string       `json:"reason"`
	Worker string       `json:"worker"`
	At     time.Time    `json:"at"`
	// Raw holds a message that could not be read as a batch message at all.
	Raw string `json:"raw,omitempty"`
}

// run takes batch messages until stop ends. Pushes in flight go on with work, which
// outlives stop by the worker's drain.
func (s *sender) run(stop, work context.Context) error {
	w := s.w
	for stop.Err() == nil {
		msgs, err := w.cfg.Batches.Receive(stop, 1, w.cfg.Wait)
		if err != nil {
			if stop.Err() == nil {
				w.cfg.Log.Warn("send: receive", "err", err)
				sleepCtx(stop, w.cfg.Poll)
			}
			continue
		}
		s.done = s.done[:0]
		for _, m := range msgs {
			if s.handle(stop, work, m) {
				s.done = append(s.done, m.Receipt)
			}
		}
		if len(s.done) > 0 {
			if err := w.cfg.Batches.Delete(work, s.done); err != nil {
				w.cfg.Log.Warn("send: delete batches", "err", err)
			}
		}
	}
	return stop.Err()
}

// handle pushes one batch message and reports whether it may be deleted: every recipient
// of it is accepted, rejected or given up on (and then dead-lettered), or the campaign was
// aborted.
func (s *sender) handle(stop, work context.Context, m Message) bool {
	w := s.w
	j := sendJob{msg: m}
	if err := json.Unmarshal(m.Body, &j.bm); err != nil || j.bm.Count == 0 || j.bm.Campaign == "" {
		return s.deadLetter(work, &j, fmt.Sprintf("malformed batch message: %v", err), true)
	}
	bm := &j.bm
	c, err := w.campaign(work, bm.Campaign)
	if err != nil {
		if work.Err() == nil {
			w.cfg.Log.Warn("send: campaign", "campaign", bm.Campaign, "err", err)
		}
		return false // comes back after its visibility timeout
	}
	if c.aborted.Load() {
		return true // counted unsent by the campaign's status
	}
	if uint64(bm.Start)+uint64(bm.Count) > uint64(c.pre.Len()) {
		return s.deadLetter(work, &j, fmt.Sprintf("batch [%d,+%d) outside the campaign's %d recipients", bm.Start, bm.Count, c.pre.Len()), true)
	}
	j.c, j.pressed = c, time.Unix(0, bm.PressedAt)
	j.deadline = time.Unix(0, bm.Deadline)
	if bm.Deadline == 0 {
		j.deadline = j.pressed.Add(c.spec.DeliveryDeadline())
	}
	j.rec = w.recorder(work, bm.Campaign, bm.Send)
	s.ids, err = w.cfg.Ledger.Claim(work, bm.Campaign, s.owner, bm.Start, bm.Count, w.cfg.Lease, s.ids[:0])
	if err != nil {
		w.cfg.Log.Warn("send: claim", "campaign", bm.Campaign, "err", err)
		return false
	}
	s.claimed = append(s.claimed[:0], s.ids...)
	if len(s.claimed) > 0 {
		if j.tmpl, err = c.template(bm.Start, j.pressed); err == nil {
			if j.tr = w.cfg.Transports[j.tmpl.Platform]; j.tr == nil {
				err = fmt.Errorf("no transport for %s on worker %s", j.tmpl.Platform, w.cfg.ID)
			}
		}
		if err != nil {
			// A batch that can never be pushed: record its recipients failed and dead-letter
			// it at once instead of letting it come back forever.
			s.giveUp(work, &j, s.claimed, "unrenderable: "+err.Error())
			return s.deadLetter(work, &j, j.reason, false)
		}
	}
	chunk := len(s.claimed)
	if w.cfg.Chunk > 0 {
		chunk = w.cfg.Chunk
	}
	// While this loop works on the batch, the worker's keeper renews its visibility and this
	// loop's leases every Renew, however long a push takes.
	w.keep(&j, s.owner)
	defer w.unkeep(&j)
	for lo := 0; lo < len(s.claimed); lo += chunk {
		s.ids = append(s.ids[:0], s.claimed[lo:min(lo+chunk, len(s.claimed))]...)
		if stop.Err() != nil || !s.push(stop, work, &j) {
			// Stopping (the chunk before this one was finished and recorded) or stopped
			// midway: the rest goes back, and the message with it.
			_ = w.cfg.Ledger.Release(context.WithoutCancel(work), bm.Campaign, s.owner, s.claimed[lo:])
			return false
		}
	}
	if j.failed > 0 && !s.deadLetter(work, &j, j.reason, false) {
		return false
	}
	if len(s.claimed) == int(bm.Count) || j.unsent > 0 {
		return true // every recipient of the batch was ours: all finished, or the campaign was aborted
	}
	// Some recipients were not ours to send: another loop holds them (a second copy of the
	// batch in flight), or held them and died. Keep the message while any of those is
	// unfinished, and let it come back soon: by then the other copy is done, or a dead
	// holder's lease has run out and its recipients can be claimed again.
	left, err := w.cfg.Ledger.Remaining(work, bm.Campaign, bm.Start, bm.Count)
	if err != nil {
		w.cfg.Log.Warn("send: ledger remaining", "err", err)
		return false
	}
	if left == 0 {
		return true
	}
	if err := w.cfg.Batches.ExtendVisibility(work, m.Receipt, w.cfg.Renew); err != nil {
		w.cfg.Log.Warn("send: shorten visibility", "err", err)
	}
	return false
}

// push sends s.ids (claimed recipients of one batch) and tries transient results again
// until they are answered for good or the deadline passes, recording each outcome in the
// send's figures and the ledger as it comes. It reports false when the worker stops before
// the chunk is finished (the caller releases its unfinished recipients).
func (s *sender) push(stop, work context.Context, j *sendJob) bool {
	w, rec := s.w, j.rec
	rec.begin(time.Now())
	defer rec.end()
	for attempt := 1; len(s.ids) > 0; attempt++ {
		if j.c.aborted.Load() {
			s.abandon(work, j)
			return true
		}
		bt := &s.batch
		toks, res := bt.Tokens[:0], bt.Results[:0]
		*bt = *j.tmpl
		bt.Tokens, bt.Results = toks, res
		for _, id := range s.ids {
			bt.Tokens = append(bt.Tokens, j.c.pre.Token(id))
			bt.Results = append(bt.Results, Result{})
		}
		if err := j.tr.Send(work, bt); err != nil {
			if work.Err() != nil {
				return false // stopping: the caller releases the chunk
			}
			if errors.Is(err, ErrCannotSend) {
				// Trying again cannot help (e.g. devices of another FCM project than the
				// transport's): fail the chunk now, with the cause, not at the deadline.
				s.giveUp(work, j, s.ids, transportFailure(err))
				return true
			}
			// The transport could not try at all (e.g. no credentials from the provider): every
			// push of the chunk failed transiently, retried like any other until the deadline.
			now := time.Now()
			for i := range bt.Results {
				bt.Results[i] = Result{Outcome: Transient, Reason: transportFailure(err), At: now}
			}
		}
		retryAfter, reason := s.record(j, bt)
		for _, i := range s.invalid {
			w.feedback.add(j.bm.Campaign, j.tmpl.Platform, bt.Tokens[i], bt.Results[i].Reason)
		}
		if !s.finish(work, j, RecipientAccepted, s.accepted) || !s.finish(work, j, RecipientRejected, s.rejected) {
			// The ledger cannot record outcomes (e.g. its disk is full): push no more of
			// this batch; what is unrecorded is bounded by this chunk.
			return false
		}
		if len(s.retry) == 0 {
			return true
		}
		wait := w.cfg.Retry.Backoff(attempt, retryAfter, s.rng)
		capped := w.cfg.Retry.Attempts > 0 && attempt >= w.cfg.Retry.Attempts
		if capped || time.Now().Add(wait).After(j.deadline) {
			why := "delivery deadline passed"
			if capped {
				why = fmt.Sprintf("gave up after %d tries", attempt)
			}
			s.giveUp(work, j, s.retry, fmt.Sprintf("%s; last answer: %s", why, reason))
			return true
		}
		rec.mu.Lock()
		rec.retries += int64(len(s.retry))
		rec.mu.Unlock()
		s.ids, s.retry = append(s.ids[:0], s.retry...), s.ids
		if !s.wait(stop, j, wait) {
			return false
		}
	}
	return true
}

// record files the answers of one push into the send's figures and sorts the recipients
// into s.accepted, s.rejected (s.invalid: indexes whose token is condemned) and s.retry. It
// returns the longest Retry-After and the last transient reason.
func (s *sender) record(j *sendJob, bt *Batch) (retryAfter time.Duration, reason string) {
	rec := j.rec
	s.retry, s.accepted, s.rejected, s.invalid = s.retry[:0], s.accepted[:0], s.rejected[:0], s.invalid[:0]
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i, r := range bt.Results {
		since := r.At.Sub(j.pressed)
		switch r.Outcome {
		case Accepted:
			rec.accepted++
			rec.latency.Record(since)
			rec.timeline.Add(since, true)
			rec.lastProgress = r.At
			s.accepted = append(s.accepted, s.ids[i])
		case Permanent:
			rec.rejected[r.Reason]++
			rec.timeline.Add(since, false)
			rec.lastProgress = r.At
			s.rejected = append(s.rejected, s.ids[i])
			if r.InvalidToken {
				s.invalid = append(s.invalid, uint32(i))
			}
		default:
			why := r.Reason
			if why == "" {
				why = "no answer"
			}
			rec.transient[why]++
			rec.lastReason, reason = why, why
			retryAfter = max(retryAfter, r.RetryAfter)
			s.retry = append(s.retry, s.ids[i])
		}
	}
	rec.dirty = true
	return retryAfter, reason
}

// giveUp records recipients failed (in the ledger and the figures, with the reason) and
// counts them for the batch's dead letter.
func (s *sender) giveUp(work context.Context, j *sendJob, ids []uint32, reason string) {
	s.finish(work, j, RecipientFailed, ids)
	j.rec.mu.Lock()
	j.rec.failed[reason] += int64(len(ids))
	j.rec.dirty = true
	j.rec.mu.Unlock()
	j.failed += len(ids)
	j.reason = reason
	s.w.cfg.Log.Warn("send: recipients given up on; dead-lettered for a redrive", "campaign", j.bm.Campaign,
		"send", j.bm.Send, "recipients", len(ids), "reason", reason)
}

// abandon releases s.ids unsent because the campaign was aborted, and counts them.
func (s *sender) abandon(work context.Context, j *sendJob) {
	_ = s.w.cfg.Ledger.Release(context.WithoutCancel(work), j.bm.Campaign, s.owner, s.ids)
	j.unsent += len(s.ids)
	j.rec.mu.Lock()
	j.rec.unsent += int64(len(s.ids))
	j.rec.dirty = true
	j.rec.mu.Unlock()
	s.ids = s.ids[:0]
}

// deadLetter puts the batch on the dead-letter queue and reports whether that worked (the
// batch message may then be deleted). raw marks a message that is not a batch message.
func (s *sender) deadLetter(work context.Context, j *sendJob, reason string, raw bool) bool {
	w := s.w
	dl := DeadLetter{Batch: j.bm, Failed: j.failed, Reason: reason, Worker: w.cfg.ID, At: time.Now().UTC()}
	if raw {
		dl.Raw = string(j.msg.Body)
		w.cfg.Log.Error("send: dead-lettering a message that cannot be pushed", "id", j.msg.ID, "reason", reason)
	}
	body, _ := json.Marshal(dl)
	if err := w.cfg.DeadLetters.Send(context.WithoutCancel(work), []OutMessage{{Body: body}}); err != nil {
		w.cfg.Log.Error("send: dead-letter queue", "campaign", j.bm.Campaign, "err", err)
		return false
	}
	return true
}

// wait sleeps d before a retry, watching for an abort meanwhile. It reports false when the
// worker is stopping (the chunk is then released, not waited on).
func (s *sender) wait(stop context.Context, j *sendJob, d time.Duration) bool {
	const step = 250 * time.Millisecond
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return true
		}
		if !sleepCtx(stop, min(left, step)) {
			return false
		}
		if j.c.aborted.Load() {
			return true // push sees the abort and releases the chunk
		}
	}
}

// finish records recipients' state in the ledger, and reports whether it could.
func (s *sender) finish(work context.Context, j *sendJob, state RecipientState, recipients []uint32) bool {
	if len(recipients) == 0 {
		return true
	}
	if err := s.w.cfg.Ledger.Finish(context.WithoutCancel(work), j.bm.Campaign, s.owner, state, recipients); err != nil {
		s.w.cfg.Log.Error("send: ledger finish", "campaign", j.bm.Campaign, "state", state, "err", err)
		return false
	}
	return true
}

// transportFailure is the reason recorded for a Send that failed as a whole: the error's
// text, bounded, so that reasons stay a short list.
func transportFailure(err error) string {
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return "transport: " + msg
}
