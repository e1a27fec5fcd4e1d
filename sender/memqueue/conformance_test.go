package memqueue_test

import (
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
		clock := conformance.NewClock()
		q, err := memqueue.New(memqueue.Config{FIFO: fifo, VisibilityTimeout: 30 * time.Second, Clock: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = q.Close() })
		return conformance.QueueUnderTest{
			Queue:      q,
			Visibility: 30 * time.Second,
			Advance:    clock.Advance,
		}
	})
}
