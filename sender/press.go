package sender

import (
	"context"
	"encoding/json"
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
}

// Press is the GO button. Exactly one press moves the campaign to sending (a compare-and-set
// on its record) and puts its range messages on the FIFO queue, each with a deduplication ID
// built from campaign and range, so the queue drops repeats too. Every other press, at the
// same moment or later, from this process or another, gets the same send ID with
// AlreadyPressed set. GO before prepare is complete is refused with ErrNotReady.
func (s *Service) Press(ctx context.Context, id string) (*PressResult, error) {
	st, err := s.Status(ctx, id)
	if err != nil {
		return nil, err
	}
	if snd := st.Campaign.Send; snd != nil {
		if !snd.Enqueued && s.cfg.Now().Sub(snd.PressedAt) > reenqueueAfter {
			// The winning press did not finish enqueueing (its process died): finish it.
			// Deduplication IDs make this a no-op for ranges already on the queue.
			if err := s.enqueueRanges(ctx, id, st.Campaign.Resolution.Recipients, snd); err != nil {
				return nil, err
			}
		}
		return &PressResult{SendID: snd.ID, PressedAt: snd.PressedAt, AlreadyPressed: true}, nil
	}
	if !st.Prepared {
		return nil, fmt.Errorf("%w: campaign %s is not prepared: %s", ErrNotReady, id, prepareSummary(st))
	}
	now := s.cfg.Now().UTC()
	mine := &SendInfo{ID: NewID("s"), PressedAt: now, Ranges: rangeCount(st.Campaign.Resolution.Recipients, s.cfg.RangeCount)}
	var won *SendInfo
	err = s.update(ctx, id, func(r *CampaignRecord) error {
		if r.Send != nil {
			won = r.Send
			return nil
		}
		r.State, r.Send, won = StateSending, mine, mine
		return nil
	})
	if err != nil {
		return nil, err
	}
	if won != mine {
		return &PressResult{SendID: won.ID, PressedAt: won.PressedAt, AlreadyPressed: true}, nil
	}
	if err := s.enqueueRanges(ctx, id, st.Campaign.Resolution.Recipients, mine); err != nil {
		return nil, err
	}
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
		if uint32(r.Recipients) == st.Campaign.Resolution.Recipients {
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

// enqueueRanges puts the send's range messages on the FIFO queue. Deduplication IDs are
// campaign + range index, so a retry (or a second caller) within the queue's window is a
// no-op.
func (s *Service) enqueueRanges(ctx context.Context, id string, recipients uint32, snd *SendInfo) error {
	msgs := make([]OutMessage, 0, snd.Ranges)
	for i := 0; i < snd.Ranges; i++ {
		start := uint32(uint64(recipients) * uint64(i) / uint64(snd.Ranges))
		end := uint32(uint64(recipients) * uint64(i+1) / uint64(snd.Ranges))
		body, _ := json.Marshal(RangeMessage{Campaign: id, Send: snd.ID, PressedAt: snd.PressedAt.UnixNano(), Start: start, End: end})
		msgs = append(msgs, OutMessage{Body: body, GroupID: fmt.Sprintf("%s-r%d", id, i), DedupID: fmt.Sprintf("%s-r%d", id, i)})
	}
	if err := s.cfg.Ranges.Send(ctx, msgs); err != nil {
		return fmt.Errorf("campaign %s: enqueue ranges: %w", id, err)
	}
	return s.update(context.WithoutCancel(ctx), id, func(r *CampaignRecord) error {
		if r.Send != nil && r.Send.ID == snd.ID {
			r.Send.Enqueued = true
		}
		return nil
	})
}
