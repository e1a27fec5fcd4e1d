package conformance

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/salvopush/salvo/sender"
)

// QueueUnderTest is a fresh, empty queue and the means to move its time.
type QueueUnderTest struct {
	Queue sender.Queue
	// Visibility is the queue's visibility timeout: how long a received message stays
	// hidden.
	Visibility time.Duration
	// Advance lets d pass for the queue: a fake clock moves, or the test waits.
	Advance func(d time.Duration)
}

// NewQueue returns a fresh, empty queue for one test: a FIFO queue (with content-based
// deduplication off) when fifo is set, a standard one otherwise.
type NewQueue func(t *testing.T, fifo bool) QueueUnderTest

// queueCase is one behaviour of sender.Queue; kinds says which queues show it.
type queueCase struct {
	name  string
	kinds []bool // fifo values
	run   func(t *testing.T, q QueueUnderTest, fifo bool)
}

var bothKinds, fifoOnly = []bool{false, true}, []bool{true}

// out returns messages with the given bodies, each its own DedupID, in group.
func out(group string, bodies ...string) []sender.OutMessage {
	msgs := make([]sender.OutMessage, len(bodies))
	for i, b := range bodies {
		msgs[i] = sender.OutMessage{Body: []byte(b), GroupID: group, DedupID: group + "/" + b}
	}
	return msgs
}

func send(t *testing.T, q sender.Queue, msgs []sender.OutMessage) {
	t.Helper()
	if err := q.Send(t.Context(), msgs); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

// receive receives until it has want messages, with a bounded number of long polls, and
// fails if more than want come.
func receive(t *testing.T, q QueueUnderTest, want int) []sender.Message {
	t.Helper()
	var got []sender.Message
	for poll := 0; len(got) < want && poll < 2*want+10; poll++ {
		msgs, err := q.Queue.Receive(t.Context(), min(10, want-len(got)), time.Second)
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		got = append(got, msgs...)
	}
	if len(got) != want {
		t.Fatalf("received %d messages (%v), want %d", len(got), bodies(got), want)
	}
	return got
}

// none checks that nothing is visible now.
func none(t *testing.T, q QueueUnderTest) {
	t.Helper()
	msgs, err := q.Queue.Receive(t.Context(), 10, 0)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if len(msgs) > 0 {
		t.Fatalf("received %v, want nothing visible", bodies(msgs))
	}
}

func bodies(msgs []sender.Message) []string {
	s := make([]string, len(msgs))
	for i, m := range msgs {
		s[i] = string(m.Body)
	}
	return s
}

func receipts(msgs []sender.Message) []string {
	s := make([]string, len(msgs))
	for i, m := range msgs {
		s[i] = m.Receipt
	}
	return s
}

func del(t *testing.T, q sender.Queue, msgs []sender.Message) {
	t.Helper()
	if err := q.Delete(t.Context(), receipts(msgs)); err != nil {
		t.Fatalf("Delete: %v", err)
	}
}

var queueCases = []queueCase{
	// Every message sent comes out once, any number of them (Send batches by 10), with
	// ReceiveCount 1; deleted ones never come back.
	{"send receive delete", bothKinds, func(t *testing.T, q QueueUnderTest, fifo bool) {
		var want []string
		for i := range 23 {
			want = append(want, fmt.Sprintf("m%02d", i))
		}
		send(t, q.Queue, out("g", want...))
		// Delete each batch before the next Receive: a FIFO group gives nothing more while
		// some of it is in flight.
		var names []string
		for poll := 0; len(names) < len(want) && poll < 2*len(want)+10; poll++ {
			got, err := q.Queue.Receive(t.Context(), 10, time.Second)
			if err != nil {
				t.Fatalf("Receive: %v", err)
			}
			for _, m := range got {
				if m.ReceiveCount != 1 || m.ID == "" || m.Receipt == "" {
					t.Fatalf("message %+v: want ReceiveCount 1, an ID and a receipt", m)
				}
			}
			names = append(names, bodies(got)...)
			if len(got) > 0 {
				del(t, q.Queue, got)
			}
		}
		if !fifo {
			slices.Sort(names)
		}
		if !slices.Equal(names, want) {
			t.Fatalf("received %v, want %v", names, want)
		}
		q.Advance(q.Visibility + time.Second)
		none(t, q)
	}},
	// Receive hands out at most max messages.
	{"receive max", bothKinds, func(t *testing.T, q QueueUnderTest, fifo bool) {
		send(t, q.Queue, out("g", "a", "b", "c", "d", "e"))
		msgs, err := q.Queue.Receive(t.Context(), 2, time.Second)
		if err != nil || len(msgs) == 0 || len(msgs) > 2 {
			t.Fatalf("Receive(2) = %d messages, %v; want 1 or 2", len(msgs), err)
		}
	}},
	// A received message stays hidden for the visibility timeout, then comes back with the
	// same ID, a fresh receipt and ReceiveCount 2.
	{"redelivery", bothKinds, func(t *testing.T, q QueueUnderTest, fifo bool) {
		send(t, q.Queue, out("g", "x"))
		first := receive(t, q, 1)[0]
		none(t, q)
		q.Advance(q.Visibility)
		again := receive(t, q, 1)[0]
		if again.ID != first.ID || string(again.Body) != "x" || again.ReceiveCount != 2 || again.Receipt == first.Receipt {
			t.Fatalf("redelivered %+v after %+v; want the same ID, a new receipt, ReceiveCount 2", again, first)
		}
		del(t, q.Queue, []sender.Message{again})
		q.Advance(q.Visibility + time.Second)
		none(t, q)
	}},
	// ExtendVisibility to zero shows a message again at once; a longer one keeps it hidden
	// past the queue's own timeout.
	{"extend visibility", bothKinds, func(t *testing.T, q QueueUnderTest, fifo bool) {
		send(t, q.Queue, out("g", "x"))
		m := receive(t, q, 1)[0]
		if err := q.Queue.ExtendVisibility(t.Context(), m.Receipt, 0); err != nil {
			t.Fatalf("ExtendVisibility(0): %v", err)
		}
		m = receive(t, q, 1)[0]
		if m.ReceiveCount != 2 {
			t.Fatalf("after ExtendVisibility(0): ReceiveCount %d, want 2", m.ReceiveCount)
		}
		if err := q.Queue.ExtendVisibility(t.Context(), m.Receipt, 3*q.Visibility); err != nil {
			t.Fatalf("ExtendVisibility: %v", err)
		}
		q.Advance(q.Visibility)
		none(t, q)
		q.Advance(2*q.Visibility + time.Second)
		if m = receive(t, q, 1)[0]; m.ReceiveCount != 3 {
			t.Fatalf("after the extension ran out: ReceiveCount %d, want 3", m.ReceiveCount)
		}
	}},
	// Receipts after a redelivery: Delete with the older one succeeds (whether it deletes
	// is up to the service: SQS says it may not), ExtendVisibility of a deleted message
	// fails, and deleting twice is no error.
	{"stale receipts", bothKinds, func(t *testing.T, q QueueUnderTest, fifo bool) {
		send(t, q.Queue, out("g", "x"))
		first := receive(t, q, 1)[0]
		q.Advance(q.Visibility)
		second := receive(t, q, 1)[0]
		if err := q.Queue.Delete(t.Context(), []string{first.Receipt}); err != nil {
			t.Fatalf("Delete with the older receipt: %v", err)
		}
		del(t, q.Queue, []sender.Message{second})
		if err := q.Queue.ExtendVisibility(t.Context(), second.Receipt, 0); err == nil {
			t.Fatal("ExtendVisibility of a deleted message: no error")
		}
		if err := q.Queue.Delete(t.Context(), []string{second.Receipt}); err != nil {
			t.Fatalf("second Delete: %v", err)
		}
		q.Advance(q.Visibility + time.Second)
		none(t, q)
	}},
	// A FIFO DedupID seen within the window is accepted and dropped, even once the first
	// message was deleted.
	{"fifo deduplication", fifoOnly, func(t *testing.T, q QueueUnderTest, fifo bool) {
		send(t, q.Queue, []sender.OutMessage{{Body: []byte("first"), GroupID: "g", DedupID: "d1"}})
		send(t, q.Queue, []sender.OutMessage{{Body: []byte("second"), GroupID: "g", DedupID: "d1"}})
		got := receive(t, q, 1)
		if string(got[0].Body) != "first" {
			t.Fatalf("received %q, want the first", got[0].Body)
		}
		del(t, q.Queue, got)
		send(t, q.Queue, []sender.OutMessage{{Body: []byte("third"), GroupID: "g", DedupID: "d1"}})
		none(t, q)
		send(t, q.Queue, []sender.OutMessage{{Body: []byte("fourth"), GroupID: "g", DedupID: "d2"}})
		if got := receive(t, q, 1); string(got[0].Body) != "fourth" {
			t.Fatalf("received %q, want the fourth", got[0].Body)
		}
	}},
	// A FIFO group comes out in send order, and nothing of it while an earlier message of
	// it is in flight; other groups are not held up.
	{"fifo groups", fifoOnly, func(t *testing.T, q QueueUnderTest, fifo bool) {
		send(t, q.Queue, out("g1", "a1", "a2", "a3"))
		head, err := q.Queue.Receive(t.Context(), 1, time.Second)
		if err != nil || len(head) != 1 || string(head[0].Body) != "a1" {
			t.Fatalf("first Receive(1) = %v, %v; want [a1]", bodies(head), err)
		}
		for range 3 {
			none(t, q) // a2 waits behind a1
		}
		send(t, q.Queue, out("g2", "b1"))
		if got := receive(t, q, 1); string(got[0].Body) != "b1" {
			t.Fatalf("received %q, want b1 (g2 is not held up by g1)", got[0].Body)
		}
		del(t, q.Queue, head)
		for _, want := range []string{"a2", "a3"} {
			got, err := q.Queue.Receive(t.Context(), 1, time.Second)
			if err != nil || len(got) != 1 || string(got[0].Body) != want {
				t.Fatalf("Receive(1) = %v, %v; want [%s]", bodies(got), err, want)
			}
			del(t, q.Queue, got)
		}
	}},
	// A FIFO queue refuses a message without GroupID or DedupID.
	{"fifo ids required", fifoOnly, func(t *testing.T, q QueueUnderTest, fifo bool) {
		for _, m := range []sender.OutMessage{{Body: []byte("x"), DedupID: "d"}, {Body: []byte("x"), GroupID: "g"}} {
			if err := q.Queue.Send(t.Context(), []sender.OutMessage{m}); err == nil {
				t.Fatalf("Send of %+v: no error", m)
			}
		}
	}},
}

// Queue runs the sender.Queue suite against queues from newQueue: the common behaviours on
// a standard and a FIFO queue, the FIFO ones on a FIFO queue; subtests run in parallel.
func Queue(t *testing.T, newQueue NewQueue) {
	for _, c := range queueCases {
		for _, fifo := range c.kinds {
			kind := "standard"
			if fifo {
				kind = "fifo"
			}
			t.Run(c.name+"/"+kind, func(t *testing.T) {
				t.Parallel()
				c.run(t, newQueue(t, fifo), fifo)
			})
		}
	}
}
