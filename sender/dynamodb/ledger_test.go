package dynamodb_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/conformance"
	"github.com/salvopush/salvo/sender/dynamodb"
)

func newLedger(t *testing.T, e env, clock func() time.Time) *dynamodb.Ledger {
	t.Helper()
	l, err := dynamodb.NewLedger(e.client, e.tables.Ledger, dynamodb.LedgerOptions{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func span(from, to uint32) []uint32 {
	var s []uint32
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// TestLedgerConformance runs the sender.Ledger suite on the emulator; each ledger is a new
// process's view of one shared table.
func TestLedgerConformance(t *testing.T) {
	e := newEnv(t, nil)
	conformance.Ledger(t, func(t *testing.T, clock func() time.Time) sender.Ledger {
		return newLedger(t, e, clock)
	})
}

// TestLedgerSemantics plays one range [100, 110) through claim, finish, release and
// re-claim by two processes, the first with two send loops.
func TestLedgerSemantics(t *testing.T) {
	e := newEnv(t, nil)
	clock := conformance.NewClock()
	w1, w2 := newLedger(t, e, clock.Now), newLedger(t, e, clock.Now)
	ctx := t.Context()
	const lease = time.Minute
	steps := []struct {
		name string
		run  func() ([]uint32, error)
		want []uint32 // recipients claimed (for claims)
	}{
		// Loop 0 of worker 1 takes the free range: all ten recipients.
		{"w1/0 claims", func() ([]uint32, error) { return w1.Claim(ctx, "c1", "w1/0", 100, 10, lease, nil) }, span(100, 110)},
		// Worker 2 finds it leased: nothing.
		{"w2 blocked", func() ([]uint32, error) { return w2.Claim(ctx, "c1", "w2/0", 100, 10, lease, nil) }, nil},
		// Loop 1 of the same worker (the batch delivered twice to one process) gets nothing
		// either: loop 0 is still pushing them.
		{"w1/1 blocked", func() ([]uint32, error) { return w1.Claim(ctx, "c1", "w1/1", 100, 10, lease, nil) }, nil},
		// Nor does loop 0 itself, given the same batch again.
		{"w1/0 again", func() ([]uint32, error) { return w1.Claim(ctx, "c1", "w1/0", 100, 10, lease, nil) }, nil},
		// Loop 0 finishes six; four remain claimed, so the lease stays.
		{"w1/0 finishes 6", func() ([]uint32, error) {
			return nil, w1.Finish(ctx, "c1", "w1/0", sender.RecipientAccepted, span(100, 106))
		}, nil},
		{"w2 still blocked", func() ([]uint32, error) { return w2.Claim(ctx, "c1", "w2/0", 100, 10, lease, nil) }, nil},
		// Loop 0 gives the last four back: the lease drops.
		{"w1/0 releases 4", func() ([]uint32, error) { return nil, w1.Release(ctx, "c1", "w1/0", span(106, 110)) }, nil},
		// Worker 2 now gets only what is not finished.
		{"w2 claims the rest", func() ([]uint32, error) { return w2.Claim(ctx, "c1", "w2/0", 100, 10, lease, nil) }, span(106, 110)},
		// It finishes them: the range is all final and its lease gone.
		{"w2 finishes", func() ([]uint32, error) {
			return nil, w2.Finish(ctx, "c1", "w2/0", sender.RecipientRejected, span(106, 110))
		}, nil},
		// A later claim (a late duplicate message) finds nothing to do.
		{"w1/1 after all done", func() ([]uint32, error) { return w1.Claim(ctx, "c1", "w1/1", 100, 10, lease, nil) }, nil},
		// Another campaign's range with the same start is independent.
		{"other campaign", func() ([]uint32, error) { return w2.Claim(ctx, "c2", "w2/0", 100, 3, lease, nil) }, span(100, 103)},
	}
	for _, st := range steps {
		got, err := st.run()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if !slices.Equal(got, st.want) {
			t.Fatalf("%s: got %v, want %v", st.name, got, st.want)
		}
	}
	if c, err := w1.Counts(ctx, "c1"); err != nil || c != (sender.LedgerCounts{Accepted: 6, Rejected: 4}) {
		t.Fatalf("Counts = %+v, %v; want 6 accepted, 4 rejected", c, err)
	}
}

func TestLedgerMisuse(t *testing.T) {
	e := newEnv(t, nil)
	a := newLedger(t, e, nil)
	ctx := t.Context()
	if _, err := a.Claim(ctx, "c1", "A", 0, 8, time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Claim(ctx, "c1", "A", 20, 8, time.Minute, nil); err != nil || len(got) != 8 {
		t.Fatal(got, err)
	}
	if err := a.Release(ctx, "c1", "A", span(20, 28)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		run  func() error
	}{
		// The same start with another size: callers must claim the same ranges. (A held
		// range gives nothing whatever the size; the size is checked once the lease is won.)
		{"different n", func() error { _, err := a.Claim(ctx, "c1", "B", 20, 9, time.Minute, nil); return err }},
		// Finish of a recipient in no range ever claimed: the table does not know its range.
		{"finish unclaimed", func() error { return a.Finish(ctx, "c1", "A", sender.RecipientAccepted, []uint32{8}) }},
		// An unknown state.
		{"bad state", func() error { return a.Finish(ctx, "c1", "A", 0, []uint32{1}) }},
		// A zero-sized range.
		{"empty range", func() error { _, err := a.Claim(ctx, "c1", "A", 0, 0, time.Minute, nil); return err }},
		// No owner.
		{"no owner", func() error { _, err := a.Claim(ctx, "c1", "", 0, 8, time.Minute, nil); return err }},
	}
	for _, tt := range tests {
		if err := tt.run(); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
	// The misuse left A's claim of [0, 8) and its lease intact.
	if got, err := newLedger(t, e, nil).Claim(ctx, "c1", "B", 0, 8, time.Minute, nil); err != nil || len(got) != 0 {
		t.Errorf("B claimed %v, %v from A's range", got, err)
	}
	if err := a.Finish(ctx, "c1", "A", sender.RecipientAccepted, span(0, 8)); err != nil {
		t.Errorf("A's Finish after the misuse: %v", err)
	}
	// The claim with the wrong size gave its lease back.
	if got, err := newLedger(t, e, nil).Claim(ctx, "c1", "C", 20, 8, time.Minute, nil); err != nil || len(got) != 8 {
		t.Errorf("C's claim after the wrong-size claim: %v, %v; want all 8", got, err)
	}
}

// TestLedgerClaimRace has two processes claim the same ranges at the same moment, over and
// over: each range goes to exactly one of them.
func TestLedgerClaimRace(t *testing.T) {
	e := newEnv(t, nil)
	workers := []*dynamodb.Ledger{newLedger(t, e, nil), newLedger(t, e, nil)}
	const ranges = 20
	got := make([][][]uint32, len(workers)) // worker -> range -> claimed
	var wg sync.WaitGroup
	for w, l := range workers {
		got[w] = make([][]uint32, ranges)
		wg.Go(func() {
			for r := range uint32(ranges) {
				c, err := l.Claim(t.Context(), "race", "loop", r*500, 500, time.Minute, nil)
				if err != nil {
					t.Error(err)
					return
				}
				got[w][r] = c
			}
		})
	}
	wg.Wait()
	for r := range ranges {
		a, b := len(got[0][r]), len(got[1][r])
		if (a == 500) == (b == 500) || a+b != 500 {
			t.Errorf("range %d: A claimed %d, B claimed %d; want exactly one with all 500", r, a, b)
		}
	}
}

// TestLedgerLeaseExpiry: a process that stalls holding a range loses it when the lease runs
// out; what it finished before stays, and so does what it finishes after losing the lease,
// alongside what the new holder (another process) finishes.
func TestLedgerLeaseExpiry(t *testing.T) {
	e := newEnv(t, nil)
	clock := conformance.NewClock()
	a, b := newLedger(t, e, clock.Now), newLedger(t, e, clock.Now)
	ctx := t.Context()
	const lease = 300 * time.Millisecond
	if _, err := a.Claim(ctx, "c1", "A", 0, 10, lease, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Finish(ctx, "c1", "A", sender.RecipientAccepted, []uint32{0, 1}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(lease) // A stalls past its lease
	got, err := b.Claim(ctx, "c1", "B", 0, 10, time.Minute, nil)
	if err != nil || !slices.Equal(got, span(2, 10)) {
		t.Fatalf("B after A's lease ran out: %v, %v; want 2..9", got, err)
	}
	// A's renew says it lost the lease.
	if err := a.Renew(ctx, "c1", "A", 0, 10, lease); err == nil {
		t.Fatal("A's Renew after B took the range: no error")
	}
	// A wakes up and records one more; B records others. Neither loses the other's bits.
	if err := a.Finish(ctx, "c1", "A", sender.RecipientAccepted, []uint32{2}); err != nil {
		t.Fatal(err)
	}
	if err := b.Finish(ctx, "c1", "B", sender.RecipientFailed, []uint32{3, 4}); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(ctx, "c1", "B", span(5, 10)); err != nil {
		t.Fatal(err)
	}
	got, err = a.Claim(ctx, "c1", "A", 0, 10, time.Minute, nil)
	if err != nil || !slices.Equal(got, span(5, 10)) {
		t.Fatalf("claim after both: %v, %v; want 5..9", got, err)
	}
	if c, err := a.Counts(ctx, "c1"); err != nil || c != (sender.LedgerCounts{Accepted: 3, Failed: 2}) {
		t.Fatalf("Counts = %+v, %v", c, err)
	}
}

// TestLedgerConcurrentFinish: the loops of one process finish parts of the same ranges at
// once, and another process finishes recipients of ranges it never claimed; the
// version-checked writes lose nothing, and the leases drop.
func TestLedgerConcurrentFinish(t *testing.T) {
	e := newEnv(t, nil)
	a, b := newLedger(t, e, nil), newLedger(t, e, nil)
	const ranges, size = 4, 200
	for r := range uint32(ranges) {
		if got, err := a.Claim(t.Context(), "c1", "A", r*size, size, time.Minute, nil); err != nil || len(got) != size {
			t.Fatalf("claim %d: %d, %v", r, len(got), err)
		}
	}
	var wg sync.WaitGroup
	for part := range uint32(5) {
		wg.Go(func() {
			for r := range uint32(ranges) {
				lo := r*size + part*size/5
				rs := span(lo, lo+size/5)
				state := sender.RecipientAccepted
				if part == 4 {
					state = sender.RecipientRejected
				}
				if err := a.Finish(t.Context(), "c1", "A", state, rs); err != nil {
					t.Error(err)
				}
			}
		})
	}
	// Another process records a few as failed meanwhile: a final state wins whenever it
	// lands, a failed one only where nothing final came first.
	wg.Go(func() {
		if err := b.Finish(t.Context(), "c1", "B", sender.RecipientFailed, []uint32{5, 205, 405, 605}); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	c, err := b.Counts(t.Context(), "c1")
	if err != nil || c.Accepted != ranges*size*4/5 || c.Rejected != ranges*size/5 || c.Failed != 0 {
		t.Fatalf("Counts = %+v, %v; want %d accepted, %d rejected", c, err, ranges*size*4/5, ranges*size/5)
	}
	for r := range uint32(ranges) {
		if got, err := b.Claim(t.Context(), "c1", "B", r*size, size, time.Minute, nil); err != nil || len(got) != 0 {
			t.Errorf("range %d after all finished: %d claimed, %v", r, len(got), err)
		}
		if err := a.Renew(t.Context(), "c1", "A", r*size, size, time.Minute); err == nil {
			t.Errorf("range %d: A still holds a lease on a finished range", r)
		}
	}
}

// TestLedgerOldItems: items written before the rejected and failed bitmaps existed read as
// none rejected or failed, and take the new states.
func TestLedgerOldItems(t *testing.T) {
	e := newEnv(t, nil)
	l := newLedger(t, e, nil)
	_, err := e.client.PutItem(t.Context(), &awsdynamodb.PutItemInput{
		TableName: aws.String(e.tables.Ledger),
		Item: map[string]types.AttributeValue{
			"campaign": &types.AttributeValueMemberS{Value: "old"},
			"start":    &types.AttributeValueMemberN{Value: "0"},
			"n":        &types.AttributeValueMemberN{Value: "10"},
			"done":     &types.AttributeValueMemberB{Value: []byte{0x0f, 0x00}}, // 0..3 done
			"ver":      &types.AttributeValueMemberN{Value: "7"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.Claim(t.Context(), "old", "A", 0, 10, time.Minute, nil)
	if err != nil || !slices.Equal(got, span(4, 10)) {
		t.Fatalf("Claim = %v, %v; want 4..9", got, err)
	}
	if err := l.Finish(t.Context(), "old", "A", sender.RecipientRejected, span(4, 6)); err != nil {
		t.Fatal(err)
	}
	if err := l.Finish(t.Context(), "old", "A", sender.RecipientFailed, span(6, 10)); err != nil {
		t.Fatal(err)
	}
	if c, err := l.Counts(t.Context(), "old"); err != nil || c != (sender.LedgerCounts{Accepted: 4, Rejected: 2, Failed: 4}) {
		t.Fatalf("Counts = %+v, %v; want 4 accepted, 2 rejected, 4 failed", c, err)
	}
	// An item without the repeated bitmap takes it too.
	if err := l.Finish(t.Context(), "old", "B", sender.RecipientAccepted, span(2, 5)); err != nil {
		t.Fatal(err)
	}
	if c, err := l.Counts(t.Context(), "old"); err != nil || c != (sender.LedgerCounts{Accepted: 4, Rejected: 2, Failed: 4, Repeated: 2}) {
		t.Fatalf("Counts = %+v, %v; want 4 accepted (2 of them repeated), 2 rejected, 4 failed", c, err)
	}
}

// TestLedgerLostAnswerIsNoRepeat: a Finish write that took effect but whose answer was lost
// is retried by the SDK and fails its version check; the ledger finds its own write in the
// item and does not apply it again, which would mark every recipient of it repeated.
func TestLedgerLostAnswerIsNoRepeat(t *testing.T) {
	lost := &lostAnswers{marker: `"#w"`}
	lost.left.Store(1)
	e := newEnv(t, lost)
	l := newLedger(t, e, nil)
	if got, err := l.Claim(t.Context(), "c", "A", 0, 20, time.Minute, nil); err != nil || len(got) != 20 {
		t.Fatalf("Claim = %v, %v", got, err)
	}
	if err := l.Finish(t.Context(), "c", "A", sender.RecipientAccepted, span(0, 10)); err != nil {
		t.Fatal(err)
	}
	if lost.left.Load() >= 0 {
		t.Fatal("no answer was lost: the test did not run its case")
	}
	if c, err := l.Counts(t.Context(), "c"); err != nil || c != (sender.LedgerCounts{Accepted: 10}) {
		t.Fatalf("Counts = %+v, %v; want 10 accepted, none repeated", c, err)
	}
	// A real second acceptance still counts.
	if err := l.Finish(t.Context(), "c", "B", sender.RecipientAccepted, span(5, 15)); err != nil {
		t.Fatal(err)
	}
	if c, err := l.Counts(t.Context(), "c"); err != nil || c != (sender.LedgerCounts{Accepted: 15, Repeated: 5}) {
		t.Fatalf("Counts = %+v, %v; want 15 accepted, 5 repeated", c, err)
	}
}
