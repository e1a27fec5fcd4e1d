package sender

import (
	"context"
	"sync"
	"testing"
	"time"
)

// slowLedger is a ledger whose Renew holds each call until keeperParallel calls are in
// flight together (or a bound that only keeps a broken keeper from hanging the test), and
// remembers the most it saw at once.
type slowLedger struct {
	Ledger   // only Renew is called
	mu       sync.Mutex
	inFlight int
	most     int
	full     chan struct{}
	closed   bool
}

func (l *slowLedger) Renew(ctx context.Context, _, _ string, _, _ uint32, _ time.Duration) error {
	l.mu.Lock()
	l.inFlight++
	l.most = max(l.most, l.inFlight)
	if l.inFlight == keeperParallel && !l.closed {
		l.closed = true
		close(l.full)
	}
	l.mu.Unlock()
	select {
	case <-l.full:
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
	}
	l.mu.Lock()
	l.inFlight--
	l.mu.Unlock()
	return nil
}

// TestKeeperRenewsInParallel: with a batch held per send loop and a slow ledger, the keeper
// has keeperParallel renewals in flight at once, never more; one after the other, a round
// would outlast the leases it renews.
func TestKeeperRenewsInParallel(t *testing.T) {
	t.Parallel()
	led := &slowLedger{full: make(chan struct{})}
	w := &Worker{cfg: WorkerConfig{Ledger: led, Batches: nopQueue{}, Renew: time.Millisecond, Lease: time.Minute,
		Visibility: time.Minute}.withDefaults(), kept: map[*sendJob]kept{}}
	for i := range 2 * keeperParallel {
		w.keep(&sendJob{msg: Message{Receipt: "r"}, bm: BatchMessage{Campaign: "c", Start: uint32(i) * 10, Count: 10}}, "w/0")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.keeper(ctx) }()
	select {
	case <-led.full:
	case <-time.After(time.Minute): // only keeps a sequential keeper from hanging the test
	}
	cancel()
	<-done
	led.mu.Lock()
	defer led.mu.Unlock()
	if led.most != keeperParallel {
		t.Fatalf("at most %d renewals at once, want %d", led.most, keeperParallel)
	}
}
