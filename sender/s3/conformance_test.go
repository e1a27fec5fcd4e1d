package s3_test

import (
	"testing"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/conformance"
	"github.com/salvopush/salvo/sender/s3"
)

// TestConformance runs the sender.ObjectStore suite on the emulator, one bucket for all
// its subtests.
func TestConformance(t *testing.T) {
	st, _, _ := newStore(t, s3.Options{})
	conformance.ObjectStore(t, func(t *testing.T) sender.ObjectStore { return st })
}
