package dynamodb_test

import (
	"testing"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/conformance"
	"github.com/salvopush/salvo/sender/dynamodb"
)

// TestRecordStoreConformance runs the sender.RecordStore suite on the emulator, one table
// for all its subtests.
func TestRecordStoreConformance(t *testing.T) {
	e := newEnv(t, nil)
	s, err := dynamodb.NewRecordStore(e.client, e.tables.Records)
	if err != nil {
		t.Fatal(err)
	}
	conformance.RecordStore(t, func(t *testing.T) sender.RecordStore { return s })
}
