package sender

import (
	"context"
	"math/rand/v2"
	"time"
)

// RetryPolicy is exponential backoff with full jitter, honouring Retry-After.
type RetryPolicy struct {
	Attempts int           // total tries per notification (default 6)
	Base     time.Duration // first backoff (default 100ms)
	Max      time.Duration // backoff cap (default 5s)
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts <= 0 {
		p.Attempts = 6
	}
	if p.Base <= 0 {
		p.Base = 100 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 5 * time.Second
	}
	return p
}

// Backoff returns the wait before try attempt+1 (attempt counts from 1), at least
// retryAfter.
func (p RetryPolicy) Backoff(attempt int, retryAfter time.Duration, r *rand.Rand) time.Duration {
	p = p.withDefaults()
	ceil := p.Base << min(attempt-1, 20)
	if ceil > p.Max || ceil <= 0 {
		ceil = p.Max
	}
	d := ceil/2 + time.Duration(r.Int64N(int64(ceil/2)+1))
	return max(d, retryAfter)
}

// sleepCtx sleeps for d or until ctx is done; it reports whether the full sleep happened.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
