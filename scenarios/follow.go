package scenarios

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/results"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
)

// follower follows one campaign from GO to its end, the campaign API's side of a run: it
// interrupts the pipeline when the scenario says so, notes the stall the status shows, waits
// for the terminal state, redrives, looks at the queues, and gathers the campaign's account
// for results.Build. It measures; Build judges.
type follower struct {
	r          rig
	client     *api.Client
	ctl        *mockpush.Control
	p          Params
	opts       Options
	id         string
	want       int64
	pressed    time.Time
	deadline   time.Time
	mockBefore mockpush.Stats
	marker     string // in the malformed messages' bodies

	camp       results.Campaign
	interrupt  *Interrupt // pending until done
	lastStatus time.Time
	final      *sender.Status // the last status read
}

// note records an event of the run, with its time from the press, and prints it.
func (f *follower) note(what string) {
	at := time.Since(f.pressed)
	f.camp.Events = append(f.camp.Events, results.Event{AtMs: float64(at.Microseconds()) / 1000, What: what})
	progress(f.opts, "t+%5.1fs  %s", at.Seconds(), what)
}

// tick runs once per wait step while the send runs: it fires the interrupt once the mock
// has accepted its share, and reads the status twice a second for a stall.
func (f *follower) tick(ctx context.Context) error {
	if i := f.interrupt; i != nil {
		ms, err := f.ctl.Stats(ctx)
		if err != nil {
			return setupErr("mock stats: %v", err)
		}
		accepted := ms.APNs.Unique + ms.FCM.Unique - f.mockBefore.APNs.Unique - f.mockBefore.FCM.Unique
		if float64(accepted) >= i.AtShare*float64(f.want) {
			f.interrupt = nil
			f.note(fmt.Sprintf("%d of %d recipients accepted by the mock (%.0f%%)", accepted, f.want, 100*i.AtShare))
			client, err := f.r.interrupt(ctx, i.signal(), f.note)
			if err != nil {
				return err
			}
			f.client = client
			if i.signal() == syscall.SIGKILL {
				f.camp.Killed++
				f.camp.InFlightBound += int64(f.p.SendLoops) * int64(f.p.Chunk)
			}
		}
	}
	if time.Since(f.lastStatus) >= 500*time.Millisecond {
		f.lastStatus = time.Now()
		f.look(ctx)
	}
	return nil
}

// look reads the campaign's status, noting the first stall it shows; a failed read is
// skipped (the next look tries again).
func (f *follower) look(ctx context.Context) *sender.Status {
	st, err := f.client.Status(ctx, f.id)
	if err != nil {
		return nil
	}
	f.final = st
	if p := st.Progress; p != nil && p.Stall != nil && f.camp.Stall == nil {
		ms := func(t time.Time) float64 { return float64(t.Sub(f.pressed).Microseconds()) / 1000 }
		f.camp.Stall = &results.StallSeen{SeenMs: ms(time.Now()), SinceMs: ms(p.Stall.Since), Cause: p.Stall.Cause}
		f.note(fmt.Sprintf("the status shows the send stalled (by %s): %s", p.Stall.Worker, p.Stall.Cause))
	}
	return st
}

// terminal waits, until the run's deadline, for the campaign to reach a terminal state and
// records it.
func (f *follower) terminal(ctx context.Context) {
	_ = waitEvery(ctx, time.Until(f.deadline), 200*time.Millisecond, func() (bool, error) {
		st := f.look(ctx)
		if st == nil || !st.Campaign.Terminal() {
			return false, nil
		}
		f.camp.State = st.Campaign.State
		f.camp.States = append(f.camp.States, st.Campaign.State)
		f.note("campaign " + st.Campaign.State)
		return true, nil
	}) // not reaching one is the campaign's state "", which Build judges
}

// end follows the campaign once the rig saw every recipient finished: its terminal state,
// its dead letters, a redrive when the scenario asks for one, and the queues.
func (f *follower) end(ctx context.Context) error {
	f.terminal(ctx)
	if f.final != nil && f.final.Progress != nil && f.camp.State != "" {
		f.camp.DeadLettered = f.final.Progress.DeadLettered
		if len(f.final.Progress.FailedBy) > 0 {
			f.camp.FailedBy = f.final.Progress.FailedBy
		}
	}
	if err := f.lookAtDeadLetters(ctx); err != nil {
		return err
	}
	if f.p.Redrive && f.camp.State == sender.StateDoneWithFailures {
		if err := f.redrive(ctx); err != nil {
			return err
		}
	}
	if f.p.Redeliver {
		if err := f.redeliveredAll(ctx); err != nil {
			return err
		}
	}
	if f.p.Malformed > 0 || f.p.Redeliver {
		left, err := f.batchesDrained(ctx)
		if err != nil {
			return err
		}
		f.camp.BatchQueueLeft = left
	}
	f.camp.BatchesSentTwice, f.camp.RangesDeliveredTwice = f.r.redelivered()
	return f.settled(ctx)
}

// settled waits, before the mock's counts are read, until nothing more can reach it: the
// batch queue empty (where the rig can see it) and the mock's received count the same on
// two readings 200 ms apart, so that a late repeat is counted rather than missed. After 15 s
// it gives up quietly: the counts then read are what the report judges.
func (f *follower) settled(ctx context.Context) error {
	last := int64(-1)
	err := waitEvery(ctx, 15*time.Second, 200*time.Millisecond, func() (bool, error) {
		left, err := f.r.batchesLeft(ctx)
		if err != nil {
			return false, setupErr("batch queue: %v", err)
		}
		st, err := f.ctl.Stats(ctx)
		if err != nil {
			return false, setupErr("mock stats: %v", err)
		}
		n := st.APNs.Received + st.FCM.Received
		quiet := n == last
		last = n
		return left <= 0 && quiet, nil
	})
	if errors.Is(err, ErrSetup) || ctx.Err() != nil {
		return cmp.Or(ctx.Err(), err)
	}
	return nil
}

// redrive clears the mock's faults, presses redrive and waits for the next terminal state;
// what the mock accepted meanwhile is what the redrive delivered.
func (f *follower) redrive(ctx context.Context) error {
	if err := f.ctl.SetFaults(ctx, mockpush.Faults{}); err != nil {
		return setupErr("mock faults: %v", err)
	}
	f.note("faults cleared: the mock serves again")
	before, err := f.ctl.Stats(ctx)
	if err != nil {
		return setupErr("mock stats: %v", err)
	}
	if _, err := f.client.Redrive(ctx, f.id); err != nil {
		return fmt.Errorf("redrive: %w", err)
	}
	f.note(fmt.Sprintf("redrive pressed: %d dead-lettered recipients to send again", f.camp.DeadLettered))
	f.camp.State = ""
	f.terminal(ctx)
	after, err := f.ctl.Stats(ctx)
	if err != nil {
		return setupErr("mock stats: %v", err)
	}
	f.camp.Redriven = after.APNs.Unique + after.FCM.Unique - before.APNs.Unique - before.FCM.Unique
	return nil
}

// injectMalformed puts p.Malformed messages no worker can read as a batch on the batch
// queue: half not JSON at all, half JSON without a campaign.
func (f *follower) injectMalformed(ctx context.Context) error {
	batches, _, err := f.r.queues(ctx)
	if err != nil {
		return err
	}
	if batches == nil {
		return setupErr("malformed: this mode cannot reach the batch queue")
	}
	msgs := make([]sender.OutMessage, f.p.Malformed)
	for i := range msgs {
		body := fmt.Sprintf("%s %d: not a batch message", f.marker, i)
		if i%2 == 1 {
			body = fmt.Sprintf(`{"poison": %q}`, fmt.Sprintf("%s %d", f.marker, i))
		}
		msgs[i].Body = []byte(body)
	}
	if err := batches.Send(ctx, msgs); err != nil {
		return setupErr("malformed: %v", err)
	}
	f.camp.Malformed = int64(len(msgs))
	f.note(fmt.Sprintf("%d malformed messages put straight on the batch queue", len(msgs)))
	return nil
}

// lookAtDeadLetters reads the dead-letter queue, where the rig can reach it: the recipients
// its dead letters of this campaign name, and the malformed messages kept whole. Every
// message read is made visible again, so that a redrive finds the campaign's letters.
func (f *follower) lookAtDeadLetters(ctx context.Context) error {
	_, dlq, err := f.r.queues(ctx)
	if err != nil || dlq == nil {
		return err
	}
	var failed, raw int64
	var receipts []string
	for range 10000 {
		msgs, err := dlq.Receive(ctx, 10, 0)
		if err != nil {
			return setupErr("dead-letter queue: %v", err)
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			receipts = append(receipts, m.Receipt)
			var dl sender.DeadLetter
			if json.Unmarshal(m.Body, &dl) != nil {
				continue
			}
			switch {
			case dl.Raw != "" && strings.Contains(dl.Raw, f.marker):
				raw++
			case dl.Raw == "" && dl.Batch.Campaign == f.id:
				failed += int64(dl.Failed)
			}
		}
	}
	for _, rc := range receipts {
		_ = dlq.ExtendVisibility(context.WithoutCancel(ctx), rc, 0) // a look only
	}
	f.camp.DeadLetterQueue = &failed
	f.camp.MalformedDeadLettered = raw
	return nil
}

// redeliveredAll waits, until the run's deadline, for every range message of the send to
// have come back to the fan-out after its skipped delete, so that the copies it cut again
// are on the batch queue before the run waits for that to drain and judges the mock's
// count; a run that ends sooner has tried less than it says.
func (f *follower) redeliveredAll(ctx context.Context) error {
	if f.final == nil || f.final.Campaign.Send == nil {
		return nil
	}
	ranges := int64(f.final.Campaign.Send.Ranges)
	_ = waitEvery(ctx, time.Until(f.deadline), 100*time.Millisecond, func() (bool, error) {
		_, again := f.r.redelivered()
		return again >= ranges, nil
	}) // fewer is campaign.ranges_delivered_twice, which Build judges
	if _, again := f.r.redelivered(); again >= ranges {
		f.note(fmt.Sprintf("all %d range messages came back to the fan-out and were fanned out again", ranges))
	}
	return nil
}

// batchesDrained waits (up to 15 s) for the batch queue to empty once the campaign ended,
// and returns what is left: a message that cannot be sent and loops stays; in a
// redelivery run, every copy has been taken and let go by then.
func (f *follower) batchesDrained(ctx context.Context) (int64, error) {
	var n int64
	err := waitEvery(ctx, 15*time.Second, 200*time.Millisecond, func() (bool, error) {
		var err error
		if n, err = f.r.batchesLeft(ctx); err != nil {
			return false, setupErr("batch queue: %v", err)
		}
		return n <= 0, nil
	})
	if errors.Is(err, ErrSetup) || ctx.Err() != nil {
		return 0, cmp.Or(ctx.Err(), err)
	}
	return max(n, 0), nil // after 15 s, what is left is campaign.batch_queue_left, which Build judges
}
