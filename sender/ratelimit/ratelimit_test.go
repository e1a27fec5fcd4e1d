package ratelimit

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/salvopush/salvo/sender"
)

// clock is a virtual clock: sleeping advances it.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }
func (c *clock) sleep(_ context.Context, d time.Duration) bool {
	if d > 0 {
		c.t = c.t.Add(d)
	}
	return true
}

// recorder accepts every push and notes when each went out on the virtual clock.
type recorder struct {
	c   *clock
	at  []time.Time
	err error
}

func (r *recorder) Send(_ context.Context, b *sender.Batch) error {
	if r.err != nil {
		return r.err
	}
	for i := range b.Tokens {
		r.at = append(r.at, r.c.t)
		b.Results[i] = sender.Result{Outcome: sender.Accepted, At: r.c.t}
	}
	return nil
}
func (r *recorder) Close() error { return nil }

func newVirtual(t *testing.T, cfg Config) (*Transport, *clock, *recorder) {
	t.Helper()
	c := &clock{t: time.Unix(1_000_000, 0)}
	rec := &recorder{c: c}
	l, err := New(rec, cfg)
	if err != nil {
		t.Fatal(err)
	}
	l.now, l.sleep = c.now, c.sleep
	return l, c, rec
}

func batch(n int) *sender.Batch {
	b := &sender.Batch{Platform: sender.PlatformAndroid, Tokens: make([][]byte, n), Results: make([]sender.Result, n)}
	for i := range b.Tokens {
		b.Tokens[i] = []byte("t")
	}
	return b
}

// peakPerSecond is the most pushes in any window [a, a+1s) starting at a push.
func peakPerSecond(at []time.Time) int {
	peak, lo := 0, 0
	for hi := range at {
		for at[hi].Sub(at[lo]) >= time.Second {
			lo++
		}
		peak = max(peak, hi-lo+1)
	}
	return peak
}

// TestCapHeldOnABacklog: a send loop that always has more to push (batches of random sizes,
// held-back pushes retried at once) never gets more than rate + burst pushes into any one
// second, gets close to the rate over ten seconds, and never waits more than MaxWait in a
// Send. The clock is virtual: the test measures the schedule, not the machine.
func TestCapHeldOnABacklog(t *testing.T) {
	t.Parallel()
	for _, rate := range []float64{7, 100, 2000} {
		l, c, rec := newVirtual(t, Config{PerSecond: rate})
		rng := rand.New(rand.NewPCG(1, uint64(rate)))
		end := c.t.Add(10 * time.Second)
		for c.t.Before(end) {
			b := batch(1 + rng.IntN(50))
			before := c.t
			if err := l.Send(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			if waited := c.t.Sub(before); waited > DefaultMaxWait {
				t.Fatalf("rate %v: a Send waited %v, more than MaxWait", rate, waited)
			}
			for _, r := range b.Results {
				if r.Outcome == sender.Transient && r.Reason != RateLimited {
					t.Fatalf("rate %v: unexpected result %+v", rate, r)
				}
			}
		}
		burst := max(1, int(rate/50))
		if peak := peakPerSecond(rec.at); float64(peak) > rate+float64(burst) {
			t.Errorf("rate %v: %d pushes in one second, cap %v + burst %d", rate, peak, rate, burst)
		}
		if got := float64(len(rec.at)) / 10; got < 0.95*rate {
			t.Errorf("rate %v: %.1f pushes/s over 10 s: the limiter holds back more than it must", rate, got)
		}
	}
}

// TestBucket: the bucket starts full (burst at once), then hands out a token per interval;
// a group larger than what it holds waits for the difference.
func TestBucket(t *testing.T) {
	t.Parallel()
	l, c, _ := newVirtual(t, Config{PerSecond: 100, Burst: 4})
	tests := []struct {
		advance time.Duration // virtual time passing before the take
		k       int
		wait    time.Duration // 0: taken
	}{
		{0, 4, 0},                     // full: four at once
		{0, 1, 10 * time.Millisecond}, // empty: the next token in 10 ms
		{10 * time.Millisecond, 1, 0}, // there it is
		{0, 2, 20 * time.Millisecond}, // two need 20 ms
		{time.Second, 4, 0},           // refilled, but never beyond the burst:
		{0, 1, 10 * time.Millisecond}, // empty again after four
	}
	for i, tc := range tests {
		c.t = c.t.Add(tc.advance)
		if got := l.take(tc.k); got != tc.wait {
			t.Errorf("take %d of %d after +%v: wait %v, want %v", i, tc.k, tc.advance, got, tc.wait)
		}
	}
}

// TestHeldBackAreRetriable: pushes beyond MaxWait come back Transient RateLimited with a
// RetryAfter, never pushed.
func TestHeldBackAreRetriable(t *testing.T) {
	t.Parallel()
	l, _, rec := newVirtual(t, Config{PerSecond: 10, MaxWait: 100 * time.Millisecond})
	b := batch(5)
	if err := l.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if len(rec.at) != 2 {
		t.Fatalf("%d pushed, want 2 (the bucket's one at 0 and one more at 100 ms)", len(rec.at))
	}
	for _, r := range b.Results[2:] {
		if r.Outcome != sender.Transient || r.Reason != RateLimited || r.RetryAfter <= 0 {
			t.Fatalf("held-back result %+v", r)
		}
	}
}

// TestErrors: a cancelled context or a transport that cannot try at all is an error when
// nothing was pushed; the limiter refuses a bad configuration.
func TestErrors(t *testing.T) {
	t.Parallel()
	l, _, rec := newVirtual(t, Config{PerSecond: 10})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Send(ctx, batch(1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send with a cancelled context = %v", err)
	}
	rec.err = errors.New("closed")
	if err := l.Send(context.Background(), batch(1)); err == nil {
		t.Fatal("the wrapped transport's error was lost")
	}
	for _, cfg := range []Config{{}, {PerSecond: -1}, {PerSecond: 1, MaxWait: -1}, {PerSecond: 1, Burst: -1}} {
		if _, err := New(rec, cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
