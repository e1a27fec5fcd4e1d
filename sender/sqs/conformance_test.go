package sqs_test

import (
	"testing"
	"time"

	"github.com/salvopush/salvo/sender/conformance"
	"github.com/salvopush/salvo/sender/sqs"
)

// TestConformance runs the sender.Queue suite on the emulator, with the shortest
// visibility timeout SQS has (one second): time passes for real.
func TestConformance(t *testing.T) {
	e := newEnv(t)
	conformance.Queue(t, func(t *testing.T, fifo bool) conformance.QueueUnderTest {
		q := e.queueOpts(t, fifo, map[string]string{"VisibilityTimeout": "1"}, sqs.Options{VisibilityTimeout: time.Second})
		return conformance.QueueUnderTest{Queue: q, Visibility: time.Second, Advance: time.Sleep}
	})
}
