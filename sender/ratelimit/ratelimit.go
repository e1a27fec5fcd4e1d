// Package ratelimit caps how many pushes a transport makes per second: a sender.Transport
// wrapper in the send path, one token bucket per wrapped transport (per provider). It is
// the rate rail of game-day rehearsals (`salvo gameday` "rate_per_second", `salvo worker
// --rate-per-second`).
//
// The limiter is a token bucket that holds Burst pushes and refills at PerSecond: a group
// of pushes goes out only when the bucket has a token for each, checked when the group is
// handed to the wrapped transport, so any one-second window holds at most PerSecond + Burst
// pushes however late the scheduler wakes a sender (Burst defaults to a fiftieth of the
// rate: within 2% of the cap, plus one). A Send pushes its batch in groups of at most Burst.
// It never waits longer than MaxWait in all: the pushes it could not send by then are
// answered Transient with Reason RateLimited and a RetryAfter, so the send loop retries them
// through its ordinary backoff, where it also sees an abort. The time between an abort and
// the last push is thus bounded by MaxWait plus one push, however low the rate.
//
// Usage:
//
//	limited, err := ratelimit.New(apnsTransport, ratelimit.Config{PerSecond: 500})
//	if err != nil {
//		return err
//	}
//	defer limited.Close() // closes the wrapped transport too
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/salvopush/salvo/sender"
)

// RateLimited is the Reason of the Transient results of pushes the limiter held back (never
// sent): they are retried after RetryAfter.
const RateLimited = "RateLimited (local rate cap)"

// DefaultMaxWait is Config.MaxWait's default.
const DefaultMaxWait = 250 * time.Millisecond

// Config configures a limiter.
type Config struct {
	// PerSecond is the most pushes per second; it must be above 0.
	PerSecond float64
	// MaxWait bounds how long one Send waits for its turn (default DefaultMaxWait).
	MaxWait time.Duration
	// Burst is the bucket's size: the most pushes sent at one instant (default PerSecond/50,
	// at least 1).
	Burst int
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case !(c.PerSecond > 0) || math.IsInf(c.PerSecond, 0):
		return fmt.Errorf("ratelimit: PerSecond: %v: must be above 0", c.PerSecond)
	case c.MaxWait < 0:
		return fmt.Errorf("ratelimit: MaxWait: %v is negative", c.MaxWait)
	case c.Burst < 0:
		return fmt.Errorf("ratelimit: Burst: %d is negative", c.Burst)
	}
	return nil
}

// Transport is a rate-limited sender.Transport. It is safe for concurrent use.
type Transport struct {
	inner    sender.Transport
	interval time.Duration // between two pushes
	maxWait  time.Duration
	burst    int

	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) bool

	mu  sync.Mutex
	tat time.Time // when the bucket will be full again: its whole state (GCRA)
}

var _ sender.Transport = (*Transport)(nil)

// New wraps inner; closing the result closes inner.
func New(inner sender.Transport, cfg Config) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if inner == nil {
		return nil, errors.New("ratelimit: no transport to wrap")
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.Burst == 0 {
		cfg.Burst = max(1, int(cfg.PerSecond/50))
	}
	interval := time.Duration(float64(time.Second) / cfg.PerSecond)
	if interval <= 0 {
		interval = 1
	}
	return &Transport{inner: inner, interval: interval, maxWait: cfg.MaxWait, burst: cfg.Burst,
		now: time.Now, sleep: sleepCtx}, nil
}

// Wrap wraps every transport of set with its own limiter of cfg (a cap per provider). With
// cfg.PerSecond 0 it returns set as it is.
func Wrap(set map[sender.Platform]sender.Transport, cfg Config) (map[sender.Platform]sender.Transport, error) {
	if cfg.PerSecond == 0 {
		return set, nil
	}
	out := make(map[sender.Platform]sender.Transport, len(set))
	for p, t := range set {
		l, err := New(t, cfg)
		if err != nil {
			return nil, err
		}
		out[p] = l
	}
	return out, nil
}

// take takes k tokens (k <= burst) if the bucket holds them now and returns 0, or returns
// how long until it will.
func (t *Transport) take(k int) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	full := t.tat
	if full.Before(now) {
		full = now
	}
	// The bucket holds burst - (full-now)/interval tokens.
	if wait := full.Add(time.Duration(k-t.burst) * t.interval).Sub(now); wait > 0 {
		return wait
	}
	t.tat = full.Add(time.Duration(k) * t.interval)
	return 0
}

// Send pushes b in groups of at most Burst as the bucket allows, for at most MaxWait, and
// answers the rest Transient RateLimited (see the package doc). It returns an error only
// when nothing was pushed: the wrapped transport's, or the context's.
func (t *Transport) Send(ctx context.Context, b *sender.Batch) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ratelimit: %w", err)
	}
	n := len(b.Tokens)
	if n == 0 {
		return t.inner.Send(ctx, b)
	}
	deadline := t.now().Add(t.maxWait)
	part := *b
	for lo := 0; lo < n; {
		hi := min(lo+t.burst, n)
		var err error
		if wait := t.take(hi - lo); wait > 0 {
			if t.now().Add(wait).After(deadline) {
				// Held back, never sent: retried once the bucket has refilled for them.
				held := sender.Result{Outcome: sender.Transient, Reason: RateLimited,
					RetryAfter: wait + time.Duration(n-hi)*t.interval, At: t.now()}
				for i := lo; i < n; i++ {
					b.Results[i] = held
				}
				return nil
			}
			if t.sleep(ctx, wait) {
				continue
			}
			err = fmt.Errorf("ratelimit: %w", ctx.Err())
		} else {
			part.Tokens, part.Results = b.Tokens[lo:hi], b.Results[lo:hi]
			err = t.inner.Send(ctx, &part)
		}
		if err == nil {
			lo = hi
			continue
		}
		if lo == 0 {
			return err // nothing pushed: the send loop treats the batch as not tried
		}
		// Some pushes went out and have their answers: the rest failed transiently.
		failed := sender.Result{Outcome: sender.Transient, Reason: "ratelimit: " + err.Error(), At: t.now()}
		for i := lo; i < n; i++ {
			b.Results[i] = failed
		}
		return nil
	}
	return nil
}

// Close closes the wrapped transport.
func (t *Transport) Close() error { return t.inner.Close() }

// sleepCtx sleeps for d or until ctx ends; it reports whether the full sleep happened.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}
