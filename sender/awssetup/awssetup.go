// Package awssetup provisions the AWS resources Salvo runs on, in a real account, in
// LocalStack or in the npm emulators: the range and batch queues, the bucket and the three
// DynamoDB tables. `salvo setup` runs it; workers never do.
//
//	cfg := awsconfig.FromEnv(os.Getenv)
//	clients, err := cfg.Clients(ctx)
//	if err != nil {
//		return err
//	}
//	err = awssetup.Setup(ctx, clients, awsconfig.DefaultNames())
package awssetup

import (
	"context"
	"fmt"

	"github.com/salvopush/salvo/sender/awsconfig"
	"github.com/salvopush/salvo/sender/dynamodb"
	"github.com/salvopush/salvo/sender/s3"
	"github.com/salvopush/salvo/sender/sqs"
)

// BatchMaxReceives is the batch queue's redrive threshold.
const BatchMaxReceives = 100

// Setup creates the queues, bucket and tables named by names, and leaves those that exist
// as they are, so it can run again at any time. Tables are waited for until active. Workers
// never call it: they look their resources up and fail if one is missing.
func Setup(ctx context.Context, clients awsconfig.Clients, names awsconfig.Names) error {
	if err := names.Validate(); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if err := sqs.CreateQueues(ctx, clients.SQS, names.RangeQueue, names.BatchQueue, names.DeadLetterQueue); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	// A batch message received this often without being deleted (a worker dies on it every
	// time) goes to the dead-letter queue instead of coming back forever.
	if err := sqs.SetRedrive(ctx, clients.SQS, names.BatchQueue, names.DeadLetterQueue, BatchMaxReceives); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if err := s3.CreateBucket(ctx, clients.S3, names.Bucket); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	err := dynamodb.CreateTables(ctx, clients.DynamoDB, dynamodb.Tables{
		Registry: names.RegistryTable,
		Records:  names.RecordsTable,
		Ledger:   names.LedgerTable,
	})
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	return nil
}
