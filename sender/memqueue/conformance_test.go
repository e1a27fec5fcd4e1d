package memqueue_test

import (
	"sync"
	"testing"
	"time"

	"github.com/salvopush/salvo/sender/conformance"
	"github.com/salvopush/salvo/sender/memqueue"
)

// TestConformance runs the sender.Queue suite on queues whose visibility timeouts and
// deduplication windows follow a fake clock.
func TestConformance(t *testing.T) {
	t.Parallel()
	conformance.Queue(t, func(t *testing.T, fifo bool) conformance.QueueUnderTest {
		var mu sync.Mutex
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		clock := func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return now
		}
		q, err := memqueue.New(memqueue.Config{FIFO: fifo, VisibilityTimeout: 30 * time.Second, Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = q.Close() })
		return conformance.QueueUnderTest{
			Queue:      q,
			Visibility: 30 * time.Second,
			Advance: func(d time.Duration) {
				mu.Lock()
				defer mu.Unlock()
				now = now.Add(d)
			},
		}
	})
}
