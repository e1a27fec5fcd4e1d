package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/salvopush/salvo/sender"
)

// Records table attributes. One item per record:
//
//	ns       S  partition key: the record key up to its first "/" (the whole key if none)
//	key      S  sort key: the full record key
//	version  N  1 after the first write, +1 per write
//	data     B  the record (absent when empty)
//
// Grouping keys by their first segment lets List("campaigns/c1/") be one Query instead of a
// Scan of the table; a prefix without "/" falls back to a Scan.
const (
	attrNS      = "ns"
	attrKey     = "key"
	attrVersion = "version"
	attrData    = "data"
)

// RecordStore keeps versioned records in a DynamoDB table with conditional writes; it
// implements sender.RecordStore. Reads are strongly consistent. It is safe for concurrent
// use.
type RecordStore struct {
	client *awsdynamodb.Client
	table  string
}

var _ sender.RecordStore = (*RecordStore)(nil)

// NewRecordStore returns a RecordStore over table (made by CreateTables). It makes no call.
func NewRecordStore(client *awsdynamodb.Client, table string) (*RecordStore, error) {
	if table == "" {
		return nil, errors.New("dynamodb: records table name is empty")
	}
	return &RecordStore{client: client, table: table}, nil
}

// namespace returns the partition a record key lives in.
func namespace(key string) string {
	if i := strings.IndexByte(key, '/'); i >= 0 {
		return key[:i]
	}
	return key
}

func recordKey(key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrNS:  &types.AttributeValueMemberS{Value: namespace(key)},
		attrKey: &types.AttributeValueMemberS{Value: key},
	}
}

// Get returns the record at key, or an error wrapping sender.ErrNotFound.
func (s *RecordStore) Get(ctx context.Context, key string) (sender.Record, error) {
	if key == "" {
		return sender.Record{}, errors.New("dynamodb: records: get: empty key")
	}
	out, err := s.client.GetItem(ctx, &awsdynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            recordKey(key),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return sender.Record{}, fmt.Errorf("dynamodb: records: get %q: %w", key, err)
	}
	if out.Item == nil {
		return sender.Record{}, fmt.Errorf("dynamodb: records: get %q: %w", key, sender.ErrNotFound)
	}
	return decodeRecord(out.Item)
}

// CompareAndSwap writes data at key if the stored version equals expected (0: the key must
// not exist) and returns the new version, expected+1. When another writer got there first
// it returns an error wrapping sender.ErrConflict and writes nothing. It is one conditional
// PutItem, so exactly one of any number of racing writers with the same expected version
// wins.
func (s *RecordStore) CompareAndSwap(ctx context.Context, key string, expected int64, data []byte) (int64, error) {
	if key == "" {
		return 0, errors.New("dynamodb: records: compare-and-swap: empty key")
	}
	if expected < 0 {
		return 0, fmt.Errorf("dynamodb: records: compare-and-swap %q: negative expected version %d", key, expected)
	}
	next := expected + 1
	item := recordKey(key)
	item[attrVersion] = &types.AttributeValueMemberN{Value: strconv.FormatInt(next, 10)}
	if len(data) > 0 {
		item[attrData] = &types.AttributeValueMemberB{Value: data}
	}
	in := &awsdynamodb.PutItemInput{
		TableName:                aws.String(s.table),
		Item:                     item,
		ExpressionAttributeNames: map[string]string{"#k": attrKey},
		ConditionExpression:      aws.String("attribute_not_exists(#k)"),
	}
	if expected > 0 {
		in.ExpressionAttributeNames["#v"] = attrVersion
		in.ConditionExpression = aws.String("#v = :expected")
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":expected": &types.AttributeValueMemberN{Value: strconv.FormatInt(expected, 10)}}
		delete(in.ExpressionAttributeNames, "#k")
	}
	if _, err := s.client.PutItem(ctx, in); err != nil {
		if isConditionFailed(err) {
			return 0, fmt.Errorf("dynamodb: records: %q is not at version %d: %w", key, expected, sender.ErrConflict)
		}
		return 0, fmt.Errorf("dynamodb: records: compare-and-swap %q: %w", key, err)
	}
	return next, nil
}

// List returns the records whose key starts with prefix, sorted by key. A prefix containing
// "/" is one paginated Query of its namespace; any other prefix scans the table.
func (s *RecordStore) List(ctx context.Context, prefix string) ([]sender.Record, error) {
	var recs []sender.Record
	add := func(items []map[string]types.AttributeValue) error {
		for _, it := range items {
			r, err := decodeRecord(it)
			if err != nil {
				return err
			}
			recs = append(recs, r)
		}
		return nil
	}
	names := map[string]string{"#k": attrKey}
	values := map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: prefix}}
	if strings.Contains(prefix, "/") {
		names["#ns"] = attrNS
		values[":ns"] = &types.AttributeValueMemberS{Value: namespace(prefix)}
		p := awsdynamodb.NewQueryPaginator(s.client, &awsdynamodb.QueryInput{
			TableName:                 aws.String(s.table),
			KeyConditionExpression:    aws.String("#ns = :ns AND begins_with(#k, :p)"),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: values,
			ConsistentRead:            aws.Bool(true),
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("dynamodb: records: list %q: %w", prefix, err)
			}
			if err := add(page.Items); err != nil {
				return nil, fmt.Errorf("dynamodb: records: list %q: %w", prefix, err)
			}
		}
		return recs, nil // a Query returns sort-key order
	}
	in := &awsdynamodb.ScanInput{TableName: aws.String(s.table), ConsistentRead: aws.Bool(true)}
	if prefix != "" {
		in.FilterExpression = aws.String("begins_with(#k, :p)")
		in.ExpressionAttributeNames = names
		in.ExpressionAttributeValues = values
	}
	p := awsdynamodb.NewScanPaginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("dynamodb: records: list %q: %w", prefix, err)
		}
		if err := add(page.Items); err != nil {
			return nil, fmt.Errorf("dynamodb: records: list %q: %w", prefix, err)
		}
	}
	slices.SortFunc(recs, func(a, b sender.Record) int { return strings.Compare(a.Key, b.Key) })
	return recs, nil
}

// decodeRecord reads one records item.
func decodeRecord(item map[string]types.AttributeValue) (sender.Record, error) {
	k, ok := item[attrKey].(*types.AttributeValueMemberS)
	if !ok {
		return sender.Record{}, errors.New("record item without a string key")
	}
	v, ok := item[attrVersion].(*types.AttributeValueMemberN)
	if !ok {
		return sender.Record{}, fmt.Errorf("record %q without a version", k.Value)
	}
	ver, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		return sender.Record{}, fmt.Errorf("record %q: version: %w", k.Value, err)
	}
	r := sender.Record{Key: k.Value, Version: ver}
	if d, ok := item[attrData].(*types.AttributeValueMemberB); ok {
		r.Data = d.Value
	}
	return r, nil
}
