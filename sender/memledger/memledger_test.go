package memledger

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// span returns [lo, hi) as a slice.
func span(lo, hi uint32) []uint32 {
	var s []uint32
	for r := lo; r < hi; r++ {
		s = append(s, r)
	}
	return s
}

func cat(parts ...[]uint32) []uint32 { return slices.Concat(parts...) }

// TestLedger replays sequences of ledger calls on a fake clock; each step's Claim must
// return exactly want.
func TestLedger(t *testing.T) {
	t.Parallel()
	const lease = time.Minute
	type step struct {
		advance  time.Duration // clock moves first
		done     []uint32      // then Done
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
		// Done recipients are never claimed again, even after every lease ran out.
		{"done is final", []step{
			{start: 0, n: 50, want: span(0, 50)},
			{done: span(0, 40), advance: time.Hour, start: 0, n: 50, want: span(40, 50)},
			{advance: time.Hour, done: span(40, 50), start: 0, n: 50, want: nil},
		}},
		// Released recipients can be claimed at once; done ones stay done.
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
		// A word (24 recipients) keeps the latest lease of its claims: the expired claim on
		// 0..9 waits for the live one on 10..19 to run out too.
		{"shared word", []step{
			{start: 0, n: 10, want: span(0, 10)},
			{advance: 30 * time.Second, start: 10, n: 10, want: span(10, 20)},
			{advance: 31 * time.Second, start: 0, n: 20, want: nil},
			{advance: 29 * time.Second, start: 0, n: 20, want: span(0, 20)},
		}},
		// Releasing the live claim of a shared word frees its own recipients; the expired
		// ones still wait for the word's deadline.
		{"shared word released", []step{
			{start: 0, n: 10, want: span(0, 10)},
			{advance: 30 * time.Second, start: 10, n: 10, want: span(10, 20)},
			{advance: 31 * time.Second, release: span(10, 20), start: 0, n: 10, want: nil},
			{advance: 29 * time.Second, start: 0, n: 20, want: span(0, 20)},
		}},
		// Once every claim of a word is finished or released, its deadline is gone.
		{"word emptied", []step{
			{start: 0, n: 10, want: span(0, 10)},
			{advance: 30 * time.Second, start: 10, n: 10, want: span(10, 20)},
			{advance: 31 * time.Second, release: span(0, 10), done: span(10, 20), start: 0, n: 20, want: span(0, 10)},
		}},
		// Done on recipients never claimed or beyond any claim grows the campaign.
		{"done unclaimed", []step{
			{done: []uint32{1_000_000, 3}, start: 0, n: 5, want: []uint32{0, 1, 2, 4}},
			{start: 999_999, n: 3, want: []uint32{999_999, 1_000_001}},
		}},
		// Unsorted and repeated recipients are fine.
		{"unsorted", []step{
			{start: 0, n: 60, want: span(0, 60)},
			{done: []uint32{50, 2, 2, 49, 1, 30}, release: []uint32{59, 0, 0}, start: 0, n: 60, want: []uint32{0, 59}},
		}},
		// The last recipient index is reachable.
		{"top of range", []step{
			{start: 1<<32 - 3, n: 3, want: []uint32{1<<32 - 3, 1<<32 - 2, 1<<32 - 1}},
		}},
		// An empty range claims nothing.
		{"empty range", []step{{start: 5, n: 0, want: nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clock := newFakeClock()
			l := NewWithClock(clock.Now)
			for i, st := range tt.steps {
				clock.Advance(st.advance)
				if err := l.Done(ctx, "c", st.done); err != nil {
					t.Fatal(err)
				}
				if err := l.Release(ctx, "c", st.release); err != nil {
					t.Fatal(err)
				}
				got, err := l.Claim(ctx, "c", st.start, st.n, lease, nil)
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
		got, err := l.Claim(tt.ctx, "c", tt.start, tt.n, tt.lease, dst)
		if err == nil || !slices.Equal(got, dst) {
			t.Errorf("%s: Claim = %v, %v; want an error and dst unchanged", tt.name, got, err)
		}
	}
}

func TestClaimAppendsToDst(t *testing.T) {
	t.Parallel()
	l := New()
	got, err := l.Claim(context.Background(), "c", 3, 2, time.Minute, []uint32{99})
	if err != nil || !slices.Equal(got, []uint32{99, 3, 4}) {
		t.Fatalf("Claim = %v, %v; want [99 3 4]", got, err)
	}
}

func TestCampaignsAreIndependent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := New()
	l.Reserve("a", 1000)
	if _, err := l.Claim(ctx, "a", 0, 10, time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Done(ctx, "a", span(0, 5)); err != nil {
		t.Fatal(err)
	}
	got, _ := l.Claim(ctx, "b", 0, 10, time.Minute, nil)
	if !slices.Equal(got, span(0, 10)) {
		t.Fatalf("campaign b Claim = %v, want all 10", got)
	}
	tests := []struct {
		campaign string
		want     Counts
	}{
		// a: 5 done, 5 still claimed.
		{"a", Counts{Done: 5, Claimed: 5}},
		// b: 10 claimed.
		{"b", Counts{Claimed: 10}},
	}
	for _, tt := range tests {
		if got, err := l.Counts(tt.campaign); err != nil || got != tt.want {
			t.Errorf("Counts(%s) = %+v, %v; want %+v", tt.campaign, got, err, tt.want)
		}
	}
	l.Forget("a")
	if _, err := l.Counts("a"); !errors.Is(err, ErrUnknownCampaign) {
		t.Fatalf("Counts after Forget = %v, want ErrUnknownCampaign", err)
	}
	// Release of an unknown campaign is a no-op.
	if err := l.Release(ctx, "nope", []uint32{1}); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentClaims has goroutines claim random overlapping ranges with long leases and
// finish or release what they got, while the campaign grows under them. No recipient is ever
// held by two goroutines, and none is claimed after it was done.
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
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			var got []uint32
			for range rounds {
				start := rng.Uint32N(size - 600)
				n := 1 + rng.Uint32N(600)
				var err error
				got, err = l.Claim(ctx, "c", start, n, time.Hour, got[:0])
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
						errs <- fmt.Errorf("recipient %d claimed after Done", r)
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
				if err := l.Done(ctx, "c", got[:half]); err != nil {
					errs <- err
					return
				}
				if err := l.Release(ctx, "c", got[half:]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Every recipient marked done in the test is done in the ledger; nothing is claimed.
	want := 0
	for i := range done {
		if done[i].Load() {
			want++
		}
	}
	if got, err := l.Counts("c"); err != nil || got.Done != want || got.Claimed != 0 {
		t.Fatalf("Counts = %+v, %v; want %d done, 0 claimed", got, err, want)
	}
}

// TestConcurrentExpiry has claimers take one small range whose leases keep expiring as a
// clock moves in sub-millisecond steps: no recipient is handed out before its lease ends.
func TestConcurrentExpiry(t *testing.T) {
	t.Parallel()
	const goroutines, rounds, size = 6, 2000, 100
	ctx := context.Background()
	clock := newFakeClock()
	l := NewWithClock(clock.Now)
	// holder[r] is the deadline (clock nanos) of the live claim on r, 0 if none.
	var mu sync.Mutex
	holder := make([]int64, size)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
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
				got, err = l.Claim(ctx, "c", start, 30, 50*time.Millisecond, got[:0])
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
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkClaimDone claims 500-recipient ranges in order and finishes them, as a send
// worker does per batch.
func BenchmarkClaimDone(b *testing.B) {
	const batch, campaignSize = 500, 1 << 22
	ctx := context.Background()
	l := New()
	campaign, n := 0, uint32(0)
	name := "c0"
	l.Reserve(name, campaignSize)
	var ids []uint32
	b.ReportAllocs()
	for b.Loop() {
		if n+batch > campaignSize {
			b.StopTimer()
			l.Forget(name)
			campaign++
			name, n = fmt.Sprintf("c%d", campaign), 0
			l.Reserve(name, campaignSize)
			b.StartTimer()
		}
		var err error
		ids, err = l.Claim(ctx, name, n, batch, time.Minute, ids[:0])
		if err != nil || len(ids) != batch {
			b.Fatalf("Claim = %d recipients, %v", len(ids), err)
		}
		if err := l.Done(ctx, name, ids); err != nil {
			b.Fatal(err)
		}
		n += batch
	}
}

// BenchmarkClaimDoneParallel has every goroutine claim and finish 500-recipient ranges of
// its own campaigns.
func BenchmarkClaimDoneParallel(b *testing.B) {
	const batch, campaignSize = 500, 1 << 22
	ctx := context.Background()
	l := New()
	var goroutines atomic.Int32
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		g := goroutines.Add(1)
		var ids []uint32
		campaign, n := 0, uint32(0)
		name := fmt.Sprintf("g%d-c0", g)
		for pb.Next() {
			if n+batch > campaignSize {
				l.Forget(name)
				campaign++
				name, n = fmt.Sprintf("g%d-c%d", g, campaign), 0
			}
			var err error
			ids, err = l.Claim(ctx, name, n, batch, time.Minute, ids[:0])
			if err != nil || len(ids) != batch {
				b.Errorf("Claim = %d recipients, %v", len(ids), err)
				return
			}
			if err := l.Done(ctx, name, ids); err != nil {
				b.Error(err)
				return
			}
			n += batch
		}
	})
}

func TestRemaining(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := New()
	tests := []struct {
		name  string
		act   func()
		start uint32
		n     uint32
		want  int
	}{
		// A campaign never seen has everything left.
		{"unknown", func() {}, 0, 100, 100},
		// Claims do not finish anything.
		{"claimed", func() { _, _ = l.Claim(ctx, "c", 0, 100, time.Minute, nil) }, 0, 100, 100},
		// Done recipients leave the count, across word boundaries.
		{"some done", func() { _ = l.Done(ctx, "c", []uint32{0, 23, 24, 25, 99}) }, 0, 100, 95},
		// A sub-range counts only its own.
		{"sub-range", func() {}, 20, 10, 7},
		// Everything done.
		{"all done", func() {
			all := make([]uint32, 100)
			for i := range all {
				all[i] = uint32(i)
			}
			_ = l.Done(ctx, "c", all)
		}, 0, 100, 0},
	}
	for _, tt := range tests {
		tt.act()
		campaign := "c"
		if tt.name == "unknown" {
			campaign = "other"
		}
		got, err := l.Remaining(ctx, campaign, tt.start, tt.n)
		if err != nil || got != tt.want {
			t.Errorf("%s: Remaining = %d, %v; want %d", tt.name, got, err, tt.want)
		}
	}
}
