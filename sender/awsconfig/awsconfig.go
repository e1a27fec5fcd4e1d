package awsconfig

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// DefaultRegion is the region used when neither a flag nor AWS_REGION / AWS_DEFAULT_REGION
// names one.
const DefaultRegion = "us-east-1"

// Config says where Salvo's AWS clients connect and how they authenticate. The zero value
// plus a region talks to real AWS with the default credential chain. Fill it with FromEnv,
// then RegisterFlags (flags override the environment), then call Validate and Clients.
type Config struct {
	// Region is the AWS region (AWS_REGION, then AWS_DEFAULT_REGION; DefaultRegion if none).
	Region string
	// Endpoint, when set, sends every service to this URL (AWS_ENDPOINT_URL): one emulator
	// such as LocalStack serving SQS, S3 and DynamoDB on one port.
	Endpoint string
	// SQSEndpoint, S3Endpoint and DynamoDBEndpoint override Endpoint for one service
	// (AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_DYNAMODB).
	SQSEndpoint      string
	S3Endpoint       string
	DynamoDBEndpoint string
	// AccessKeyID and SecretAccessKey, when set, are used as static credentials (what
	// emulators want); when empty the SDK's default credential chain applies (environment,
	// shared files, SSO, ECS task role, EC2 instance role).
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken goes with static credentials (AWS_SESSION_TOKEN); usually empty.
	SessionToken string
	// S3PathStyle addresses buckets as http://host/bucket/key instead of
	// http://bucket.host/key. Emulators need it; FromEnv turns it on when an S3 endpoint is
	// overridden.
	S3PathStyle bool
	// ChecksumsWhenRequired computes and validates request/response checksums only where an
	// API requires them, instead of on every S3 call. Emulators that do not understand the
	// SDK's default trailing checksums need it; FromEnv turns it on when any endpoint is
	// overridden.
	ChecksumsWhenRequired bool
	// MaxConnsPerHost bounds idle connections kept per host (0: 256). Salvo's workers run many
	// concurrent calls to few hosts; Go's default of 2 idle connections per host would make
	// them reconnect all the time.
	MaxConnsPerHost int
	// RetryMaxAttempts is the SDK's attempt limit per call, first try included (0: 5).
	RetryMaxAttempts int
}

// Environment variables read by FromEnv besides the standard AWS ones.
const (
	// EnvS3PathStyle ("true" / "false") forces S3 path-style addressing on or off.
	EnvS3PathStyle = "SALVO_S3_PATH_STYLE"
)

// FromEnv fills a Config from the standard AWS environment variables read through getenv
// (pass os.Getenv). An overridden endpoint means an emulator: path-style S3 and checksums
// only when required are turned on (SALVO_S3_PATH_STYLE=false turns path style off again).
func FromEnv(getenv func(string) string) Config {
	c := Config{
		Region:           first(getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION"), DefaultRegion),
		Endpoint:         getenv("AWS_ENDPOINT_URL"),
		SQSEndpoint:      getenv("AWS_ENDPOINT_URL_SQS"),
		S3Endpoint:       getenv("AWS_ENDPOINT_URL_S3"),
		DynamoDBEndpoint: getenv("AWS_ENDPOINT_URL_DYNAMODB"),
		AccessKeyID:      getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey:  getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken:     getenv("AWS_SESSION_TOKEN"),
	}
	overridden := c.Endpoint != "" || c.SQSEndpoint != "" || c.S3Endpoint != "" || c.DynamoDBEndpoint != ""
	c.S3PathStyle = c.Endpoint != "" || c.S3Endpoint != ""
	switch strings.ToLower(getenv(EnvS3PathStyle)) {
	case "true", "1":
		c.S3PathStyle = true
	case "false", "0":
		c.S3PathStyle = false
	}
	c.ChecksumsWhenRequired = overridden
	return c
}

// RegisterFlags adds -aws-region, -aws-endpoint, -aws-endpoint-sqs, -aws-endpoint-s3,
// -aws-endpoint-dynamodb, -s3-path-style and -aws-checksums-when-required to fs, with the
// current field values as defaults (so call FromEnv first). Credentials are deliberately not
// flags: they come from the environment or the default chain.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Region, "aws-region", c.Region, "AWS region")
	fs.StringVar(&c.Endpoint, "aws-endpoint", c.Endpoint, "one endpoint URL for SQS, S3 and DynamoDB (emulators, LocalStack)")
	fs.StringVar(&c.SQSEndpoint, "aws-endpoint-sqs", c.SQSEndpoint, "SQS endpoint URL (overrides -aws-endpoint)")
	fs.StringVar(&c.S3Endpoint, "aws-endpoint-s3", c.S3Endpoint, "S3 endpoint URL (overrides -aws-endpoint)")
	fs.StringVar(&c.DynamoDBEndpoint, "aws-endpoint-dynamodb", c.DynamoDBEndpoint, "DynamoDB endpoint URL (overrides -aws-endpoint)")
	fs.BoolVar(&c.S3PathStyle, "s3-path-style", c.S3PathStyle, "address S3 buckets path-style (emulators)")
	fs.BoolVar(&c.ChecksumsWhenRequired, "aws-checksums-when-required", c.ChecksumsWhenRequired, "compute S3 checksums only where required (emulators)")
}

// Validate reports the first bad field by name.
func (c Config) Validate() error {
	if c.Region == "" {
		return errors.New("awsconfig: Region is empty")
	}
	for _, f := range []struct{ name, v string }{
		{"Endpoint", c.Endpoint},
		{"SQSEndpoint", c.SQSEndpoint},
		{"S3Endpoint", c.S3Endpoint},
		{"DynamoDBEndpoint", c.DynamoDBEndpoint},
	} {
		if f.v == "" {
			continue
		}
		u, err := url.Parse(f.v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("awsconfig: %s %q is not an http(s) URL", f.name, f.v)
		}
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		return errors.New("awsconfig: AccessKeyID and SecretAccessKey must be set together")
	}
	if c.MaxConnsPerHost < 0 {
		return fmt.Errorf("awsconfig: MaxConnsPerHost %d is negative", c.MaxConnsPerHost)
	}
	if c.RetryMaxAttempts < 0 {
		return fmt.Errorf("awsconfig: RetryMaxAttempts %d is negative", c.RetryMaxAttempts)
	}
	return nil
}

// AWS builds the shared aws.Config: region, credentials, an HTTP client sized for many
// concurrent calls, and a retryer without the client-side retry quota (which, under the
// bursts Salvo makes, turns throttling into hard failures). Endpoints are applied per
// service by Clients.
func (c Config) AWS(ctx context.Context) (aws.Config, error) {
	if err := c.Validate(); err != nil {
		return aws.Config{}, err
	}
	conns := c.MaxConnsPerHost
	if conns == 0 {
		conns = 256
	}
	attempts := c.RetryMaxAttempts
	if attempts == 0 {
		attempts = 5
	}
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConns = conns * 4
		tr.MaxIdleConnsPerHost = conns
	})
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(c.Region),
		config.WithHTTPClient(httpClient),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				o.RateLimiter = ratelimit.None
			})
		}),
	}
	if c.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)))
		// With static credentials nothing needs the instance metadata service; asking it
		// off EC2 only costs time.
		opts = append(opts, config.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	if c.ChecksumsWhenRequired {
		opts = append(opts,
			config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
			config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("awsconfig: load: %w", err)
	}
	return cfg, nil
}

// Clients are the three service clients Salvo uses. They are safe for concurrent use and
// hold no resources that need closing.
type Clients struct {
	SQS      *sqs.Client
	S3       *s3.Client
	DynamoDB *dynamodb.Client
}

// Clients builds the SQS, S3 and DynamoDB clients with their endpoints (a per-service
// endpoint wins over Endpoint; both empty means the real AWS endpoint of Region).
func (c Config) Clients(ctx context.Context) (Clients, error) {
	cfg, err := c.AWS(ctx)
	if err != nil {
		return Clients{}, err
	}
	return Clients{
		SQS: sqs.NewFromConfig(cfg, func(o *sqs.Options) {
			if ep := first(c.SQSEndpoint, c.Endpoint); ep != "" {
				o.BaseEndpoint = aws.String(ep)
			}
		}),
		S3: s3.NewFromConfig(cfg, func(o *s3.Options) {
			if ep := first(c.S3Endpoint, c.Endpoint); ep != "" {
				o.BaseEndpoint = aws.String(ep)
			}
			o.UsePathStyle = c.S3PathStyle
		}),
		DynamoDB: dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
			if ep := first(c.DynamoDBEndpoint, c.Endpoint); ep != "" {
				o.BaseEndpoint = aws.String(ep)
			}
		}),
	}, nil
}

// first returns the first non-empty string.
func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// Default resource names; see docs/aws.md for their schemas.
const (
	DefaultRangeQueue    = "salvo-ranges.fifo"
	DefaultBatchQueue    = "salvo-batches"
	DefaultDeadLetters   = "salvo-dead-letters"
	DefaultBucket        = "salvo"
	DefaultRegistryTable = "salvo-registry"
	DefaultRecordsTable  = "salvo-records"
	DefaultLedgerTable   = "salvo-ledger"
)

// Names are the AWS resources one Salvo deployment uses. Every process of a deployment must
// use the same names; the setup command creates them.
type Names struct {
	RangeQueue string // FIFO queue of range messages (GO -> fan-out workers)
	BatchQueue string // standard queue of batch messages (fan-out -> send workers)
	// DeadLetterQueue holds batches given up on (and batch messages received too often,
	// through the batch queue's redrive policy) until a redrive.
	DeadLetterQueue string
	Bucket          string // S3 bucket for campaigns, manifests, feedback and results
	RegistryTable   string // DynamoDB device registry
	RecordsTable    string // DynamoDB campaign and worker records
	LedgerTable     string // DynamoDB delivery ledger
}

// DefaultNames returns the Default* names.
func DefaultNames() Names {
	return Names{
		RangeQueue:      DefaultRangeQueue,
		BatchQueue:      DefaultBatchQueue,
		DeadLetterQueue: DefaultDeadLetters,
		Bucket:          DefaultBucket,
		RegistryTable:   DefaultRegistryTable,
		RecordsTable:    DefaultRecordsTable,
		LedgerTable:     DefaultLedgerTable,
	}
}

// RegisterFlags adds -range-queue, -batch-queue, -bucket, -registry-table, -records-table and
// -ledger-table to fs, with the current values as defaults.
func (n *Names) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&n.RangeQueue, "range-queue", n.RangeQueue, "SQS FIFO queue for range messages (name ends in .fifo)")
	fs.StringVar(&n.BatchQueue, "batch-queue", n.BatchQueue, "SQS standard queue for batch messages")
	fs.StringVar(&n.DeadLetterQueue, "dead-letter-queue", n.DeadLetterQueue, "SQS standard queue for batches given up on")
	fs.StringVar(&n.Bucket, "bucket", n.Bucket, "S3 bucket")
	fs.StringVar(&n.RegistryTable, "registry-table", n.RegistryTable, "DynamoDB device registry table")
	fs.StringVar(&n.RecordsTable, "records-table", n.RecordsTable, "DynamoDB records table")
	fs.StringVar(&n.LedgerTable, "ledger-table", n.LedgerTable, "DynamoDB ledger table")
}

// Validate reports the first empty or malformed name.
func (n Names) Validate() error {
	for _, f := range []struct{ name, v string }{
		{"RangeQueue", n.RangeQueue},
		{"BatchQueue", n.BatchQueue},
		{"DeadLetterQueue", n.DeadLetterQueue},
		{"Bucket", n.Bucket},
		{"RegistryTable", n.RegistryTable},
		{"RecordsTable", n.RecordsTable},
		{"LedgerTable", n.LedgerTable},
	} {
		if f.v == "" {
			return fmt.Errorf("awsconfig: %s is empty", f.name)
		}
	}
	if !strings.HasSuffix(n.RangeQueue, ".fifo") {
		return fmt.Errorf("awsconfig: RangeQueue %q must end in .fifo", n.RangeQueue)
	}
	if strings.HasSuffix(n.BatchQueue, ".fifo") {
		return fmt.Errorf("awsconfig: BatchQueue %q must be a standard queue (no .fifo)", n.BatchQueue)
	}
	if strings.HasSuffix(n.DeadLetterQueue, ".fifo") {
		return fmt.Errorf("awsconfig: DeadLetterQueue %q must be a standard queue (no .fifo)", n.DeadLetterQueue)
	}
	return nil
}
