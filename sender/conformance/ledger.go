package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/salvopush/salvo/sender"
)

// NewLedger returns an empty ledger for one test, whose leases follow clock. The suite
// uses campaign IDs unique to each subtest, so ledgers may share storage.
type NewLedger func(t *testing.T, clock func() time.Time) sender.Ledger

// lease is the suite's lease; only the suite's clock moves it.
const lease = 10 * time.Second

// ledgerCase is one behaviour of sender.Ledger.
type ledgerCase struct {
	name string
	run  func(t *testing.T, l *ledgerUnderTest)
}

// ledgerUnderTest wraps a ledger with the subtest's campaign, clock and fatal checks.
type ledgerUnderTest struct {
	t        *testing.T
	l        sender.Ledger
	clock    *Clock
	campaign string
}

func (lt *ledgerUnderTest) claim(owner string, start, n uint32) []uint32 {
	lt.t.Helper()
	got, err := lt.l.Claim(lt.t.Context(), lt.campaign, owner, start, n, lease, nil)
	if err != nil {
		lt.t.Fatalf("Claim(%s, %d, %d): %v", owner, start, n, err)
	}
	return got
}

func (lt *ledgerUnderTest) wantClaim(owner string, start, n uint32, want []uint32) {
	lt.t.Helper()
	if got := lt.claim(owner, start, n); !slices.Equal(got, want) {
		lt.t.Fatalf("Claim by %s of [%d, +%d) = %v, want %v", owner, start, n, got, want)
	}
}

func (lt *ledgerUnderTest) finish(owner string, state sender.RecipientState, rs []uint32) {
	lt.t.Helper()
	if err := lt.l.Finish(lt.t.Context(), lt.campaign, owner, state, rs); err != nil {
		lt.t.Fatalf("Finish(%s, %v, %v): %v", owner, state, rs, err)
	}
}

func (lt *ledgerUnderTest) release(owner string, rs []uint32) {
	lt.t.Helper()
	if err := lt.l.Release(lt.t.Context(), lt.campaign, owner, rs); err != nil {
		lt.t.Fatalf("Release(%s, %v): %v", owner, rs, err)
	}
}

func (lt *ledgerUnderTest) renew(owner string, start, n uint32) error {
	lt.t.Helper()
	err := lt.l.Renew(lt.t.Context(), lt.campaign, owner, start, n, lease)
	if err != nil && !errors.Is(err, sender.ErrLeaseLost) {
		lt.t.Fatalf("Renew(%s, %d, %d): %v, want nil or ErrLeaseLost", owner, start, n, err)
	}
	return err
}

func (lt *ledgerUnderTest) wantCounts(want sender.LedgerCounts) {
	lt.t.Helper()
	got, err := lt.l.Counts(lt.t.Context(), lt.campaign)
	if err != nil || got != want {
		lt.t.Fatalf("Counts = %+v, %v; want %+v", got, err, want)
	}
}

func (lt *ledgerUnderTest) wantRemaining(start, n uint32, want int) {
	lt.t.Helper()
	got, err := lt.l.Remaining(lt.t.Context(), lt.campaign, start, n)
	if err != nil || got != want {
		lt.t.Fatalf("Remaining(%d, %d) = %d, %v; want %d", start, n, got, err, want)
	}
}

func (lt *ledgerUnderTest) redrive(start, n uint32, want int) {
	lt.t.Helper()
	got, err := lt.l.Redrive(lt.t.Context(), lt.campaign, start, n)
	if err != nil || got != want {
		lt.t.Fatalf("Redrive(%d, %d) = %d, %v; want %d", start, n, got, err, want)
	}
}

// span returns [lo, hi).
func span(lo, hi uint32) []uint32 {
	s := make([]uint32, 0, hi-lo)
	for r := lo; r < hi; r++ {
		s = append(s, r)
	}
	return s
}

var ledgerCases = []ledgerCase{
	// A range is handed out once: a second claim gets nothing, whoever asks, its holder
	// included (two send loops of one worker are two owners, and one loop given the same
	// batch twice must not push it twice).
	{"second claim gets nothing", func(t *testing.T, lt *ledgerUnderTest) {
		lt.wantClaim("A", 0, 100, span(0, 100))
		lt.wantClaim("B", 0, 100, nil)
		lt.wantClaim("A", 0, 100, nil)
		lt.wantClaim("B", 100, 100, span(100, 200)) // the next range is free
	}},
	// Owners racing for the same ranges: every recipient goes to exactly one of them.
	{"racing claims", func(t *testing.T, lt *ledgerUnderTest) {
		const owners, ranges, size = 6, 8, 50
		got := make([][][]uint32, owners)
		var wg sync.WaitGroup
		for o := range owners {
			got[o] = make([][]uint32, ranges)
			wg.Go(func() {
				for r := range uint32(ranges) {
					c, err := lt.l.Claim(t.Context(), lt.campaign, fmt.Sprint("owner-", o), r*size, size, lease, nil)
					if err != nil {
						t.Error(err)
						return
					}
					got[o][r] = c
				}
			})
		}
		wg.Wait()
		for r := range ranges {
			var all []uint32
			for o := range owners {
				all = append(all, got[o][r]...)
			}
			slices.Sort(all)
			if want := span(uint32(r*size), uint32((r+1)*size)); !slices.Equal(all, want) {
				t.Errorf("range %d: owners together got %v, want each of %v once", r, all, want)
			}
		}
	}},
	// A lease holds until it runs out, not a moment less; then the range is claimable again
	// (what is not finished of it).
	{"expiry", func(t *testing.T, lt *ledgerUnderTest) {
		lt.wantClaim("A", 0, 20, span(0, 20))
		lt.finish("A", sender.RecipientAccepted, span(0, 5))
		lt.clock.Advance(lease - time.Millisecond)
		lt.wantClaim("B", 0, 20, nil)
		lt.clock.Advance(time.Millisecond)
		lt.wantClaim("B", 0, 20, span(5, 20))
	}},
	// Renewing in time keeps the range; a renewed lease runs from the renewal.
	{"renew", func(t *testing.T, lt *ledgerUnderTest) {
		lt.wantClaim("A", 0, 20, span(0, 20))
		for range 3 {
			lt.clock.Advance(lease * 3 / 4)
			if err := lt.renew("A", 0, 20); err != nil {
				t.Fatalf("Renew in time: %v", err)
			}
		}
		lt.clock.Advance(lease * 3 / 4)
		lt.wantClaim("B", 0, 20, nil)
		lt.clock.Advance(lease / 4)
		lt.wantClaim("B", 0, 20, span(0, 20))
	}},
	// A lease that ran out is not revived by Renew, whether or not someone took it since.
	{"renew after expiry", func(t *testing.T, lt *ledgerUnderTest) {
		lt.wantClaim("A", 0, 20, span(0, 20))
		lt.clock.Advance(lease)
		if err := lt.renew("A", 0, 20); err == nil {
			t.Fatal("Renew of a lease that ran out: no error")
		}
		lt.wantClaim("B", 0, 20, span(0, 20))
		if err := lt.renew("A", 0, 20); err == nil {
			t.Fatal("Renew of a lease another owner took: no error")
		}
		if err := lt.renew("B", 0, 20); err != nil {
			t.Fatalf("the new holder's Renew: %v", err)
		}
	}},
	// Renew by someone who does not hold the range fails and does not extend the lease.
	{"renew by another owner", func(t *testing.T, lt *ledgerUnderTest) {
		lt.wantClaim("A", 0, 20, span(0, 20))
		lt.clock.Advance(lease / 2)
		if err := lt.renew("B", 0, 20); err == nil {
			t.Fatal("Renew by an owner holding nothing: no error")
		}
		lt.clock.Advance(lease / 2)
		lt.wantClaim("C", 0, 20, span(0, 20))
	}},
	// An owner that finished everything it claimed holds nothing to renew.
	{"renew after finishing", func(t *testing.T, lt *ledgerUnderTest) {
		lt.wantClaim("A", 0, 20, span(0, 20))
		lt.finish("A", sender.RecipientAccepted, span(0, 20))
		if err := lt.renew("A", 0, 20); err == nil {
			t.Fatal("Renew after finishing the whole range: no error")
		}
	}},
	// Each state is counted; none of them is claimed again, failed included.
	{"finish states", func(t *testing.T, lt *ledgerUnderTest) {
		lt.wantCounts(sender.LedgerCounts{})
		lt.wantClaim("A", 0, 40, span(0, 40))
		lt.finish("A", sender.RecipientAccepted, span(0, 10))
		lt.finish("A", sender.RecipientRejected, span(10, 20))
		lt.finish("A", sender.RecipientFailed, span(20, 30))
		lt.wantCounts(sender.LedgerCounts{Accepted: 10, Rejected: 10, Failed: 10})
		lt.clock.Advance(lease)
		lt.wantClaim("B", 0, 40, span(30, 40))
	}},
	// A final state is never overwritten; a failed one may become final.
	{"final stays final", func(t *testing.T, lt *ledgerUnderTest) {
		lt.wantClaim("A", 0, 30, span(0, 30))
		lt.finish("A", sender.RecipientAccepted, span(0, 10))
		lt.finish("A", sender.RecipientRejected, span(10, 20))
		lt.finish("A", sender.RecipientRejected, span(0, 5))
		lt.finish("A", sender.RecipientFailed, span(5, 15))
		lt.finish("A", sender.RecipientAccepted, span(10, 12))
		lt.wantCounts(sender.LedgerCounts{Accepted: 10, Rejected: 10})
		lt.finish("A", sender.RecipientFailed, span(20, 30))
		lt.finish("A", sender.RecipientFailed, span(20, 30)) // twice counts once
		lt.finish("A", sender.RecipientAccepted, span(20, 25))
		lt.wantCounts(sender.LedgerCounts{Accepted: 15, Rejected: 10, Failed: 5})
	}},
	// What an owner finishes after its lease ran out is recorded (the push was made), and
	// the new holder's Finish of the same recipients does not count them twice.
	{"finish after losing the lease", func(t *testing.T, lt *ledgerUnderTest) {
		lt.wantClaim("A", 0, 10, span(0, 10))
		lt.clock.Advance(lease)
		lt.wantClaim("B", 0, 10, span(0, 10))
		lt.finish("A", sender.RecipientAccepted, span(0, 4))
		lt.finish("B", sender.RecipientAccepted, span(0, 10))
		// Both pushed 0..3 and both were accepted: four recipients accepted twice.
		lt.wantCounts(sender.LedgerCounts{Accepted: 10, Repeated: 4})
		lt.clock.Advance(lease)
		lt.wantClaim("C", 0, 10, nil)
	}},
	// A recipient recorded accepted again is repeated, once however often; a rejection or a
	// failure after acceptance is not a repeat (nobody got a second notification), nor is an
	// acceptance after a rejection or a failure.
	{"repeated acceptances", func(t *testing.T, lt *ledgerUnderTest) {
		lt.wantClaim("A", 0, 30, span(0, 30))
		lt.finish("A", sender.RecipientAccepted, span(0, 10))
		lt.finish("A", sender.RecipientRejected, span(10, 20))
		lt.finish("A", sender.RecipientFailed, span(20, 30))
		lt.wantCounts(sender.LedgerCounts{Accepted: 10, Rejected: 10, Failed: 10})
		lt.finish("B", sender.RecipientAccepted, span(0, 3))
		lt.finish("A", sender.RecipientAccepted, span(2, 5))
		lt.finish("C", sender.RecipientAccepted, span(0, 5))
		lt.wantCounts(sender.LedgerCounts{Accepted: 10, Rejected: 10, Failed: 10, Repeated: 5})
		lt.finish("B", sender.RecipientRejected, span(5, 8))
		lt.finish("B", sender.RecipientFailed, span(8, 10))
		lt.finish("B", sender.RecipientAccepted, span(10, 12))
		lt.finish("B", sender.RecipientAccepted, span(20, 22))
		lt.wantCounts(sender.LedgerCounts{Accepted: 12, Rejected: 10, Failed: 8, Repeated: 5})
		lt.finish("B", sender.RecipientAccepted, span(20, 22))
		lt.wantCounts(sender.LedgerCounts{Accepted: 12, Rejected: 10, Failed: 8, Repeated: 7})
	}},
	// Another owner's Finish of a held range counts, and the holder carries on.
	{"finish by another owner", func(t *testing.T, lt *ledgerUnderTest) {
		lt.wantClaim("A", 0, 10, span(0, 10))
		lt.finish("B", sender.RecipientRejected, span(0, 3))
		lt.finish("A", sender.RecipientAccepted, span(0, 10))
		lt.wantCounts(sender.LedgerCounts{Accepted: 7, Rejected: 3})
	}},
	// Remaining counts what is neither final nor failed, held or not.
	{"remaining", func(t *testing.T, lt *ledgerUnderTest) {
		lt.wantRemaining(0, 50, 50)
		lt.wantClaim("A", 0, 50, span(0, 50))
		lt.wantRemaining(0, 50, 50)
		lt.finish("A", sender.RecipientAccepted, span(0, 10))
		lt.finish("A", sender.RecipientRejected, span(10, 15))
		lt.finish("A", sender.RecipientFailed, span(15, 20))
		lt.wantRemaining(0, 50, 30)
		lt.redrive(0, 50, 5)
		lt.wantRemaining(0, 50, 35)
		lt.wantRemaining(50, 50, 50) // a range never claimed counts whole
	}},
	// Redrive makes the failed recipients pending, once; the final ones stay.
	{"redrive once", func(t *testing.T, lt *ledgerUnderTest) {
		lt.wantClaim("A", 0, 20, span(0, 20))
		lt.finish("A", sender.RecipientAccepted, span(10, 20))
		lt.finish("A", sender.RecipientFailed, span(0, 10))
		lt.wantClaim("B", 0, 20, nil)
		lt.redrive(0, 20, 10)
		lt.redrive(0, 20, 0)
		lt.wantCounts(sender.LedgerCounts{Accepted: 10})
		lt.wantClaim("B", 0, 20, span(0, 10))
	}},
	// Redrive takes any range: across batch ranges, or part of one.
	{"redrive across ranges", func(t *testing.T, lt *ledgerUnderTest) {
		for r := uint32(0); r < 3; r++ {
			lt.wantClaim("A", r*10, 10, span(r*10, r*10+10))
			lt.finish("A", sender.RecipientFailed, span(r*10, r*10+10))
		}
		lt.redrive(5, 20, 20)
		lt.wantCounts(sender.LedgerCounts{Failed: 10})
		lt.wantClaim("B", 0, 10, span(5, 10))
		lt.wantClaim("B", 10, 10, span(10, 20))
		lt.wantClaim("B", 20, 10, span(20, 25))
		lt.redrive(5, 20, 0)
	}},
	// Released recipients are claimable again (once their owner released or finished all
	// it held in the range); a Release by someone who does not hold them changes nothing.
	{"release", func(t *testing.T, lt *ledgerUnderTest) {
		lt.wantClaim("A", 0, 10, span(0, 10))
		lt.release("B", span(0, 10))
		lt.wantClaim("C", 0, 10, nil)
		lt.finish("A", sender.RecipientAccepted, span(0, 4))
		lt.release("A", span(4, 10))
		lt.wantClaim("B", 0, 10, span(4, 10))
		lt.release("A", span(4, 10)) // A no longer holds them: B keeps them
		lt.wantClaim("C", 0, 10, nil)
	}},
	// Campaigns are independent; an unknown campaign counts zero and has everything left.
	{"campaigns", func(t *testing.T, lt *ledgerUnderTest) {
		other := lt.campaign + "-other"
		lt.wantClaim("A", 0, 10, span(0, 10))
		lt.finish("A", sender.RecipientAccepted, span(0, 10))
		got, err := lt.l.Claim(t.Context(), other, "A", 0, 10, lease, nil)
		if err != nil || !slices.Equal(got, span(0, 10)) {
			t.Fatalf("Claim of another campaign = %v, %v", got, err)
		}
		if c, err := lt.l.Counts(t.Context(), other); err != nil || c != (sender.LedgerCounts{}) {
			t.Fatalf("Counts of another campaign = %+v, %v", c, err)
		}
		if left, err := lt.l.Remaining(t.Context(), lt.campaign+"-never", 0, 7); err != nil || left != 7 {
			t.Fatalf("Remaining of an unknown campaign = %d, %v", left, err)
		}
	}},
	// Claim appends to dst, in ascending order.
	{"claim appends", func(t *testing.T, lt *ledgerUnderTest) {
		got, err := lt.l.Claim(t.Context(), lt.campaign, "A", 3, 4, lease, []uint32{99})
		if err != nil || !slices.Equal(got, []uint32{99, 3, 4, 5, 6}) {
			t.Fatalf("Claim = %v, %v; want [99 3 4 5 6]", got, err)
		}
	}},
	// A cancelled context is an error, not a silent empty claim.
	{"cancelled", func(t *testing.T, lt *ledgerUnderTest) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := lt.l.Claim(ctx, lt.campaign, "A", 0, 10, lease, nil); err == nil {
			t.Fatal("Claim with a cancelled context: no error")
		}
		lt.wantClaim("A", 0, 10, span(0, 10))
	}},
}

// Ledger runs the sender.Ledger suite against ledgers from newLedger, each behaviour in its
// own parallel subtest with its own ledger and clock.
func Ledger(t *testing.T, newLedger NewLedger) {
	for _, c := range ledgerCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			clk := NewClock()
			c.run(t, &ledgerUnderTest{t: t, l: newLedger(t, clk.Now), clock: clk, campaign: name(t)})
		})
	}
}
