package memledger_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/conformance"
	"github.com/salvopush/salvo/sender/memledger"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	// In memory.
	t.Run("memory", func(t *testing.T) {
		conformance.Ledger(t, func(t *testing.T, clock func() time.Time) sender.Ledger {
			return memledger.NewWithClock(clock)
		})
	})
	// On a journal: the same behaviour, each change synced to disk.
	t.Run("journal", func(t *testing.T) {
		conformance.Ledger(t, func(t *testing.T, clock func() time.Time) sender.Ledger {
			l, err := memledger.OpenJournal(filepath.Join(t.TempDir(), "ledger.journal"), memledger.JournalOptions{Clock: clock})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := l.Close(); err != nil {
					t.Error(err)
				}
			})
			return l
		})
	})
}
