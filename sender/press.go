package sender

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// PressResult answers a GO press.
type PressResult struct {
	SendID    string    `json:"send_id"`
	PressedAt time.Time `json:"pressed_at"`
	// AlreadyPressed is true for every press but the one that started the send.
	AlreadyPressed bool `json:"already_pressed"`
}

// RangeMessage is the body of a range message on the FIFO queue.
type RangeMessage struct {
	Campaign  string `json:"c"`
	Send      string `json:"send"`
	PressedAt int64  `json:"p"` // unix nanoseconds
	Start     uint32 `json:"s"`
	End       uint32 `json:"e"`
	// Deadline (unix nanoseconds) is when the send stops trying transient failures again.
	Deadline int64 `json:"d,omitempty"`
}

// Press is the GO button. Exactly one press moves the campaign to sending (a compare-and-set
// on its record) and puts its range messages on the FIFO queue, each with a deduplication ID
// built from campaign and range, so the queue drops repeats too. Every other press, at the
// same moment or later, from this process or another, gets the same send ID with
// AlreadyPressed set. GO before the campaign has its approvals, or before prepare is
// complete, is refused with ErrNotReady saying what is missing.
func (s *Service) Press(ctx context.Context, id string) (*PressResult, error) {
	st, err := s.Status(ctx, id)
	if err != nil {
		return nil, err
	}
	if snd := st.Campaign.Send; snd != nil {
		if !snd.Enqueued && s.cfg.Now().Sub(snd.PressedAt) > reenqueueAfter {
			// The winning press did not finish enqueueing (its process died): finish it.
			// Deduplication IDs make this a no-op for ranges already on the queue.
			if err := s.enqueueRanges(ctx, id, st.Campaign.Resolution.Recipients, snd, ""); err != nil {
				return nil, err
			}
		}
		return &PressResult{SendID: snd.ID, PressedAt: snd.PressedAt, AlreadyPressed: true}, nil
	}
	if st.Campaign.Terminal() {
		return nil, fmt.Errorf("%w: campaign %s is %s", ErrFinished, id, st.Campaign.State)
	}
	if err := st.Campaign.approvedForGO(); err != nil {
		return nil, err
	}
	if !st.Prepared {
		return nil, fmt.Errorf("%w: campaign %s is not prepared: %s", ErrNotReady, id, prepareSummary(st))
	}
	now := s.cfg.Now().UTC()
	mine := &SendInfo{ID: NewID("s"), PressedAt: now, Deadline: now.Add(st.Campaign.Spec.DeliveryDeadline()),
		Ranges: rangeCount(st.Campaign.Resolution.Recipients, s.cfg.RangeCount)}
	var won *SendInfo
	err = s.update(ctx, id, func(r *CampaignRecord) error {
		if r.Send != nil {
			won = r.Send
			return nil
		}
		if r.Terminal() {
			return fmt.Errorf("%w: campaign %s is %s", ErrFinished, id, r.State)
		}
		if err := r.approvedForGO(); err != nil {
			return err // the message was edited (or rejected) since the status was read
		}
		r.State, r.Send, won = StateSending, mine, mine
		r.audit(now, ActorOf(ctx), "go", "send "+mine.ID)
		if r.Schedule != nil && r.Schedule.State == ScheduleWaiting {
			r.Schedule.State, r.Schedule.Note = SchedulePressed, ""
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if won != mine {
		return &PressResult{SendID: won.ID, PressedAt: won.PressedAt, AlreadyPressed: true}, nil
	}
	if err := s.enqueueRanges(ctx, id, st.Campaign.Resolution.Recipients, mine, ""); err != nil {
		return nil, err
	}
	s.cfg.Log.Info("GO", "campaign", id, "send", mine.ID, "recipients", st.Campaign.Resolution.Recipients, "by", ActorOf(ctx))
	return &PressResult{SendID: mine.ID, PressedAt: mine.PressedAt}, nil
}

// reenqueueAfter is how long a press waits for the winner to finish enqueueing before it
// finishes the job itself.
const reenqueueAfter = 10 * time.Second

func prepareSummary(st *Status) string {
	if st.Campaign.State != StateResolved {
		return "state " + st.Campaign.State
	}
	if st.Campaign.Prepare == nil {
		return "prepare was not requested"
	}
	var full int
	for _, r := range st.Ready {
		if readyFor(st.Campaign, r) {
			full++
		}
	}
	return fmt.Sprintf("%d of %d workers ready", full, st.Campaign.Prepare.Workers)
}

func rangeCount(recipients uint32, want int) int {
	if recipients == 0 {
		return 0
	}
	return int(min(uint32(want), recipients))
}

// spreadOrder returns 0..n-1 in bit-reversed order (0, n/2, n/4, 3n/4, ...): consecutive
// ranges land far apart in the recipients, so that the segments, which are contiguous (all
// iOS, then all Android), are sent side by side from the start instead of one after the
// other. With a rate cap per provider, both providers then run at their caps at once.
func spreadOrder(n int) []int {
	bits := 0
	for 1<<bits < n {
		bits++
	}
	out := make([]int, 0, n)
	for k := range 1 << bits {
		r := 0
		for b := range bits {
			if k&(1<<b) != 0 {
				r |= 1 << (bits - 1 - b)
			}
		}
		if r < n {
			out = append(out, r)
		}
	}
	return out
}

// enqueueRanges puts the send's range messages on the FIFO queue. Deduplication IDs are
// campaign + send kind + tag + range index, so a retry (or a second caller) within the
// queue's window is a no-op; tag tells apart enqueues meant to happen again (a resume).
func (s *Service) enqueueRanges(ctx context.Context, id string, recipients uint32, snd *SendInfo, tag string) error {
	msgs := make([]OutMessage, 0, snd.Ranges)
	kind := "r"
	if snd.Redrive > 0 {
		kind = fmt.Sprintf("d%d-r", snd.Redrive)
	}
	for _, i := range spreadOrder(snd.Ranges) {
		start := uint32(uint64(recipients) * uint64(i) / uint64(snd.Ranges))
		end := uint32(uint64(recipients) * uint64(i+1) / uint64(snd.Ranges))
		body, _ := json.Marshal(RangeMessage{Campaign: id, Send: snd.ID, PressedAt: snd.PressedAt.UnixNano(),
			Deadline: snd.Deadline.UnixNano(), Start: start, End: end})
		dedup := fmt.Sprintf("%s-%s%s%d", id, tag, kind, i)
		msgs = append(msgs, OutMessage{Body: body, GroupID: fmt.Sprintf("%s-r%d", id, i), DedupID: dedup})
	}
	if err := s.cfg.Ranges.Send(ctx, msgs); err != nil {
		return fmt.Errorf("campaign %s: enqueue ranges: %w", id, err)
	}
	return s.update(context.WithoutCancel(ctx), id, func(r *CampaignRecord) error {
		if r.Send != nil && r.Send.ID == snd.ID {
			r.Send.Enqueued = true
		}
		for i := range r.Redrives {
			if r.Redrives[i].ID == snd.ID {
				r.Redrives[i].Enqueued = true
			}
		}
		return nil
	})
}

// Abort stops a campaign: workers push nothing more of it within a second (they follow the
// record), pushes in flight finish, and what was not sent is counted (Result.Unsent) once
// the workers have let go. Aborting a campaign that has ended is refused with ErrFinished.
func (s *Service) Abort(ctx context.Context, id, reason string) (*CampaignRecord, error) {
	var out *CampaignRecord
	err := s.update(ctx, id, func(r *CampaignRecord) error {
		if r.Terminal() {
			return fmt.Errorf("%w: campaign %s is %s", ErrFinished, id, r.State)
		}
		r.stop(s.cfg.Now(), ActorOf(ctx), "abort", reason)
		out = r
		return nil
	})
	if err == nil {
		s.cfg.Log.Warn("campaign aborted", "campaign", id, "by", ActorOf(ctx), "reason", reason)
	}
	return out, err
}

// stop moves the record to aborted, saying who did it, how (abort, cancel) and why, in
// Aborted and the audit log.
func (r *CampaignRecord) stop(at time.Time, by, action, detail string) {
	at = at.UTC()
	r.State = StateAborted
	r.Aborted = &Action{At: at, By: by, Action: action, Detail: detail}
	r.audit(at, by, action, detail)
}

// Redrive sends a finished campaign's failed (dead-lettered) recipients again, once: the
// ledger makes them pending, a new send with a new deadline takes them through fan-out and
// send, and the campaign is sending again until they are done. A campaign with nothing
// failed is refused with ErrFinished; one still sending with ErrNotReady.
func (s *Service) Redrive(ctx context.Context, id string) (*SendInfo, error) {
	if s.cfg.Ledger == nil {
		return nil, errors.New("campaign: redrive needs the ledger")
	}
	rec, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	switch rec.State {
	case StateDoneWithFailures:
	case StateSending:
		return nil, fmt.Errorf("%w: campaign %s is still sending; redrive once it has finished", ErrNotReady, id)
	default:
		return nil, fmt.Errorf("%w: campaign %s is %s: nothing to redrive", ErrFinished, id, rec.State)
	}
	n, err := s.cfg.Ledger.Redrive(ctx, id, 0, rec.Resolution.Recipients)
	if err != nil {
		return nil, fmt.Errorf("campaign %s: redrive: %w", id, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: campaign %s has no failed recipients to redrive", ErrFinished, id)
	}
	now := s.cfg.Now().UTC()
	snd := &SendInfo{ID: NewID("s"), PressedAt: now, Deadline: now.Add(rec.Spec.DeliveryDeadline()),
		Ranges: rangeCount(rec.Resolution.Recipients, s.cfg.RangeCount)}
	err = s.update(ctx, id, func(r *CampaignRecord) error {
		if r.State != StateDoneWithFailures {
			return fmt.Errorf("%w: campaign %s is %s", ErrNotReady, id, r.State)
		}
		snd.Redrive = len(r.Redrives) + 1
		r.Redrives = append(r.Redrives, *snd)
		r.State, r.Result = StateSending, nil
		r.audit(now, ActorOf(ctx), "redrive", fmt.Sprintf("%d failed recipients, send %s", n, snd.ID))
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.drainDeadLetters(ctx, id)
	if err := s.enqueueRanges(ctx, id, rec.Resolution.Recipients, snd, ""); err != nil {
		return nil, err
	}
	s.cfg.Log.Info("redrive", "campaign", id, "send", snd.ID, "recipients", n, "by", ActorOf(ctx))
	return snd, nil
}

// drainDeadLetters deletes the campaign's dead letters (its recipients are pending again);
// others' stay, coming back after their visibility timeout. Best effort: the ledger, not
// the queue, says who failed.
func (s *Service) drainDeadLetters(ctx context.Context, id string) {
	if s.cfg.DeadLetters == nil {
		return
	}
	for range 1000 {
		msgs, err := s.cfg.DeadLetters.Receive(ctx, 10, 0)
		if err != nil || len(msgs) == 0 {
			return
		}
		var mine []string
		for _, m := range msgs {
			var dl DeadLetter
			if json.Unmarshal(m.Body, &dl) == nil && dl.Batch.Campaign == id && dl.Raw == "" {
				mine = append(mine, m.Receipt)
			}
		}
		if len(mine) > 0 {
			_ = s.cfg.DeadLetters.Delete(ctx, mine)
		}
		if len(mine) < len(msgs) {
			return // the rest belongs to other campaigns; do not spin on them
		}
	}
}

// Resume puts the range messages of every unfinished send back on the queue and runs the
// resolutions cut short: for a restart of the embedded mode, whose queues live in memory.
// The ledger skips every recipient already accepted, rejected or failed, so nobody
// recorded is pushed again. It returns how many sends it resumed.
func (s *Service) Resume(ctx context.Context) (int, error) {
	recs, err := ListCampaigns(ctx, s.cfg.Records)
	if err != nil {
		return 0, err
	}
	n := 0
	tag := fmt.Sprintf("resume%d-", s.cfg.Now().UnixNano())
	for _, r := range recs {
		switch r.State {
		case StateResolving:
			if err := s.restartResolution(ctx, r); err != nil {
				s.cfg.Log.Error("resume: resolution", "campaign", r.ID, "err", err)
			}
		case StateSending:
			sends := r.Sends()
			snd := sends[len(sends)-1]
			if err := s.enqueueRanges(ctx, r.ID, r.Resolution.Recipients, &snd, tag); err != nil {
				return n, err
			}
			s.cfg.Log.Info("resumed an interrupted send", "campaign", r.ID, "send", snd.ID)
			n++
		}
	}
	return n, nil
}

// restartResolution reads a resolving campaign's audience again and resolves it.
func (s *Service) restartResolution(ctx context.Context, r *CampaignRecord) error {
	format, err := AudienceFormatOf(r.Spec.Audience.Object, r.Spec.Audience.Format)
	if err != nil {
		return err
	}
	data, err := s.cfg.Objects.Get(ctx, r.Spec.Audience.Object)
	if err != nil {
		return err
	}
	users, err := ParseAudience(data, format)
	if err != nil {
		return err
	}
	s.cfg.Log.Info("resumed an interrupted resolution", "campaign", r.ID, "users", len(users))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.resolve(s.ctx, r.ID, users)
	}()
	return nil
}
