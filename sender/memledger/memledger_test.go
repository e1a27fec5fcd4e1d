package memledger

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/conformance"
)

// span returns [lo, hi) as a slice.
func span(lo, hi uint32) []uint32 {
	var s []uint32
	for r := lo; r < hi; r++ {
		s = append(s, r)
	}
	return s
}

func cat(parts ...[]uint32) []uint32 { return slices.Concat(parts...) }

// stateOf reads recipient r's state straight from the words: 0 when pending or claimed.
func stateOf(l *Ledger, campaign string, r uint32) sender.RecipientState {
	c := l.campaign(campaign, false)
	if c == nil {
		return 0
	}
	ws := words{c: c}
	_, states := ws.at(uint64(r) / wordBits)
	if states == nil {
		return 0
	}
	acc, rej, fail := planes(states.Load())
	bit := uint32(1) << (r % wordBits)
	switch {
	case acc&bit != 0:
		return sender.RecipientAccepted
	case rej&bit != 0:
		return sender.RecipientRejected
	case fail&bit != 0:
		return sender.RecipientFailed
	}
	return 0
}

// scanCounts counts states by reading every word, to check the counters Counts reads.
func scanCounts(l *Ledger, campaign string) sender.LedgerCounts {
	var out sender.LedgerCounts
	c := l.campaign(campaign, false)
	if c == nil {
		return out
	}
	dir := c.chunks()
	for j := range dir {
		if ch := dir[j].Load(); ch != nil {
			for i := range ch.states {
				acc, rej, fail := planes(ch.states[i].Load())
				out.Accepted += int64(bits.OnesCount32(acc))
				out.Rejected += int64(bits.OnesCount32(rej))
				out.Failed += int64(bits.OnesCount32(fail))
				out.Repeated += int64(bits.OnesCount32(repeatedPlane(ch.states[i].Load())))
			}
		}
	}
	return out
}

// TestWords replays sequences of one owner's calls on a fake clock, for what words of 16
// recipients with one deadline each mean; each step's Claim must return exactly want.
func TestWords(t *testing.T) {
	t.Parallel()
	const lease = time.Minute
	type step struct {
		advance  time.Duration // clock moves first
		done     []uint32      // then Finish accepted
		release  []uint32      // then Release
		start, n uint32        // then Claim [start, start+n) for lease
		want     []uint32
	}
	tests := []struct {
		name  string
		steps []step
	}{
		// A fresh range is claimed whole; a second claim gets nothing.
		{"claim once", []step{
			{start: 0, n: 100, want: span(0, 100)},
			{start: 0, n: 100, want: nil},
		}},
		// Overlapping ranges split: only the part not yet claimed comes back.
		{"overlap", []step{
			{start: 10, n: 20, want: span(10, 30)},
			{start: 0, n: 50, want: cat(span(0, 10), span(30, 50))},
		}},
		// Finished recipients are never claimed again, even after every lease ran out.
		{"final", []step{
			{start: 0, n: 50, want: span(0, 50)},
			{done: span(0, 40), advance: time.Hour, start: 0, n: 50, want: span(40, 50)},
			{advance: time.Hour, done: span(40, 50), start: 0, n: 50, want: nil},
		}},
		// Released recipients can be claimed at once; finished ones stay finished.
		{"release", []step{
			{start: 0, n: 30, want: span(0, 30)},
			{done: span(0, 5), release: span(0, 20), start: 0, n: 30, want: span(5, 20)},
		}},
		// A claim holds until its lease runs out, then the range is free again.
		{"lease expiry", []step{
			{start: 0, n: 48, want: span(0, 48)},
			{advance: lease - time.Millisecond, start: 0, n: 48, want: nil},
			{advance: time.Millisecond, start: 0, n: 48, want: span(0, 48)},
		}},
		// Leases are rounded up to the millisecond, never down: a claim made 0.9 ms into a
		// millisecond still holds 0.1 ms before its full lease.
		{"lease rounding", []step{
			{advance: 900 * time.Microsecond, start: 0, n: 10, want: span(0, 10)},
			{advance: lease - 100*time.Microsecond, start: 0, n: 10, want: nil},
			{advance: 100 * time.Microsecond, start: 0, n: 10, want: nil},
			{advance: 100 * time.Microsecond, start: 0, n: 10, want: span(0, 10)},
		}},
		// A word (16 recipients) keeps the latest lease of its claims: the expired claim on
		// 0..7 waits for the live one on 8..15 to run out too.
		{"shared word", []step{
			{start: 0, n: 8, want: span(0, 8)},
			{advance: 30 * time.Second, start: 8, n: 8, want: span(8, 16)},
			{advance: 31 * time.Second, start: 0, n: 16, want: nil},
			{advance: 29 * time.Second, start: 0, n: 16, want: span(0, 16)},
		}},
		// Releasing the live claim of a shared word frees its own recipients; the expired
		// ones still wait for the word's deadline.
		{"shared word released", []step{
			{start: 0, n: 8, want: span(0, 8)},
			{advance: 30 * time.Second, start: 8, n: 8, want: span(8, 16)},
			{advance: 31 * time.Second, release: span(8, 16), start: 0, n: 8, want: nil},
			{advance: 29 * time.Second, start: 0, n: 16, want: span(0, 16)},
		}},
		// Once every claim of a word is finished or released, its deadline is gone.
		{"word emptied", []step{
			{start: 0, n: 8, want: span(0, 8)},
			{advance: 30 * time.Second, start: 8, n: 8, want: span(8, 16)},
			{advance: 31 * time.Second, release: span(0, 8), done: span(8, 16), start: 0, n: 16, want: span(0, 8)},
		}},
		// Finishing recipients never claimed, or beyond any claim, grows the campaign.
		{"finish unclaimed", []step{
			{done: []uint32{1_000_000, 3}, start: 0, n: 5, want: []uint32{0, 1, 2, 4}},
			{start: 999_999, n: 3, want: []uint32{999_999, 1_000_001}},
		}},
		// Unsorted and repeated recipients are fine.
		{"unsorted", []step{
			{start: 0, n: 60, want: span(0, 60)},
			{done: []uint32{50, 2, 2, 49, 1, 30}, release: []uint32{59, 0, 0}, start: 0, n: 60, want: []uint32{0, 59}},
		}},
		// The last recipient index is reachable, and a run ending there does not wrap.
		{"top of range", []step{
			{done: []uint32{1<<32 - 1, 0}, start: 1<<32 - 3, n: 3, want: []uint32{1<<32 - 3, 1<<32 - 2}},
			{start: 0, n: 2, want: []uint32{1}},
		}},
		// An empty range claims nothing.
		{"empty range", []step{{start: 5, n: 0, want: nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clock := conformance.NewClock()
			l := NewWithClock(clock.Now)
			for i, st := range tt.steps {
				clock.Advance(st.advance)
				if err := l.Finish(ctx, "c", "o", sender.RecipientAccepted, st.done); err != nil {
					t.Fatal(err)
				}
				if err := l.Release(ctx, "c", "o", st.release); err != nil {
					t.Fatal(err)
				}
				got, err := l.Claim(ctx, "c", "o", st.start, st.n, lease, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, st.want) {
					t.Fatalf("step %d: Claim(%d, %d) = %v, want %v", i, st.start, st.n, got, st.want)
				}
			}
		})
	}
}

// TestOwnerTags plays the owner checks the package documentation promises: each step is one
// call by one owner; claims return want, other calls fail with wantErr (nil: succeed).
func TestOwnerTags(t *testing.T) {
	t.Parallel()
	const lease = time.Minute
	type step struct {
		advance  time.Duration
		op       string // claim, renew, release, accepted, failed, redrive
		owner    string
		start, n uint32   // claim, renew, redrive
		rs       []uint32 // release, accepted, failed
		want     []uint32 // claim
		wantErr  error
	}
	tests := []struct {
		name  string
		steps []step
	}{
		// B cannot give back what A holds: C still finds the range taken.
		{"release by another owner", []step{
			{op: "claim", owner: "A", start: 0, n: 32, want: span(0, 32)},
			{op: "release", owner: "B", rs: span(0, 32)},
			{op: "claim", owner: "C", start: 0, n: 32, want: nil},
			{op: "release", owner: "A", rs: span(0, 32)},
			{op: "claim", owner: "C", start: 0, n: 32, want: span(0, 32)},
		}},
		// B's Renew of A's range is refused and does not extend A's lease.
		{"renew by another owner", []step{
			{op: "claim", owner: "A", start: 0, n: 32, want: span(0, 32)},
			{advance: lease / 2, op: "renew", owner: "B", start: 0, n: 32, wantErr: sender.ErrLeaseLost},
			{advance: lease / 2, op: "claim", owner: "B", start: 0, n: 32, want: span(0, 32)},
		}},
		// A's lease ran out and B took the range: A's Renew says so, and A's Release does
		// not free B's claims.
		{"taken over", []step{
			{op: "claim", owner: "A", start: 0, n: 32, want: span(0, 32)},
			{advance: lease, op: "claim", owner: "B", start: 0, n: 32, want: span(0, 32)},
			{op: "renew", owner: "A", start: 0, n: 32, wantErr: sender.ErrLeaseLost},
			{op: "release", owner: "A", rs: span(0, 32)},
			{op: "claim", owner: "C", start: 0, n: 32, want: nil},
		}},
		// A's lease ran out and nobody took it: Renew does not revive it.
		{"ran out", []step{
			{op: "claim", owner: "A", start: 0, n: 32, want: span(0, 32)},
			{advance: lease, op: "renew", owner: "A", start: 0, n: 32, wantErr: sender.ErrLeaseLost},
			{op: "claim", owner: "B", start: 0, n: 32, want: span(0, 32)},
		}},
		// A renews in time, again and again: nobody else gets in.
		{"renewed", []step{
			{op: "claim", owner: "A", start: 0, n: 32, want: span(0, 32)},
			{advance: lease - time.Millisecond, op: "renew", owner: "A", start: 0, n: 32},
			{advance: lease - time.Millisecond, op: "renew", owner: "A", start: 0, n: 32},
			{advance: lease - time.Millisecond, op: "claim", owner: "B", start: 0, n: 32, want: nil},
		}},
		// A holds nothing any more: Renew says the lease is lost.
		{"renew after finishing", []step{
			{op: "claim", owner: "A", start: 0, n: 20, want: span(0, 20)},
			{op: "accepted", owner: "A", rs: span(0, 20)},
			{op: "renew", owner: "A", start: 0, n: 20, wantErr: sender.ErrLeaseLost},
		}},
		// Partial holding: A holds 16..31 of [0, 32) while B holds 0..15 (a word of its
		// own); A's Renew renews its own and ignores B's word.
		{"partial", []step{
			{op: "claim", owner: "B", start: 0, n: 16, want: span(0, 16)},
			{op: "claim", owner: "A", start: 0, n: 32, want: span(16, 32)},
			{op: "renew", owner: "A", start: 0, n: 32},
		}},
		// A word holding two owners' claims cannot tell them apart: B may give back A's.
		{"shared word", []step{
			{op: "claim", owner: "A", start: 0, n: 8, want: span(0, 8)},
			{op: "claim", owner: "B", start: 8, n: 8, want: span(8, 16)},
			{op: "release", owner: "B", rs: span(0, 8)},
			{op: "claim", owner: "C", start: 0, n: 16, want: span(0, 8)},
		}},
		// A final Finish by B drops A's claims: nobody can push them again anyway.
		{"final by another owner", []step{
			{op: "claim", owner: "A", start: 0, n: 32, want: span(0, 32)},
			{op: "accepted", owner: "B", rs: span(0, 32)},
			{op: "renew", owner: "A", start: 0, n: 32, wantErr: sender.ErrLeaseLost},
		}},
		// A failed Finish by B leaves A's claims: after a Redrive, C still waits for A.
		{"failed by another owner", []step{
			{op: "claim", owner: "A", start: 0, n: 32, want: span(0, 32)},
			{op: "failed", owner: "B", rs: span(0, 32)},
			{op: "redrive", start: 0, n: 32},
			{op: "claim", owner: "C", start: 0, n: 32, want: nil},
			{advance: lease, op: "claim", owner: "C", start: 0, n: 32, want: span(0, 32)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clock := conformance.NewClock()
			l := NewWithClock(clock.Now)
			for i, st := range tt.steps {
				clock.Advance(st.advance)
				var got []uint32
				var err error
				switch st.op {
				case "claim":
					got, err = l.Claim(ctx, "c", st.owner, st.start, st.n, lease, nil)
				case "renew":
					err = l.Renew(ctx, "c", st.owner, st.start, st.n, lease)
				case "release":
					err = l.Release(ctx, "c", st.owner, st.rs)
				case "accepted":
					err = l.Finish(ctx, "c", st.owner, sender.RecipientAccepted, st.rs)
				case "failed":
					err = l.Finish(ctx, "c", st.owner, sender.RecipientFailed, st.rs)
				case "redrive":
					_, err = l.Redrive(ctx, "c", st.start, st.n)
				}
				if !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
					t.Fatalf("step %d (%s by %s): error %v, want %v", i, st.op, st.owner, err, st.wantErr)
				}
				if !slices.Equal(got, st.want) {
					t.Fatalf("step %d (%s by %s): got %v, want %v", i, st.op, st.owner, got, st.want)
				}
			}
		})
	}
}

// TestManyOwners: owners past the last tag still get exclusive claims; they lose only the
// holder checks, as documented.
func TestManyOwners(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := New()
	for i := range maxTag + 10 {
		if _, err := l.Claim(ctx, "warm", fmt.Sprintf("o%d", i), uint32(i)*16, 16, time.Minute, nil); err != nil {
			t.Fatal(err)
		}
	}
	late1, late2 := "late-1", "late-2"
	if got, _ := l.Claim(ctx, "c", late1, 0, 16, time.Minute, nil); !slices.Equal(got, span(0, 16)) {
		t.Fatalf("first late owner claimed %v", got)
	}
	if got, _ := l.Claim(ctx, "c", late2, 0, 16, time.Minute, nil); len(got) != 0 {
		t.Fatalf("second late owner claimed %v of a held range", got)
	}
	// Unverifiable: the second late owner may give the first one's claims back.
	if err := l.Release(ctx, "c", late2, span(0, 16)); err != nil {
		t.Fatal(err)
	}
	if got := l.Held("c"); got != 0 {
		t.Fatalf("Held = %d after the release, want 0", got)
	}
}

func TestClaimErrors(t *testing.T) {
	t.Parallel()
	l := New()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name     string
		ctx      context.Context
		start, n uint32
		lease    time.Duration
	}{
		// A claim must last some time.
		{"zero lease", context.Background(), 0, 10, 0},
		// Ranges end at the last uint32 index.
		{"past the end", context.Background(), 1<<32 - 5, 10, time.Minute},
		// A cancelled ctx is honoured.
		{"cancelled", cancelled, 0, 10, time.Minute},
	}
	for _, tt := range tests {
		dst := []uint32{7}
		got, err := l.Claim(tt.ctx, "c", "o", tt.start, tt.n, tt.lease, dst)
		if err == nil || !slices.Equal(got, dst) {
			t.Errorf("%s: Claim = %v, %v; want an error and dst unchanged", tt.name, got, err)
		}
	}
	// An unknown state is refused.
	if err := l.Finish(context.Background(), "c", "o", 0, []uint32{1}); err == nil {
		t.Error("Finish with state 0: no error")
	}
}

func TestClaimAppendsToDst(t *testing.T) {
	t.Parallel()
	l := New()
	got, err := l.Claim(context.Background(), "c", "o", 3, 2, time.Minute, []uint32{99})
	if err != nil || !slices.Equal(got, []uint32{99, 3, 4}) {
		t.Fatalf("Claim = %v, %v; want [99 3 4]", got, err)
	}
}

func TestCampaignsAreIndependent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := New()
	l.Reserve("a", 1000)
	if _, err := l.Claim(ctx, "a", "o", 0, 10, time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Finish(ctx, "a", "o", sender.RecipientAccepted, span(0, 5)); err != nil {
		t.Fatal(err)
	}
	got, _ := l.Claim(ctx, "b", "o", 0, 10, time.Minute, nil)
	if !slices.Equal(got, span(0, 10)) {
		t.Fatalf("campaign b Claim = %v, want all 10", got)
	}
	tests := []struct {
		campaign string
		accepted int64
		held     int
	}{
		// a: 5 accepted, 5 still claimed.
		{"a", 5, 5},
		// b: 10 claimed.
		{"b", 0, 10},
	}
	for _, tt := range tests {
		c, err := l.Counts(ctx, tt.campaign)
		if err != nil || c.Accepted != tt.accepted || l.Held(tt.campaign) != tt.held {
			t.Errorf("%s: Counts = %+v, %v, Held = %d; want %d accepted, %d held", tt.campaign, c, err, l.Held(tt.campaign), tt.accepted, tt.held)
		}
	}
	if err := l.Forget(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if c, err := l.Counts(ctx, "a"); err != nil || c != (sender.LedgerCounts{}) {
		t.Fatalf("Counts after Forget = %+v, %v; want zero", c, err)
	}
	// Release of an unknown campaign is a no-op.
	if err := l.Release(ctx, "nope", "o", []uint32{1}); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentClaims has goroutines, each its own owner, claim random overlapping ranges
// with long leases and finish or release what they got, while the campaign grows under
// them. No recipient is ever held by two goroutines, and none is claimed after it was
// finished.
func TestConcurrentClaims(t *testing.T) {
	t.Parallel()
	const (
		goroutines = 8
		rounds     = 400
		size       = 200_000 // spans several chunks, grown by the claims themselves
	)
	ctx := context.Background()
	l := New()
	owner := make([]atomic.Int32, size) // 0: nobody; g+1: goroutine g holds it
	done := make([]atomic.Bool, size)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			name := fmt.Sprintf("g%d", g)
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			var got []uint32
			for range rounds {
				start := rng.Uint32N(size - 600)
				n := 1 + rng.Uint32N(600)
				var err error
				got, err = l.Claim(ctx, "c", name, start, n, time.Hour, got[:0])
				if err != nil {
					errs <- err
					return
				}
				for _, r := range got {
					if r < start || r >= start+n {
						errs <- fmt.Errorf("claim [%d, %d) returned %d", start, start+n, r)
						return
					}
					if done[r].Load() {
						errs <- fmt.Errorf("recipient %d claimed after Finish", r)
						return
					}
					if !owner[r].CompareAndSwap(0, int32(g+1)) {
						errs <- fmt.Errorf("recipient %d claimed by %d and %d", r, owner[r].Load()-1, g)
						return
					}
				}
				// Finish half, give the rest back; ownership ends before the ledger call.
				half := len(got) / 2
				for _, r := range got[:half] {
					done[r].Store(true)
					owner[r].Store(0)
				}
				for _, r := range got[half:] {
					owner[r].Store(0)
				}
				if err := l.Finish(ctx, "c", name, sender.RecipientAccepted, got[:half]); err != nil {
					errs <- err
					return
				}
				if err := l.Release(ctx, "c", name, got[half:]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Every recipient finished in the test is accepted in the ledger; nothing is claimed.
	var want int64
	for i := range done {
		if done[i].Load() {
			want++
		}
	}
	c, err := l.Counts(ctx, "c")
	if err != nil || c.Accepted != want || l.Held("c") != 0 {
		t.Fatalf("Counts = %+v, %v, Held = %d; want %d accepted, 0 held", c, err, l.Held("c"), want)
	}
}

// TestConcurrentFinishStates has goroutines finish random recipients in random states at
// once: a recipient that got any final Finish is final exactly once (accepted or rejected,
// whichever came first), one that only got failed ones is failed, and the counters Counts
// reads agree with the states in the words.
func TestConcurrentFinishStates(t *testing.T) {
	t.Parallel()
	const goroutines, rounds, size = 6, 600, 5000
	ctx := context.Background()
	l := New()
	var final, failed [size]atomic.Bool
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 3))
			var rs []uint32
			for range rounds {
				state := sender.RecipientState(1 + rng.IntN(3))
				start := rng.Uint32N(size - 40)
				n := 1 + rng.Uint32N(40)
				rs = rs[:0]
				for r := start; r < start+n; r++ {
					rs = append(rs, r)
					if state == sender.RecipientFailed {
						failed[r].Store(true)
					} else {
						final[r].Store(true)
					}
				}
				if err := l.Finish(ctx, "c", fmt.Sprint(g), state, rs); err != nil {
					t.Error(err)
					return
				}
				if rng.IntN(20) == 0 { // a redrive now and then, of failed ones only
					s := rng.Uint32N(size - 100)
					for r := s; r < s+100; r++ {
						failed[r].Store(false)
					}
					if _, err := l.Redrive(ctx, "c", s, 100); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	got, err := l.Counts(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if scan := scanCounts(l, "c"); scan != got {
		t.Fatalf("Counts = %+v, but the words hold %+v", got, scan)
	}
	var wantFinal int64
	for r := range uint32(size) {
		st := stateOf(l, "c", r)
		switch {
		case final[r].Load():
			wantFinal++
			if st != sender.RecipientAccepted && st != sender.RecipientRejected {
				t.Fatalf("recipient %d got a final Finish but is %v", r, st)
			}
		case st == sender.RecipientFailed && !failed[r].Load():
			// A redrive raced with a later failed Finish: the model cleared it after the
			// ledger set it. Both orders are right; only final states are certain.
		case st != 0 && st != sender.RecipientFailed:
			t.Fatalf("recipient %d never got a final Finish but is %v", r, st)
		}
	}
	if got.Accepted+got.Rejected != wantFinal {
		t.Fatalf("accepted + rejected = %d, want %d", got.Accepted+got.Rejected, wantFinal)
	}
}

// TestConcurrentExpiry has claimers take one small range whose leases keep expiring as a
// clock moves in sub-millisecond steps: no recipient is handed out before its lease ends.
func TestConcurrentExpiry(t *testing.T) {
	t.Parallel()
	const goroutines, rounds, size = 6, 2000, 100
	ctx := context.Background()
	clock := conformance.NewClock()
	l := NewWithClock(clock.Now)
	// holder[r] is the deadline (clock nanos) of the live claim on r, 0 if none.
	var mu sync.Mutex
	holder := make([]int64, size)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 2))
			var got []uint32
			for range rounds {
				start := rng.Uint32N(size - 30)
				mu.Lock() // the clock, the claim and the check are one step against the model
				if rng.IntN(10) == 0 {
					clock.Advance(time.Duration(rng.IntN(20000)) * time.Microsecond)
				}
				before := clock.Now().UnixNano()
				var err error
				got, err = l.Claim(ctx, "c", fmt.Sprint(g), start, 30, 50*time.Millisecond, got[:0])
				for _, r := range got {
					if holder[r] > before {
						err = fmt.Errorf("recipient %d claimed while held until %d (now %d)", r, holder[r], before)
					}
					holder[r] = before + int64(50*time.Millisecond)
				}
				mu.Unlock()
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRemaining(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := New()
	tests := []struct {
		name     string
		act      func()
		campaign string
		start, n uint32
		want     int
	}{
		// A campaign never seen has everything left.
		{"unknown", func() {}, "other", 0, 100, 100},
		// Claims do not finish anything.
		{"claimed", func() { _, _ = l.Claim(ctx, "c", "o", 0, 100, time.Minute, nil) }, "c", 0, 100, 100},
		// Final recipients leave the count, across word boundaries.
		{"some final", func() {
			_ = l.Finish(ctx, "c", "o", sender.RecipientAccepted, []uint32{0, 15, 16})
			_ = l.Finish(ctx, "c", "o", sender.RecipientRejected, []uint32{17, 99})
		}, "c", 0, 100, 95},
		// Failed ones too.
		{"failed", func() { _ = l.Finish(ctx, "c", "o", sender.RecipientFailed, []uint32{50}) }, "c", 0, 100, 94},
		// A sub-range counts only its own.
		{"sub-range", func() {}, "c", 10, 10, 7},
		// A redriven one counts again.
		{"redriven", func() { _, _ = l.Redrive(ctx, "c", 0, 100) }, "c", 0, 100, 95},
		// Everything final.
		{"all final", func() { _ = l.Finish(ctx, "c", "o", sender.RecipientAccepted, span(0, 100)) }, "c", 0, 100, 0},
	}
	for _, tt := range tests {
		tt.act()
		got, err := l.Remaining(ctx, tt.campaign, tt.start, tt.n)
		if err != nil || got != tt.want {
			t.Errorf("%s: Remaining = %d, %v; want %d", tt.name, got, err, tt.want)
		}
	}
}

// benchClaimFinish claims 500-recipient ranges in order and finishes each in chunks of
// chunk recipients, as a send loop does per batch; one op is one batch.
func benchClaimFinish(b *testing.B, l *Ledger, chunk int) {
	const batch, campaignSize = 500, 1 << 22
	ctx := context.Background()
	campaign, n := 0, uint32(0)
	name := "c0"
	l.Reserve(name, campaignSize)
	var ids []uint32
	b.ReportAllocs()
	for b.Loop() {
		if n+batch > campaignSize {
			b.StopTimer()
			if err := l.Forget(ctx, name); err != nil {
				b.Fatal(err)
			}
			campaign++
			name, n = fmt.Sprintf("c%d", campaign), 0
			l.Reserve(name, campaignSize)
			b.StartTimer()
		}
		var err error
		ids, err = l.Claim(ctx, name, "loop-0", n, batch, time.Minute, ids[:0])
		if err != nil || len(ids) != batch {
			b.Fatalf("Claim = %d recipients, %v", len(ids), err)
		}
		for lo := 0; lo < len(ids); lo += chunk {
			if err := l.Finish(ctx, name, "loop-0", sender.RecipientAccepted, ids[lo:min(lo+chunk, len(ids))]); err != nil {
				b.Fatal(err)
			}
		}
		n += batch
	}
}

// BenchmarkClaimFinish: one batch of 500 claimed and finished at once.
func BenchmarkClaimFinish(b *testing.B) { benchClaimFinish(b, New(), 500) }

// BenchmarkClaimFinishChunks: one batch of 500 claimed, finished in ten chunks of 50 (the
// send loop's shape).
func BenchmarkClaimFinishChunks(b *testing.B) { benchClaimFinish(b, New(), 50) }

// BenchmarkClaimFinishParallel has every goroutine claim and finish 500-recipient ranges of
// its own campaigns, in chunks of 50.
func BenchmarkClaimFinishParallel(b *testing.B) {
	const batch, chunk, campaignSize = 500, 50, 1 << 22
	ctx := context.Background()
	l := New()
	var goroutines atomic.Int32
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		g := goroutines.Add(1)
		owner := fmt.Sprintf("loop-%d", g)
		var ids []uint32
		campaign, n := 0, uint32(0)
		name := fmt.Sprintf("g%d-c0", g)
		for pb.Next() {
			if n+batch > campaignSize {
				if err := l.Forget(ctx, name); err != nil {
					b.Error(err)
					return
				}
				campaign++
				name, n = fmt.Sprintf("g%d-c%d", g, campaign), 0
			}
			var err error
			ids, err = l.Claim(ctx, name, owner, n, batch, time.Minute, ids[:0])
			if err != nil || len(ids) != batch {
				b.Errorf("Claim = %d recipients, %v", len(ids), err)
				return
			}
			for lo := 0; lo < len(ids); lo += chunk {
				if err := l.Finish(ctx, name, owner, sender.RecipientAccepted, ids[lo:lo+chunk]); err != nil {
					b.Error(err)
					return
				}
			}
			n += batch
		}
	})
}
