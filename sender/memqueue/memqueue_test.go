package memqueue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/conformance"
)

func newQueue(t testing.TB, cfg Config) *Queue {
	t.Helper()
	q, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func fifoMsg(group, dedup, body string) sender.OutMessage {
	return sender.OutMessage{Body: []byte(body), GroupID: group, DedupID: dedup}
}

func mustSend(t testing.TB, q *Queue, msgs ...sender.OutMessage) {
	t.Helper()
	if err := q.Send(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
}

func mustReceive(t testing.TB, q *Queue, n int) []sender.Message {
	t.Helper()
	got, err := q.Receive(context.Background(), n, 0)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func bodies(msgs []sender.Message) string {
	s := make([]string, len(msgs))
	for i, m := range msgs {
		s[i] = string(m.Body)
	}
	return strings.Join(s, ",")
}

func receipts(msgs []sender.Message) []string {
	r := make([]string, len(msgs))
	for i, m := range msgs {
		r[i] = m.Receipt
	}
	return r
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cfg   Config
		field string // named in the error; empty for a valid config
	}{
		// The zero value is a standard queue with defaults.
		{"zero", Config{}, ""},
		// A negative visibility timeout is refused.
		{"negative visibility", Config{VisibilityTimeout: -time.Second}, "VisibilityTimeout"},
		// SQS caps the visibility timeout at 12 hours.
		{"visibility above cap", Config{VisibilityTimeout: 13 * time.Hour}, "VisibilityTimeout"},
		// A negative window is refused.
		{"negative window", Config{FIFO: true, DedupWindow: -time.Minute}, "DedupWindow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q, err := New(tt.cfg)
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				q.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("New() error = %v, want one naming %s", err, tt.field)
			}
		})
	}
}

func TestSendValidation(t *testing.T) {
	t.Parallel()
	big := make([]byte, MaxBodySize+1)
	tests := []struct {
		name  string
		fifo  bool
		msg   sender.OutMessage
		field string // named in the error; empty when the message is valid
	}{
		// FIFO queues need a deduplication ID (no content-based deduplication).
		{"fifo without DedupID", true, sender.OutMessage{Body: []byte("x"), GroupID: "g"}, "DedupID"},
		// FIFO queues need a group, as on SQS.
		{"fifo without GroupID", true, sender.OutMessage{Body: []byte("x"), DedupID: "d"}, "GroupID"},
		// SQS limits IDs to 128 characters.
		{"fifo DedupID too long", true, fifoMsg("g", strings.Repeat("d", MaxIDLen+1), "x"), "DedupID"},
		// An empty body is refused on every queue.
		{"empty body", false, sender.OutMessage{}, "Body"},
		// 256 KiB is the most SQS takes.
		{"body too large", false, sender.OutMessage{Body: big}, "Body"},
		// Exactly 256 KiB is fine.
		{"body at limit", false, sender.OutMessage{Body: big[:MaxBodySize]}, ""},
		// Standard queues ignore group and dedup IDs.
		{"standard without IDs", false, sender.OutMessage{Body: []byte("x")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := newQueue(t, Config{FIFO: tt.fifo})
			ok := fifoMsg("g", "ok", "first")
			err := q.Send(context.Background(), []sender.OutMessage{ok, tt.msg})
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.field) || !strings.Contains(err.Error(), "message 1") {
				t.Fatalf("Send() error = %v, want one naming message 1 and %s", err, tt.field)
			}
			if s := q.Stats(); s.Visible != 0 {
				t.Fatalf("a failed Send left %d messages, want none", s.Visible)
			}
		})
	}
}

func TestFIFODeduplication(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		advance     time.Duration // between the two sends
		deleteFirst bool          // receive and delete the first message before the second send
		secondID    string
		wantBodies  string // what a receive finds after both sends
		wantDedup   uint64
	}{
		// Same ID inside the window: accepted and dropped.
		{"inside window", 4 * time.Minute, false, "d1", "first", 1},
		// Just before the window ends it is still a duplicate.
		{"window edge", 5*time.Minute - time.Nanosecond, false, "d1", "first", 1},
		// Once the window has passed the ID is new again.
		{"after window", 5 * time.Minute, false, "d1", "first,second", 0},
		// Deleting the original does not end the window, as on SQS.
		{"after delete", time.Minute, true, "d1", "", 1},
		// Other IDs are not affected.
		{"different id", 0, false, "d2", "first,second", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := conformance.NewClock()
			q := newQueue(t, Config{FIFO: true, Clock: clock.Now})
			mustSend(t, q, fifoMsg("g", "d1", "first"))
			if tt.deleteFirst {
				got := mustReceive(t, q, 10)
				if err := q.Delete(context.Background(), receipts(got)); err != nil {
					t.Fatal(err)
				}
			}
			clock.Advance(tt.advance)
			mustSend(t, q, fifoMsg("g", tt.secondID, "second"))
			if got := bodies(mustReceive(t, q, 10)); got != tt.wantBodies {
				t.Errorf("received %q, want %q", got, tt.wantBodies)
			}
			if got := q.Stats().Deduplicated; got != tt.wantDedup {
				t.Errorf("Deduplicated = %d, want %d", got, tt.wantDedup)
			}
		})
	}
}

func TestFIFODuplicateInOneSend(t *testing.T) {
	t.Parallel()
	q := newQueue(t, Config{FIFO: true})
	mustSend(t, q, fifoMsg("g", "d", "a"), fifoMsg("g", "d", "b"), fifoMsg("g", "e", "c"))
	if got := bodies(mustReceive(t, q, 10)); got != "a,c" {
		t.Fatalf("received %q, want a,c", got)
	}
}

func TestFIFOGroups(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := conformance.NewClock()
	q := newQueue(t, Config{FIFO: true, VisibilityTimeout: 30 * time.Second, Clock: clock.Now})
	mustSend(t, q,
		fifoMsg("a", "a1", "a1"), fifoMsg("a", "a2", "a2"), fifoMsg("b", "b1", "b1"),
		fifoMsg("a", "a3", "a3"), fifoMsg("a", "a4", "a4"), fifoMsg("b", "b2", "b2"))

	var held []string // receipts of a1, b1 and b2
	steps := []struct {
		name    string
		before  func()
		receive int
		want    string
	}{
		// One message of group a; a is now blocked.
		{"head of a", nil, 1, "a1"},
		// While a1 is in flight only group b is delivered, in order.
		{"a blocked", nil, 10, "b1,b2"},
		// Nothing else: both groups are in flight.
		{"all blocked", nil, 10, ""},
		// Deleting a1 (and b) unblocks a; one call may take several of a group, in order.
		{"a unblocked", func() {
			if err := q.Delete(ctx, held); err != nil {
				t.Fatal(err)
			}
		}, 2, "a2,a3"},
		// a2 and a3 time out; they come back first, in order, before a4.
		{"redelivered in order", func() { clock.Advance(31 * time.Second) }, 10, "a2,a3,a4"},
	}
	var last []sender.Message
	for i, st := range steps {
		if st.before != nil {
			st.before()
		}
		got := mustReceive(t, q, st.receive)
		if b := bodies(got); b != st.want {
			t.Fatalf("step %d (%s): received %q, want %q", i, st.name, b, st.want)
		}
		if i < 2 {
			held = append(held, receipts(got)...)
		}
		last = got
	}
	// a2 and a3 were received twice, a4 once.
	for _, m := range last {
		want := 2
		if string(m.Body) == "a4" {
			want = 1
		}
		if m.ReceiveCount != want {
			t.Errorf("%s ReceiveCount = %d, want %d", m.Body, m.ReceiveCount, want)
		}
	}
}

func TestFIFOReturnedMessageDeletedWhileGroupBlocked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := conformance.NewClock()
	q := newQueue(t, Config{FIFO: true, VisibilityTimeout: 10 * time.Second, Clock: clock.Now})
	mustSend(t, q, fifoMsg("g", "1", "1"), fifoMsg("g", "2", "2"), fifoMsg("g", "3", "3"))
	first := mustReceive(t, q, 2) // 1 and 2, deadline +10s
	if err := q.ExtendVisibility(ctx, first[1].Receipt, time.Minute); err != nil {
		t.Fatal(err)
	}
	clock.Advance(11 * time.Second) // 1 times out; 2 still in flight, so g stays blocked
	if got := bodies(mustReceive(t, q, 10)); got != "" {
		t.Fatalf("received %q while 2 is in flight", got)
	}
	// 1's receipt is still its latest: deleting it works although it timed out.
	if err := q.Delete(ctx, []string{first[0].Receipt, first[1].Receipt}); err != nil {
		t.Fatal(err)
	}
	if got := bodies(mustReceive(t, q, 10)); got != "3" {
		t.Fatalf("received %q, want 3", got)
	}
	if s := q.Stats(); s.Visible != 0 || s.InFlight != 1 {
		t.Fatalf("Stats = %+v, want nothing visible and one in flight", s)
	}
}

func TestReceiveBatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fifo  bool
		sends int
		max   int
		want  []int // sizes of successive receives
	}{
		// 25 messages come as 10, 10, 5.
		{"standard", false, 25, 10, []int{10, 10, 5, 0}},
		// The same across FIFO groups (one group per message here).
		{"fifo", true, 25, 10, []int{10, 10, 5, 0}},
		// A smaller max is honoured.
		{"max 3", false, 7, 3, []int{3, 3, 1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := newQueue(t, Config{FIFO: tt.fifo})
			msgs := make([]sender.OutMessage, tt.sends)
			for i := range msgs {
				id := strconv.Itoa(i)
				msgs[i] = fifoMsg(id, id, id)
			}
			mustSend(t, q, msgs...)
			next := 0
			for _, n := range tt.want {
				got := mustReceive(t, q, tt.max)
				if len(got) != n {
					t.Fatalf("received %d, want %d", len(got), n)
				}
				for _, m := range got {
					if string(m.Body) != strconv.Itoa(next) {
						t.Fatalf("received %q, want %d (send order)", m.Body, next)
					}
					next++
				}
			}
		})
	}
}

func TestReceiveRejectsBadArguments(t *testing.T) {
	t.Parallel()
	q := newQueue(t, Config{})
	tests := []struct {
		name string
		max  int
		wait time.Duration
	}{
		// SQS returns 1..10 messages per call.
		{"max 0", 0, 0},
		{"max 11", 11, 0},
		// A negative wait is a caller bug.
		{"negative wait", 1, -time.Second},
	}
	for _, tt := range tests {
		if _, err := q.Receive(context.Background(), tt.max, tt.wait); err == nil {
			t.Errorf("%s: Receive() succeeded", tt.name)
		}
	}
}

func TestVisibility(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name string
		// act runs after the first receive, given its receipt; it returns what the queue
		// should deliver next and the ReceiveCount expected then (0: nothing).
		act       func(t *testing.T, q *Queue, clock *conformance.Clock, r string)
		wantCount int
	}{
		// Just before the timeout the message is still hidden.
		{"before timeout", func(t *testing.T, q *Queue, c *conformance.Clock, r string) {
			c.Advance(29 * time.Second)
		}, 0},
		// At the timeout it comes back, received a second time.
		{"redelivery", func(t *testing.T, q *Queue, c *conformance.Clock, r string) {
			c.Advance(30 * time.Second)
		}, 2},
		// ExtendVisibility keeps it hidden past the original timeout.
		{"extended", func(t *testing.T, q *Queue, c *conformance.Clock, r string) {
			c.Advance(20 * time.Second)
			if err := q.ExtendVisibility(ctx, r, time.Minute); err != nil {
				t.Fatal(err)
			}
			c.Advance(59 * time.Second)
		}, 0},
		// ... and until the new deadline only.
		{"extension runs out", func(t *testing.T, q *Queue, c *conformance.Clock, r string) {
			if err := q.ExtendVisibility(ctx, r, time.Minute); err != nil {
				t.Fatal(err)
			}
			c.Advance(time.Minute)
		}, 2},
		// Extending to zero makes it visible at once.
		{"extend to zero", func(t *testing.T, q *Queue, c *conformance.Clock, r string) {
			if err := q.ExtendVisibility(ctx, r, 0); err != nil {
				t.Fatal(err)
			}
		}, 2},
		// Deleted messages never come back.
		{"deleted", func(t *testing.T, q *Queue, c *conformance.Clock, r string) {
			if err := q.Delete(ctx, []string{r}); err != nil {
				t.Fatal(err)
			}
			c.Advance(time.Hour)
		}, 0},
	}
	for _, tt := range tests {
		for _, fifo := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/fifo=%v", tt.name, fifo), func(t *testing.T) {
				t.Parallel()
				clock := conformance.NewClock()
				q := newQueue(t, Config{FIFO: fifo, Clock: clock.Now})
				mustSend(t, q, fifoMsg("g", "d", "m"))
				first := mustReceive(t, q, 1)
				if len(first) != 1 || first[0].ReceiveCount != 1 {
					t.Fatalf("first receive = %+v", first)
				}
				tt.act(t, q, clock, first[0].Receipt)
				got := mustReceive(t, q, 1)
				switch {
				case tt.wantCount == 0 && len(got) != 0:
					t.Fatalf("received %+v, want nothing", got)
				case tt.wantCount != 0 && (len(got) != 1 || got[0].ReceiveCount != tt.wantCount):
					t.Fatalf("received %+v, want one with ReceiveCount %d", got, tt.wantCount)
				case tt.wantCount != 0 && (got[0].Receipt == first[0].Receipt || got[0].ID != first[0].ID):
					t.Fatalf("redelivery %+v: want same ID, new receipt than %+v", got[0], first[0])
				}
			})
		}
	}
}

func TestExtendVisibilityErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := conformance.NewClock()
	q := newQueue(t, Config{Clock: clock.Now})
	mustSend(t, q, fifoMsg("g", "d", "m"))
	old := mustReceive(t, q, 1)[0].Receipt
	clock.Advance(time.Minute)
	tests := []struct {
		name    string
		receipt string
		d       time.Duration
		notIn   bool // error wraps ErrNotInFlight
	}{
		// The visibility ran out: the message is no longer in flight.
		{"timed out", old, time.Minute, true},
		// A receipt that was never handed out.
		{"unknown", "999.1", time.Minute, true},
		// Not a receipt at all.
		{"malformed", "nope", time.Minute, false},
		// SQS caps visibility at 12 hours.
		{"too long", old, 13 * time.Hour, false},
		// Negative durations are refused.
		{"negative", old, -time.Second, false},
	}
	for _, tt := range tests {
		err := q.ExtendVisibility(ctx, tt.receipt, tt.d)
		if err == nil || errors.Is(err, ErrNotInFlight) != tt.notIn {
			t.Errorf("%s: ExtendVisibility() = %v, want error (ErrNotInFlight: %v)", tt.name, err, tt.notIn)
		}
	}
}

func TestDeleteReceipts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name string
		// use picks the receipts to delete from the first and second delivery (second is
		// empty when the message was not received again).
		redeliver   bool
		use         func(first, second string) []string
		wantErr     bool
		wantInQueue bool // the message is still on the queue afterwards
		wantStale   uint64
	}{
		// The latest receipt deletes.
		{"latest", false, func(f, s string) []string { return []string{f} }, false, false, 0},
		// Deleting twice is harmless.
		{"twice", false, func(f, s string) []string { return []string{f, f} }, false, false, 1},
		// A receipt from before a redelivery deletes nothing: the newer delivery stays.
		{"stale after redelivery", true, func(f, s string) []string { return []string{f} }, false, true, 1},
		// The redelivery's receipt deletes.
		{"new after redelivery", true, func(f, s string) []string { return []string{s} }, false, false, 0},
		// A malformed receipt fails the call and deletes nothing.
		{"malformed", false, func(f, s string) []string { return []string{f, "x"} }, true, true, 0},
		// Zero receipts is a no-op.
		{"none", false, func(f, s string) []string { return nil }, false, true, 0},
	}
	for _, tt := range tests {
		for _, fifo := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/fifo=%v", tt.name, fifo), func(t *testing.T) {
				t.Parallel()
				clock := conformance.NewClock()
				q := newQueue(t, Config{FIFO: fifo, Clock: clock.Now})
				mustSend(t, q, fifoMsg("g", "d", "m"))
				first := mustReceive(t, q, 1)[0].Receipt
				var second string
				if tt.redeliver {
					clock.Advance(time.Hour)
					second = mustReceive(t, q, 1)[0].Receipt
				}
				err := q.Delete(ctx, tt.use(first, second))
				if (err != nil) != tt.wantErr {
					t.Fatalf("Delete() = %v, want error %v", err, tt.wantErr)
				}
				s := q.Stats()
				if in := s.Visible+s.InFlight == 1; in != tt.wantInQueue {
					t.Errorf("Stats = %+v, want message on queue %v", s, tt.wantInQueue)
				}
				if s.StaleDeletes != tt.wantStale {
					t.Errorf("StaleDeletes = %d, want %d", s.StaleDeletes, tt.wantStale)
				}
			})
		}
	}
}

// waitForWaiters blocks until n receivers are parked in a long poll.
func waitForWaiters(t *testing.T, q *Queue, n int) {
	t.Helper()
	for {
		q.mu.Lock()
		k := len(q.waiters)
		q.mu.Unlock()
		if k >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// parkedOrDone waits until a receiver is parked in a long poll, or until its result came
// first (a short wait can run out before the receiver is seen parked on a loaded machine).
func parkedOrDone(q *Queue, res <-chan receiveResult) (receiveResult, bool) {
	for {
		select {
		case r := <-res:
			return r, true
		default:
		}
		q.mu.Lock()
		k := len(q.waiters)
		q.mu.Unlock()
		if k >= 1 {
			return receiveResult{}, false
		}
		time.Sleep(time.Millisecond)
	}
}

type receiveResult struct {
	msgs []sender.Message
	err  error
}

func receiveAsync(ctx context.Context, q *Queue, wait time.Duration) <-chan receiveResult {
	ch := make(chan receiveResult, 1)
	go func() {
		msgs, err := q.Receive(ctx, 10, wait)
		ch <- receiveResult{msgs, err}
	}()
	return ch
}

func TestLongPoll(t *testing.T) {
	t.Parallel()
	const long = time.Minute // a wait the test never sits through unless the queue is broken
	tests := []struct {
		name string
		cfg  Config
		wait time.Duration
		// act runs once the receiver is parked; the receiver is cancelled with cancel.
		act      func(q *Queue, cancel context.CancelFunc)
		wantBody string // "" for no message
		wantErr  error
	}{
		// A send wakes a waiting receiver.
		{"wakes on send", Config{}, long, func(q *Queue, _ context.CancelFunc) {
			q.Send(context.Background(), []sender.OutMessage{{Body: []byte("hi")}})
		}, "hi", nil},
		// The same on a FIFO queue.
		{"fifo wakes on send", Config{FIFO: true}, long, func(q *Queue, _ context.CancelFunc) {
			q.Send(context.Background(), []sender.OutMessage{fifoMsg("g", "d", "hi")})
		}, "hi", nil},
		// With nothing sent the wait runs out and returns nothing, no error.
		{"timeout", Config{}, 20 * time.Millisecond, func(*Queue, context.CancelFunc) {}, "", nil},
		// Cancelling ctx ends the wait with its error.
		{"ctx cancel", Config{}, long, func(_ *Queue, cancel context.CancelFunc) { cancel() }, "", context.Canceled},
		// Close ends the wait with ErrClosed.
		{"close", Config{}, long, func(q *Queue, _ context.CancelFunc) { q.Close() }, "", ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := newQueue(t, tt.cfg)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			res := receiveAsync(ctx, q, tt.wait)
			r, done := parkedOrDone(q, res)
			if !done {
				tt.act(q, cancel)
				r = <-res
			}
			if !errors.Is(r.err, tt.wantErr) || (tt.wantErr == nil && r.err != nil) {
				t.Fatalf("Receive() error = %v, want %v", r.err, tt.wantErr)
			}
			if got := bodies(r.msgs); got != tt.wantBody {
				t.Fatalf("Receive() = %q, want %q", got, tt.wantBody)
			}
		})
	}
}

func TestLongPollWakesOnVisibilityTimeout(t *testing.T) {
	t.Parallel()
	for _, fifo := range []bool{false, true} {
		t.Run(fmt.Sprintf("fifo=%v", fifo), func(t *testing.T) {
			t.Parallel()
			q := newQueue(t, Config{FIFO: fifo, VisibilityTimeout: 20 * time.Millisecond})
			// Two parked receivers, so that the watch over deadlines must be handed on.
			ctx := context.Background()
			a := receiveAsync(ctx, q, time.Minute)
			b := receiveAsync(ctx, q, time.Minute)
			waitForWaiters(t, q, 2)
			mustSend(t, q, fifoMsg("g", "d", "m"))
			// One of them gets the message and never deletes it; the other must get it
			// again once its visibility runs out.
			var first receiveResult
			var other <-chan receiveResult
			select {
			case first = <-a:
				other = b
			case first = <-b:
				other = a
			}
			if first.err != nil || len(first.msgs) != 1 {
				t.Fatalf("first receive = %+v", first)
			}
			second := <-other
			if second.err != nil || len(second.msgs) != 1 || second.msgs[0].ReceiveCount != 2 {
				t.Fatalf("second receive = %+v, want the message again", second)
			}
		})
	}
}

// TestLongPollWakesAsManyAsSent parks receivers that take one message each; every message
// sent must reach one of them before their wait runs out.
func TestLongPollWakesAsManyAsSent(t *testing.T) {
	t.Parallel()
	q := newQueue(t, Config{VisibilityTimeout: time.Hour})
	ctx := context.Background()
	const n = 5
	res := make([]chan receiveResult, n)
	for i := range res {
		res[i] = make(chan receiveResult, 1)
		go func() {
			msgs, err := q.Receive(ctx, 1, 20*time.Second)
			res[i] <- receiveResult{msgs, err}
		}()
	}
	waitForWaiters(t, q, n)
	for i := 0; i < n; i++ {
		mustSend(t, q, sender.OutMessage{Body: []byte{byte('a' + i)}})
	}
	total := 0
	for _, ch := range res {
		r := <-ch
		if r.err != nil {
			t.Fatal(r.err)
		}
		total += len(r.msgs)
	}
	if total != n {
		t.Fatalf("received %d messages, want %d", total, n)
	}
}

func TestClosedQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	q := newQueue(t, Config{})
	mustSend(t, q, sender.OutMessage{Body: []byte("m")})
	r := mustReceive(t, q, 1)[0].Receipt
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatalf("second Close() = %v", err)
	}
	calls := []struct {
		name string
		err  error
	}{
		{"Send", q.Send(ctx, []sender.OutMessage{{Body: []byte("m")}})},
		{"Receive", func() error { _, err := q.Receive(ctx, 1, 0); return err }()},
		{"Delete", q.Delete(ctx, []string{r})},
		{"ExtendVisibility", q.ExtendVisibility(ctx, r, time.Second)},
	}
	for _, c := range calls {
		if !errors.Is(c.err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", c.name, c.err)
		}
	}
}

// TestStandardConcurrency runs producers and consumers that delete promptly and checks that
// every message is received and deleted exactly once.
func TestStandardConcurrency(t *testing.T) {
	t.Parallel()
	const producers, consumers, perProducer = 4, 4, 2500
	q := newQueue(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var seen sync.Map
	var received atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, producers+consumers)
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perProducer; {
				n := min(1+i%13, perProducer-i)
				batch := make([]sender.OutMessage, n)
				for j := range batch {
					batch[j].Body = []byte(fmt.Sprintf("%d-%d", p, i+j))
				}
				if err := q.Send(ctx, batch); err != nil {
					errs <- err
					return
				}
				i += n
			}
		}()
	}
	for c := 0; c < consumers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				msgs, err := q.Receive(ctx, 10, 50*time.Millisecond)
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
				if len(msgs) == 0 {
					// A wait that ended empty, perhaps because another consumer counted the
					// last message and ended the run: nothing to delete.
					continue
				}
				for _, m := range msgs {
					if _, dup := seen.LoadOrStore(string(m.Body), true); dup || m.ReceiveCount != 1 {
						errs <- fmt.Errorf("%s received twice", m.Body)
						return
					}
				}
				if err := q.Delete(ctx, receipts(msgs)); err != nil {
					errs <- err
					return
				}
				if received.Add(int64(len(msgs))) == producers*perProducer {
					cancel()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := received.Load(); got != producers*perProducer {
		t.Fatalf("received %d, want %d", got, producers*perProducer)
	}
	if s := q.Stats(); s.Visible != 0 || s.InFlight != 0 || s.StaleDeletes != 0 {
		t.Fatalf("Stats after the run = %+v, want an empty queue", s)
	}
}

// TestFIFOConcurrency checks group order and in-flight blocking with many consumers.
func TestFIFOConcurrency(t *testing.T) {
	t.Parallel()
	const groups, perGroup, consumers = 8, 300, 4
	q := newQueue(t, Config{FIFO: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var (
		mu       sync.Mutex
		next     [groups]int // next expected sequence per group
		busy     [groups]bool
		received int
	)
	var wg sync.WaitGroup
	errs := make(chan error, consumers+1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < perGroup; i++ {
			batch := make([]sender.OutMessage, groups)
			for g := range batch {
				id := fmt.Sprintf("%d:%d", g, i)
				batch[g] = fifoMsg(strconv.Itoa(g), id, id)
			}
			if err := q.Send(ctx, batch); err != nil {
				errs <- err
				return
			}
		}
	}()
	for c := 0; c < consumers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				msgs, err := q.Receive(ctx, 1+c%3*4, 50*time.Millisecond)
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
				mu.Lock()
				claimed := map[int]bool{}
				for _, m := range msgs {
					var g, i int
					fmt.Sscanf(string(m.Body), "%d:%d", &g, &i)
					if busy[g] && !claimed[g] {
						errs <- fmt.Errorf("group %d delivered while in flight", g)
					}
					if i != next[g] {
						errs <- fmt.Errorf("group %d: got %d, want %d", g, i, next[g])
					}
					busy[g], claimed[g] = true, true
					next[g]++
				}
				mu.Unlock()
				// Mark groups idle before deleting: the delete unblocks them.
				mu.Lock()
				for g := range claimed {
					busy[g] = false
				}
				received += len(msgs)
				done := received == groups*perGroup
				mu.Unlock()
				// Delete even when another consumer has just cancelled ctx because the last
				// message arrived: these messages were received and counted, and a worker
				// deletes what it finished the same way (context.WithoutCancel).
				if err := q.Delete(context.WithoutCancel(ctx), receipts(msgs)); err != nil {
					errs <- err
					return
				}
				if done {
					cancel()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if received != groups*perGroup {
		t.Fatalf("received %d, want %d", received, groups*perGroup)
	}
}

func benchmarkSendReceiveDelete(b *testing.B, fifo bool) {
	// The clock passes a deduplication window per batch so that the batch can be sent again
	// with the same IDs.
	clock := conformance.NewClock()
	q := newQueue(b, Config{FIFO: fifo, Clock: clock.Now})
	ctx := context.Background()
	batch := make([]sender.OutMessage, MaxBatch)
	for i := range batch {
		id := strconv.Itoa(i)
		batch[i] = fifoMsg(id, id, `{"campaign":"c1","range":[0,500],"platform":"ios"}`)
	}
	b.ReportAllocs()
	for b.Loop() {
		clock.Advance(DefaultDedupWindow)
		if err := q.Send(ctx, batch); err != nil {
			b.Fatal(err)
		}
		msgs, err := q.Receive(ctx, MaxBatch, 0)
		if err != nil || len(msgs) != MaxBatch {
			b.Fatalf("Receive() = %d messages, %v", len(msgs), err)
		}
		if err := q.Delete(ctx, receipts(msgs)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSendReceiveDelete is one 10-message batch through Send, Receive and Delete.
func BenchmarkSendReceiveDelete(b *testing.B) {
	b.Run("standard", func(b *testing.B) { benchmarkSendReceiveDelete(b, false) })
	b.Run("fifo", func(b *testing.B) { benchmarkSendReceiveDelete(b, true) })
}

// BenchmarkSendReceiveDeleteParallel has every goroutine send, receive and delete batches of
// 10 on one standard queue.
func BenchmarkSendReceiveDeleteParallel(b *testing.B) {
	q := newQueue(b, Config{})
	batch := make([]sender.OutMessage, MaxBatch)
	for i := range batch {
		batch[i].Body = []byte(`{"campaign":"c1","range":[0,500],"platform":"ios"}`)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		rs := make([]string, 0, MaxBatch)
		for pb.Next() {
			if err := q.Send(ctx, batch); err != nil {
				b.Error(err)
				return
			}
			msgs, err := q.Receive(ctx, MaxBatch, time.Second)
			if err != nil {
				b.Error(err)
				return
			}
			rs = rs[:0]
			for _, m := range msgs {
				rs = append(rs, m.Receipt)
			}
			if err := q.Delete(ctx, rs); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
