package dynamodb_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/salvopush/salvo/sender/dynamodb"
)

func newLedger(t *testing.T, e env, owner string) *dynamodb.Ledger {
	t.Helper()
	l, err := dynamodb.NewLedger(e.client, e.tables.Ledger, dynamodb.LedgerOptions{Owner: owner})
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

// TestLedgerSemantics plays one range [100, 110) through claim, done, release and re-claim
// by two workers A and B.
func TestLedgerSemantics(t *testing.T) {
	e := newEnv(t, nil)
	a, b := newLedger(t, e, "A"), newLedger(t, e, "B")
	ctx := t.Context()
	const lease = time.Minute
	steps := []struct {
		name string
		run  func() ([]uint32, error)
		want []uint32 // recipients claimed (for claims)
	}{
		// A takes the free range: all ten recipients.
		{"A claims", func() ([]uint32, error) { return a.Claim(ctx, "c1", 100, 10, lease, nil) }, span(100, 110)},
		// B finds it leased: nothing.
		{"B blocked", func() ([]uint32, error) { return b.Claim(ctx, "c1", 100, 10, lease, nil) }, nil},
		// A re-claims its own range (a redelivered message): renews, same recipients.
		{"A renews", func() ([]uint32, error) { return a.Claim(ctx, "c1", 100, 10, lease, nil) }, span(100, 110)},
		// A finishes six; four remain claimed, so the lease stays.
		{"A done 6", func() ([]uint32, error) { return nil, a.Done(ctx, "c1", span(100, 106)) }, nil},
		{"B still blocked", func() ([]uint32, error) { return b.Claim(ctx, "c1", 100, 10, lease, nil) }, nil},
		// A gives the last four back: the lease drops.
		{"A releases 4", func() ([]uint32, error) { return nil, a.Release(ctx, "c1", span(106, 110)) }, nil},
		// B now gets only what is not done.
		{"B claims rest", func() ([]uint32, error) { return b.Claim(ctx, "c1", 100, 10, lease, nil) }, span(106, 110)},
		// B finishes them: the range is all done and its lease gone.
		{"B done", func() ([]uint32, error) { return nil, b.Done(ctx, "c1", span(106, 110)) }, nil},
		// A later claim (a late duplicate message) finds nothing to do.
		{"A after all done", func() ([]uint32, error) { return a.Claim(ctx, "c1", 100, 10, lease, nil) }, nil},
		// Another campaign's range with the same start is independent.
		{"other campaign", func() ([]uint32, error) { return b.Claim(ctx, "c2", 100, 3, lease, nil) }, span(100, 103)},
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
}

func TestLedgerMisuse(t *testing.T) {
	e := newEnv(t, nil)
	a := newLedger(t, e, "A")
	ctx := t.Context()
	if _, err := a.Claim(ctx, "c1", 0, 8, time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		run  func() error
	}{
		// The same start with another size: callers must claim the same ranges.
		{"different n", func() error { _, err := a.Claim(ctx, "c1", 0, 9, time.Minute, nil); return err }},
		// Done for a recipient in no range claimed here.
		{"done unclaimed", func() error { return a.Done(ctx, "c1", []uint32{8}) }},
		// Release likewise.
		{"release unclaimed", func() error { return a.Release(ctx, "c9", []uint32{0}) }},
		// A zero-sized range.
		{"empty range", func() error { _, err := a.Claim(ctx, "c1", 0, 0, time.Minute, nil); return err }},
	}
	for _, tt := range tests {
		if err := tt.run(); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
	// The misuse left A's claim of [0, 8) and its lease intact.
	if got, err := newLedger(t, e, "B").Claim(ctx, "c1", 0, 8, time.Minute, nil); err != nil || len(got) != 0 {
		t.Errorf("B claimed %v, %v from A's range", got, err)
	}
	if err := a.Done(ctx, "c1", span(0, 8)); err != nil {
		t.Errorf("A's Done after the misuse: %v", err)
	}
}

// TestLedgerClaimRace has two workers claim the same ranges at the same moment, over and
// over: each range goes to exactly one of them.
func TestLedgerClaimRace(t *testing.T) {
	e := newEnv(t, nil)
	workers := []*dynamodb.Ledger{newLedger(t, e, "A"), newLedger(t, e, "B")}
	const ranges = 20
	got := make([][][]uint32, len(workers)) // worker -> range -> claimed
	var wg sync.WaitGroup
	for w, l := range workers {
		got[w] = make([][]uint32, ranges)
		wg.Go(func() {
			for r := range uint32(ranges) {
				c, err := l.Claim(t.Context(), "race", r*500, 500, time.Minute, nil)
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

// TestLedgerLeaseExpiry: a worker that dies holding a range loses it when the lease runs
// out; what it marked done before stays done, even when it marks more after losing the lease.
func TestLedgerLeaseExpiry(t *testing.T) {
	e := newEnv(t, nil)
	a, b := newLedger(t, e, "A"), newLedger(t, e, "B")
	ctx := t.Context()
	if _, err := a.Claim(ctx, "c1", 0, 10, 300*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Done(ctx, "c1", []uint32{0, 1}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // A stalls past its lease
	got, err := b.Claim(ctx, "c1", 0, 10, time.Minute, nil)
	if err != nil || !slices.Equal(got, span(2, 10)) {
		t.Fatalf("B after A's lease ran out: %v, %v; want 2..9", got, err)
	}
	// A wakes up and records one more; B records others. Neither loses the other's bits.
	if err := a.Done(ctx, "c1", []uint32{2}); err != nil {
		t.Fatal(err)
	}
	if err := b.Done(ctx, "c1", []uint32{3, 4}); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(ctx, "c1", span(5, 10)); err != nil {
		t.Fatal(err)
	}
	got, err = a.Claim(ctx, "c1", 0, 10, time.Minute, nil)
	if err != nil || !slices.Equal(got, span(5, 10)) {
		t.Fatalf("claim after both: %v, %v; want 5..9", got, err)
	}
}

// TestLedgerConcurrentDone: one worker finishes many ranges from many goroutines (as a send
// worker does); afterwards nothing is left to claim and no lease is held.
func TestLedgerConcurrentDone(t *testing.T) {
	e := newEnv(t, nil)
	a, b := newLedger(t, e, "A"), newLedger(t, e, "B")
	const ranges = 12
	var wg sync.WaitGroup
	for r := range uint32(ranges) {
		wg.Go(func() {
			got, err := a.Claim(t.Context(), "c1", r*250, 250, time.Minute, nil)
			if err != nil {
				t.Error(err)
				return
			}
			// Accepted in two halves, as results come back.
			half := len(got) / 2
			if err := a.Done(t.Context(), "c1", got[:half]); err != nil {
				t.Error(err)
			}
			if err := a.Done(t.Context(), "c1", got[half:]); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for r := range uint32(ranges) {
		if got, err := b.Claim(t.Context(), "c1", r*250, 250, time.Minute, nil); err != nil || len(got) != 0 {
			t.Errorf("range %d after all done: %d claimed, %v", r, len(got), err)
		}
	}
}

// TestLedgerRemaining counts what is not done in a range, whoever holds it.
func TestLedgerRemaining(t *testing.T) {
	e := newEnv(t, nil)
	a := newLedger(t, e, "A")
	ctx := t.Context()
	remaining := func(start, n uint32) int {
		t.Helper()
		left, err := a.Remaining(ctx, "r1", start, n)
		if err != nil {
			t.Fatal(err)
		}
		return left
	}
	// A range never claimed counts whole.
	if got := remaining(0, 10); got != 10 {
		t.Fatalf("unclaimed: %d, want 10", got)
	}
	if _, err := a.Claim(ctx, "r1", 0, 10, time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	// Claimed but not done still counts.
	if got := remaining(0, 10); got != 10 {
		t.Fatalf("claimed: %d, want 10", got)
	}
	if err := a.Done(ctx, "r1", span(0, 7)); err != nil {
		t.Fatal(err)
	}
	if got := remaining(0, 10); got != 3 {
		t.Fatalf("seven done: %d, want 3", got)
	}
}
