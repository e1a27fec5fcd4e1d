package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// API limits.
const (
	// MaxGetKeys is the most keys one BatchGetItem call takes.
	MaxGetKeys = 100
	// MaxWriteItems is the most items one BatchWriteItem call takes.
	MaxWriteItems = 25
)

// Options tune the registry, the ledger and LoadRegistry; the zero value is ready to use.
type Options struct {
	// Concurrency bounds the batch calls one Devices or LoadRegistry call makes at once
	// (0: 8).
	Concurrency int
	// MaxAttempts bounds the tries of keys or items DynamoDB leaves unprocessed (throttling),
	// and of ledger updates that lose a race, first try included (0: 8).
	MaxAttempts int
	// RetryBase and RetryMax shape the full-jitter exponential backoff between tries
	// (0: 50ms and 5s).
	RetryBase time.Duration
	RetryMax  time.Duration
	// ConsistentRead makes registry reads strongly consistent (twice the read cost). The
	// registry is written long before a send, so eventually consistent reads are the default.
	ConsistentRead bool
}

// Validate reports the first bad field.
func (o Options) Validate() error {
	switch {
	case o.Concurrency < 0:
		return fmt.Errorf("dynamodb: Options.Concurrency %d is negative", o.Concurrency)
	case o.MaxAttempts < 0:
		return fmt.Errorf("dynamodb: Options.MaxAttempts %d is negative", o.MaxAttempts)
	case o.RetryBase < 0 || o.RetryMax < 0:
		return errors.New("dynamodb: Options.RetryBase and RetryMax must not be negative")
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Concurrency == 0 {
		o.Concurrency = 8
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 8
	}
	if o.RetryBase == 0 {
		o.RetryBase = 50 * time.Millisecond
	}
	if o.RetryMax == 0 {
		o.RetryMax = 5 * time.Second
	}
	return o
}

// wait sleeps before retry attempt (1, 2, ...) with full-jitter exponential backoff, or
// returns ctx's error.
func (o Options) wait(ctx context.Context, attempt int) error {
	d := o.RetryMax
	if attempt < 30 && o.RetryBase<<attempt < o.RetryMax {
		d = o.RetryBase << attempt
	}
	t := time.NewTimer(rand.N(d) + 1)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Tables names the three tables Salvo keeps in DynamoDB.
type Tables struct {
	// Registry: partition key user_id (S); attribute devices (L of M).
	Registry string
	// Records: partition key ns (S), sort key key (S); attributes version (N), data (B).
	Records string
	// Ledger: partition key campaign (S), sort key start (N); attributes n, done, ver,
	// owner, expires.
	Ledger string
}

// CreateTables creates the named tables (empty names are skipped) with on-demand billing
// and waits until they are active. A table that already exists is left as it is. It is for
// the setup command; workers never create tables.
func CreateTables(ctx context.Context, client *awsdynamodb.Client, names Tables) error {
	specs := []struct {
		name      string
		hash      string
		hashType  types.ScalarAttributeType
		rangeKey  string
		rangeType types.ScalarAttributeType
	}{
		{names.Registry, attrUserID, types.ScalarAttributeTypeS, "", ""},
		{names.Records, attrNS, types.ScalarAttributeTypeS, attrKey, types.ScalarAttributeTypeS},
		{names.Ledger, attrCampaign, types.ScalarAttributeTypeS, attrStart, types.ScalarAttributeTypeN},
	}
	for _, s := range specs {
		if s.name == "" {
			continue
		}
		in := &awsdynamodb.CreateTableInput{
			TableName:            aws.String(s.name),
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(s.hash), AttributeType: s.hashType}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(s.hash), KeyType: types.KeyTypeHash}},
		}
		if s.rangeKey != "" {
			in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{AttributeName: aws.String(s.rangeKey), AttributeType: s.rangeType})
			in.KeySchema = append(in.KeySchema, types.KeySchemaElement{AttributeName: aws.String(s.rangeKey), KeyType: types.KeyTypeRange})
		}
		_, err := client.CreateTable(ctx, in)
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return fmt.Errorf("dynamodb: create table %q: %w", s.name, err)
		}
		w := awsdynamodb.NewTableExistsWaiter(client, func(o *awsdynamodb.TableExistsWaiterOptions) {
			o.MinDelay = 100 * time.Millisecond
			o.MaxDelay = 5 * time.Second
		})
		if err := w.Wait(ctx, &awsdynamodb.DescribeTableInput{TableName: aws.String(s.name)}, 5*time.Minute); err != nil {
			return fmt.Errorf("dynamodb: wait for table %q: %w", s.name, err)
		}
	}
	return nil
}

// isConditionFailed reports whether err is DynamoDB's ConditionalCheckFailedException.
func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}
