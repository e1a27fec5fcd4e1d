package memqueue

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/conformance"
)

// modelMsg is what the model knows of one message.
type modelMsg struct {
	group    string
	receipt  string // latest
	count    int
	deadline time.Time
	inFlight bool
	deleted  bool
}

// TestModel runs random sends, receives, deletes (with current and stale receipts),
// extensions and clock moves against a simple model of the queue, checking after every step
// that nothing is delivered while in flight, FIFO groups come in order, and the counts
// agree; then drains the queue and checks that every message was deleted exactly once.
func TestModel(t *testing.T) {
	t.Parallel()
	for _, fifo := range []bool{false, true} {
		for seed := range uint64(4) {
			t.Run(fmt.Sprintf("fifo=%v/seed=%d", fifo, seed), func(t *testing.T) {
				t.Parallel()
				runModel(t, fifo, seed)
			})
		}
	}
}

func runModel(t *testing.T, fifo bool, seed uint64) {
	const vis = 30 * time.Second
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 7))
	clock := conformance.NewClock()
	q := newQueue(t, Config{FIFO: fifo, VisibilityTimeout: vis, Clock: clock.Now})
	msgs := map[string]*modelMsg{}
	order := map[string][]string{}  // group -> IDs in send order
	byBody := map[string]string{}   // body -> ID, learnt on first receipt
	var handed []string             // every receipt ever handed out
	owner := map[string]*modelMsg{} // receipt -> its message while it is the latest
	sent := 0

	live := func(m *modelMsg) bool { return m.inFlight && m.deadline.After(clock.Now()) }
	receive := func(limit int) {
		got, err := q.Receive(ctx, limit, 0)
		if err != nil {
			t.Fatal(err)
		}
		batch := map[string][]string{}
		for _, g := range got {
			if id, ok := byBody[string(g.Body)]; ok && id != g.ID {
				t.Fatalf("body %s came with ID %s, then %s", g.Body, id, g.ID)
			}
			byBody[string(g.Body)] = g.ID
			m := msgs[string(g.Body)]
			switch {
			case m.deleted:
				t.Fatalf("%s delivered after delete", g.Body)
			case live(m):
				t.Fatalf("%s delivered while in flight", g.Body)
			case g.ReceiveCount != m.count+1:
				t.Fatalf("%s ReceiveCount = %d, want %d", g.Body, g.ReceiveCount, m.count+1)
			}
			batch[m.group] = append(batch[m.group], string(g.Body))
		}
		if fifo {
			for grp, bodies := range batch {
				// Nothing of the group may have been in flight, and the batch holds the
				// group's first undeleted messages in order.
				var want []string
				for _, b := range order[grp] {
					if m := msgs[b]; !m.deleted {
						if live(m) {
							t.Fatalf("group %s delivered while %s is in flight", grp, b)
						}
						want = append(want, b)
					}
				}
				if len(want) < len(bodies) || !slices.Equal(want[:len(bodies)], bodies) {
					t.Fatalf("group %s delivered %v, want the head of %v", grp, bodies, want)
				}
			}
		}
		for _, g := range got {
			m := msgs[string(g.Body)]
			delete(owner, m.receipt)
			owner[g.Receipt] = m
			m.receipt, m.count, m.inFlight = g.Receipt, g.ReceiveCount, true
			m.deadline = clock.Now().Add(vis)
			handed = append(handed, g.Receipt)
		}
	}
	check := func(step int) {
		s := q.Stats()
		visible, inFlight := 0, 0
		for _, m := range msgs {
			switch {
			case m.deleted:
			case live(m):
				inFlight++
			default:
				visible++
			}
		}
		if s.Visible != visible || s.InFlight != inFlight {
			t.Fatalf("step %d: Stats = %+v, model has %d visible, %d in flight", step, s, visible, inFlight)
		}
	}
	find := func(receipt string) *modelMsg { return owner[receipt] }

	steps := 1500
	if testing.Short() {
		steps = 300
	}
	for step := range steps {
		switch op := rng.IntN(10); {
		case op < 3: // send
			var out []sender.OutMessage
			for range 1 + rng.IntN(3) {
				body := fmt.Sprint("m", sent)
				grp := fmt.Sprint("g", rng.IntN(3))
				sent++
				out = append(out, fifoMsg(grp, body, body))
				msgs[body] = &modelMsg{group: grp}
				order[grp] = append(order[grp], body)
			}
			mustSend(t, q, out...)
		case op < 6: // receive
			receive(1 + rng.IntN(MaxBatch))
		case op < 8 && len(handed) > 0: // delete, with any receipt ever seen
			r := handed[rng.IntN(len(handed))]
			if err := q.Delete(ctx, []string{r}); err != nil {
				t.Fatal(err)
			}
			if m := find(r); m != nil {
				m.deleted = true
				delete(owner, r)
			}
		case op < 9 && len(handed) > 0: // extend
			r := handed[rng.IntN(len(handed))]
			d := []time.Duration{0, 10 * time.Second, time.Minute}[rng.IntN(3)]
			err := q.ExtendVisibility(ctx, r, d)
			m := find(r)
			if ok := m != nil && !m.deleted && live(m); ok != (err == nil) {
				t.Fatalf("step %d: ExtendVisibility(%s) = %v, model says in flight: %v", step, r, err, ok)
			}
			if err == nil {
				m.deadline, m.inFlight = clock.Now().Add(d), d > 0
			}
		default:
			clock.Advance(time.Duration(rng.IntN(20)) * time.Second)
		}
		check(step)
	}

	// Drain: everything left comes back in time and is deleted once.
	for range 1000 {
		clock.Advance(time.Hour)
		got, err := q.Receive(ctx, MaxBatch, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		for _, g := range got {
			if msgs[string(g.Body)].deleted {
				t.Fatalf("%s delivered after delete", g.Body)
			}
			msgs[string(g.Body)].deleted = true
		}
		if err := q.Delete(ctx, receipts(got)); err != nil {
			t.Fatal(err)
		}
	}
	for b, m := range msgs {
		if !m.deleted {
			t.Fatalf("%s never came back", b)
		}
	}
	if s := q.Stats(); s.Visible != 0 || s.InFlight != 0 {
		t.Fatalf("Stats after drain = %+v", s)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if fifo && len(q.groups) != 0 {
		t.Fatalf("%d groups left after drain", len(q.groups))
	}
	if len(q.entries) != 0 {
		t.Fatalf("%d entries left after drain", len(q.entries))
	}
}
