package awssetup_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/salvopush/salvo/localstack/npmemu"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/awsconfig"
	"github.com/salvopush/salvo/sender/awssetup"
	"github.com/salvopush/salvo/sender/dynamodb"
	"github.com/salvopush/salvo/sender/s3"
	"github.com/salvopush/salvo/sender/sqs"
)

func TestMain(m *testing.M) { os.Exit(npmemu.Run(m)) }

// uniqueNames returns resource names of their own for one test.
func uniqueNames() awsconfig.Names {
	id := time.Now().UnixNano()
	return awsconfig.Names{
		RangeQueue:      fmt.Sprintf("ranges-%d.fifo", id),
		BatchQueue:      fmt.Sprintf("batches-%d", id),
		DeadLetterQueue: fmt.Sprintf("dead-%d", id),
		Bucket:          fmt.Sprintf("salvo-%d", id),
		RegistryTable:   fmt.Sprintf("registry-%d", id),
		RecordsTable:    fmt.Sprintf("records-%d", id),
		LedgerTable:     fmt.Sprintf("ledger-%d", id),
	}
}

// TestSetupOnEmulators runs Setup twice against fauxqs and dynalite and uses what it made.
func TestSetupOnEmulators(t *testing.T) {
	clients := npmemu.Start(t).Clients(t)
	names := uniqueNames()
	for range 2 { // idempotent
		if err := awssetup.Setup(t.Context(), clients, names); err != nil {
			t.Fatal(err)
		}
	}
	exercise(t, clients, names)
}

// exercise touches every resource Setup made through Salvo's backends.
func exercise(t *testing.T, clients awsconfig.Clients, names awsconfig.Names) {
	t.Helper()
	ctx := t.Context()
	ranges, err := sqs.Open(ctx, clients.SQS, names.RangeQueue, sqs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	press := sender.OutMessage{Body: []byte(`{"range":0}`), GroupID: "c1", DedupID: "c1/r0"}
	for range 2 { // a double press
		if err := ranges.Send(ctx, []sender.OutMessage{press}); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := ranges.Receive(ctx, 10, 2*time.Second)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("range queue: %d messages, %v; want 1", len(msgs), err)
	}
	if _, err := sqs.Open(ctx, clients.SQS, names.BatchQueue, sqs.Options{}); err != nil {
		t.Fatal(err)
	}
	store, err := s3.New(clients.S3, names.Bucket, s3.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, "campaigns/c1/manifest.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	records, err := dynamodb.NewRecordStore(clients.DynamoDB, names.RecordsTable)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := records.CompareAndSwap(ctx, "campaigns/c1", 0, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	reg, err := dynamodb.NewRegistry(clients.DynamoDB, names.RegistryTable, dynamodb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if devs, err := reg.Devices(ctx, []string{"nobody"}); err != nil || devs[0] != nil {
		t.Fatalf("registry: %v, %v", devs, err)
	}
	ledger, err := dynamodb.NewLedger(clients.DynamoDB, names.LedgerTable, dynamodb.LedgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ledger.Claim(ctx, "c1", "setup-test", 0, 4, time.Minute, nil); err != nil || len(got) != 4 {
		t.Fatalf("ledger: %v, %v", got, err)
	}
}

func TestSetupRejectsBadNames(t *testing.T) {
	names := uniqueNames()
	names.RangeQueue = "not-fifo"
	// Validation comes before any call, so no clients are needed.
	if err := awssetup.Setup(t.Context(), awsconfig.Clients{}, names); err == nil {
		t.Fatal("Setup accepted a range queue without .fifo")
	}
}
