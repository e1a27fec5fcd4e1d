package localstore_test

import (
	"testing"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/conformance"
	"github.com/salvopush/salvo/sender/localstore"
)

func TestRecordsConformance(t *testing.T) {
	t.Parallel()
	// In memory.
	t.Run("memory", func(t *testing.T) {
		conformance.RecordStore(t, func(t *testing.T) sender.RecordStore { return localstore.NewRecords() })
	})
	// On disk, one file per record.
	t.Run("disk", func(t *testing.T) {
		conformance.RecordStore(t, func(t *testing.T) sender.RecordStore {
			r, err := localstore.OpenRecords(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return r
		})
	})
}

func TestStoreConformance(t *testing.T) {
	t.Parallel()
	conformance.ObjectStore(t, func(t *testing.T) sender.ObjectStore {
		s, err := localstore.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
