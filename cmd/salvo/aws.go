package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"

	"github.com/salvopush/salvo/loadgen"
	"github.com/salvopush/salvo/sender/awsconfig"
	"github.com/salvopush/salvo/sender/awssetup"
	"github.com/salvopush/salvo/sender/dynamodb"
	"github.com/salvopush/salvo/sender/s3"
	"github.com/salvopush/salvo/sender/sqs"
)

// awsFlags say where the AWS backends are: endpoints and region from the standard AWS
// environment variables, overridden by flags, and the resource names.
type awsFlags struct {
	cfg   awsconfig.Config
	names awsconfig.Names
}

func (a *awsFlags) register(fs *flag.FlagSet) {
	a.cfg = awsconfig.FromEnv(os.Getenv)
	a.cfg.RegisterFlags(fs)
	a.names = awsconfig.DefaultNames()
	a.names.RegisterFlags(fs)
}

func (a *awsFlags) clients(ctx context.Context) (awsconfig.Clients, error) {
	if err := a.cfg.Validate(); err != nil {
		return awsconfig.Clients{}, usageError("%v", err)
	}
	if err := a.names.Validate(); err != nil {
		return awsconfig.Clients{}, usageError("%v", err)
	}
	c, err := a.cfg.Clients(ctx)
	if err != nil {
		return c, err
	}
	if a.cfg.Endpoint != "" && a.cfg.DynamoDBEndpoint == "" {
		if err := checkSharedEndpoint(ctx, c, a.cfg.Endpoint); err != nil {
			return awsconfig.Clients{}, err
		}
	}
	return c, nil
}

// checkSharedEndpoint asks the one endpoint given for every service (AWS_ENDPOINT_URL) a
// harmless DynamoDB question. fauxqs, which serves SQS and S3 only, answers it with
// "Unknown action": every DynamoDB call of the run would fail the same way, so say why now.
func checkSharedEndpoint(ctx context.Context, c awsconfig.Clients, endpoint string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := c.DynamoDB.ListTables(ctx, &awsdynamodb.ListTablesInput{Limit: aws.Int32(1)})
	var ae smithy.APIError
	if errors.As(err, &ae) && (ae.ErrorCode() == "InvalidAction" || ae.ErrorCode() == "UnknownOperationException" ||
		strings.Contains(ae.ErrorMessage(), "Unknown action")) {
		return usageError("AWS_ENDPOINT_URL (or --aws-endpoint) %s serves no DynamoDB (%s: %s); it looks like fauxqs, which serves SQS and S3 only. "+
			"Give DynamoDB its own endpoint: AWS_ENDPOINT_URL_DYNAMODB (or --aws-endpoint-dynamodb) = dynalite's URL; `salvo emulators` prints every variable",
			endpoint, ae.ErrorCode(), ae.ErrorMessage())
	}
	return nil // other errors (unreachable, credentials) are the command's own to report
}

// awsBackends are the pipeline's seams on AWS.
type awsBackends struct {
	objects     *s3.Store
	records     *dynamodb.RecordStore
	registry    *dynamodb.Registry
	ledger      *dynamodb.Ledger
	ranges      *sqs.Queue
	batches     *sqs.Queue
	deadLetters *sqs.Queue
}

// open looks every resource up (they must exist: `salvo setup` creates them); visibility is
// the queues' visibility timeout (0: the sqs default).
func (a *awsFlags) open(ctx context.Context, visibility time.Duration) (*awsBackends, error) {
	c, err := a.clients(ctx)
	if err != nil {
		return nil, err
	}
	b := &awsBackends{}
	if b.objects, err = s3.New(c.S3, a.names.Bucket, s3.Options{}); err != nil {
		return nil, err
	}
	if b.records, err = dynamodb.NewRecordStore(c.DynamoDB, a.names.RecordsTable); err != nil {
		return nil, err
	}
	if b.registry, err = dynamodb.NewRegistry(c.DynamoDB, a.names.RegistryTable, dynamodb.Options{}); err != nil {
		return nil, err
	}
	if b.ledger, err = dynamodb.NewLedger(c.DynamoDB, a.names.LedgerTable, dynamodb.LedgerOptions{}); err != nil {
		return nil, err
	}
	if b.ranges, err = sqs.Open(ctx, c.SQS, a.names.RangeQueue, sqs.Options{VisibilityTimeout: visibility}); err != nil {
		return nil, fmt.Errorf("%w (run `salvo setup` first)", err)
	}
	if b.batches, err = sqs.Open(ctx, c.SQS, a.names.BatchQueue, sqs.Options{VisibilityTimeout: visibility}); err != nil {
		return nil, fmt.Errorf("%w (run `salvo setup` first)", err)
	}
	if b.deadLetters, err = sqs.Open(ctx, c.SQS, a.names.DeadLetterQueue, sqs.Options{}); err != nil {
		return nil, fmt.Errorf("%w (run `salvo setup` first)", err)
	}
	return b, nil
}

// runSetup creates the queues, bucket and tables of a deployment (idempotent).
func runSetup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("setup", stderr)
	var a awsFlags
	a.register(fs)
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: salvo setup [AWS flags]\n\nCreates the SQS queues, S3 bucket and DynamoDB tables (existing ones are left as they are).")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *timeout <= 0 {
		return usageError("--timeout: %v must be positive", *timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c, err := a.clients(ctx)
	if err != nil {
		return err
	}
	if err := awssetup.Setup(ctx, c, a.names); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "setup: queues %s, %s; bucket %s; tables %s, %s, %s\n", a.names.RangeQueue, a.names.BatchQueue,
		a.names.Bucket, a.names.RegistryTable, a.names.RecordsTable, a.names.LedgerTable)
	return nil
}

// genToDynamoDB loads a synthetic registry into a DynamoDB table with BatchWriteItem.
func genToDynamoDB(ctx context.Context, spec loadgen.RegistrySpec, to string, a *awsFlags, stdout io.Writer) error {
	table, ok := strings.CutPrefix(to, "dynamodb://")
	if !ok || table == "" {
		return usageError("--to: %q: want dynamodb://TABLE", to)
	}
	c, err := a.clients(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	n, err := dynamodb.LoadRegistry(ctx, c.DynamoDB, table, spec.Each)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "registry: %d users loaded into DynamoDB table %s in %s\n", n, table, time.Since(start).Round(time.Millisecond))
	return nil
}

// scanRegistry reads every user ID of a DynamoDB registry table (a full scan).
func scanRegistry(ctx context.Context, table string, a *awsFlags) (*loadgen.UserList, error) {
	if table == "" {
		return nil, usageError("--from: want dynamodb://TABLE")
	}
	c, err := a.clients(ctx)
	if err != nil {
		return nil, err
	}
	reg, err := dynamodb.NewRegistry(c.DynamoDB, table, dynamodb.Options{})
	if err != nil {
		return nil, err
	}
	var ids []string
	if err := reg.Users(ctx, func(id string) error { ids = append(ids, id); return nil }); err != nil {
		return nil, fmt.Errorf("--from dynamodb://%s: %w", table, err)
	}
	if len(ids) == 0 {
		return nil, usageError("--from dynamodb://%s: the table holds no user (load one with salvo gen registry --to dynamodb://%s)", table, table)
	}
	return loadgen.NewUserList(ids), nil
}
