package sender

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	p := RetryPolicy{Base: 100 * time.Millisecond, Max: 2 * time.Second}
	tests := []struct {
		name       string
		attempt    int
		retryAfter time.Duration
		lo, hi     time.Duration // the wait falls in [lo, hi]
	}{
		// The first wait is half to all of Base.
		{"first", 1, 0, 50 * time.Millisecond, 100 * time.Millisecond},
		// Each try doubles the ceiling.
		{"third", 3, 0, 200 * time.Millisecond, 400 * time.Millisecond},
		// The ceiling stops at Max, however many tries.
		{"capped", 30, 0, time.Second, 2 * time.Second},
		// Shifts that would overflow stay at Max.
		{"huge attempt", 1 << 20, 0, time.Second, 2 * time.Second},
		// Retry-After wins when it is longer, even past Max.
		{"retry-after", 1, 7 * time.Second, 7 * time.Second, 7 * time.Second},
		// A shorter Retry-After does not shorten the backoff.
		{"short retry-after", 3, time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, tt := range tests {
		for range 200 {
			if d := p.Backoff(tt.attempt, tt.retryAfter, r); d < tt.lo || d > tt.hi {
				t.Fatalf("%s: wait %v outside [%v, %v]", tt.name, d, tt.lo, tt.hi)
			}
		}
	}
	// The zero policy takes its defaults.
	if d := (RetryPolicy{}).Backoff(1, 0, r); d < 50*time.Millisecond || d > 100*time.Millisecond {
		t.Fatalf("default first wait %v", d)
	}
}

func TestDeliveryDeadline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		spec CampaignSpec
		want time.Duration
	}{
		// Nothing said: the default.
		{"default", CampaignSpec{}, DefaultDeliveryDeadline},
		// A TTL shorter than the default bounds it: past the TTL the provider drops it anyway.
		{"short ttl", CampaignSpec{TTLSeconds: 60}, time.Minute},
		// A longer TTL leaves the default.
		{"long ttl", CampaignSpec{TTLSeconds: 86400}, DefaultDeliveryDeadline},
		// An explicit deadline wins.
		{"explicit", CampaignSpec{TTLSeconds: 86400, DeliveryDeadlineSeconds: 3600}, time.Hour},
	}
	for _, tt := range tests {
		if got := tt.spec.DeliveryDeadline(); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
