package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/salvopush/salvo/sender"
)

// Registry table attributes. One item per user:
//
//	user_id  S  partition key
//	devices  L  of M {platform S ("ios"|"android"), token S, app S, locale S (omitted if empty)}
//
// One item per user makes resolving a campaign one BatchGetItem per 100 users, whatever the
// number of devices; a user's devices change together (a new install replaces the list).
const (
	attrUserID   = "user_id"
	attrDevices  = "devices"
	attrPlatform = "platform"
	attrToken    = "token"
	attrApp      = "app"
	attrLocale   = "locale"
)

// Registry resolves user IDs to devices from a DynamoDB table; it implements
// sender.Registry. It is safe for concurrent use.
type Registry struct {
	client *awsdynamodb.Client
	table  string
	opts   Options
}

var _ sender.Registry = (*Registry)(nil)

// NewRegistry returns a Registry over table (made by CreateTables, filled by LoadRegistry).
// It makes no call.
func NewRegistry(client *awsdynamodb.Client, table string, opts Options) (*Registry, error) {
	if table == "" {
		return nil, errors.New("dynamodb: registry table name is empty")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Registry{client: client, table: table, opts: opts.withDefaults()}, nil
}

// Devices returns, for each user ID in order, that user's devices: nil for an unknown user
// (or an empty ID), a non-nil (possibly empty) slice for a known one. Repeated IDs are
// fetched once. Keys go out in BatchGetItem calls of 100, Concurrency at once; keys
// DynamoDB leaves unprocessed are retried with backoff up to MaxAttempts, after which the
// whole call fails (and may be retried by the caller).
func (r *Registry) Devices(ctx context.Context, userIDs []string) ([][]sender.Device, error) {
	out := make([][]sender.Device, len(userIDs))
	pos := make(map[string][]int, len(userIDs)) // user ID -> its indices in userIDs
	unique := make([]string, 0, len(userIDs))
	for i, id := range userIDs {
		if id == "" {
			continue
		}
		if _, seen := pos[id]; !seen {
			unique = append(unique, id)
		}
		pos[id] = append(pos[id], i)
	}
	found := make([]map[string][]sender.Device, (len(unique)+MaxGetKeys-1)/MaxGetKeys)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.opts.Concurrency)
	for c := range found {
		ids := unique[c*MaxGetKeys : min((c+1)*MaxGetKeys, len(unique))]
		g.Go(func() error {
			var err error
			found[c], err = r.batchGet(gctx, ids)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, m := range found {
		for id, devs := range m {
			for _, i := range pos[id] {
				out[i] = devs
			}
		}
	}
	return out, nil
}

// Users calls fn with every user ID of the table, in no particular order: a paginated Scan
// that reads only the key. It stops at the first error from fn and returns it. It reads
// the whole table, so it is for tools (`salvo gen audience --from dynamodb://TABLE`), never
// for a send.
func (r *Registry) Users(ctx context.Context, fn func(userID string) error) error {
	p := awsdynamodb.NewScanPaginator(r.client, &awsdynamodb.ScanInput{
		TableName:                aws.String(r.table),
		ProjectionExpression:     aws.String("#u"),
		ExpressionAttributeNames: map[string]string{"#u": attrUserID},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("dynamodb: registry: scan %s: %w", r.table, err)
		}
		for _, item := range page.Items {
			if id := str(item[attrUserID]); id != "" {
				if err := fn(id); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// batchGet fetches up to 100 users, retrying unprocessed keys.
func (r *Registry) batchGet(ctx context.Context, ids []string) (map[string][]sender.Device, error) {
	keys := make([]map[string]types.AttributeValue, len(ids))
	for i, id := range ids {
		keys[i] = map[string]types.AttributeValue{attrUserID: &types.AttributeValueMemberS{Value: id}}
	}
	found := make(map[string][]sender.Device, len(ids))
	for attempt := 0; len(keys) > 0; attempt++ {
		if attempt > 0 {
			if attempt >= r.opts.MaxAttempts {
				return nil, fmt.Errorf("dynamodb: registry: %d keys still unprocessed after %d attempts", len(keys), attempt)
			}
			if err := r.opts.wait(ctx, attempt); err != nil {
				return nil, fmt.Errorf("dynamodb: registry: %w", err)
			}
		}
		res, err := r.client.BatchGetItem(ctx, &awsdynamodb.BatchGetItemInput{
			RequestItems: map[string]types.KeysAndAttributes{r.table: {
				Keys:                     keys,
				ConsistentRead:           aws.Bool(r.opts.ConsistentRead),
				ProjectionExpression:     aws.String("#u, #d"),
				ExpressionAttributeNames: map[string]string{"#u": attrUserID, "#d": attrDevices},
			}},
		})
		if err != nil {
			return nil, fmt.Errorf("dynamodb: registry: batch get: %w", err)
		}
		for _, item := range res.Responses[r.table] {
			id, devs, err := decodeUser(item)
			if err != nil {
				return nil, fmt.Errorf("dynamodb: registry: %w", err)
			}
			found[id] = devs
		}
		keys = res.UnprocessedKeys[r.table].Keys
	}
	return found, nil
}

// encodeUser renders one registry item.
func encodeUser(userID string, devices []sender.Device) (map[string]types.AttributeValue, error) {
	list := make([]types.AttributeValue, len(devices))
	for i, d := range devices {
		if d.Platform != sender.PlatformIOS && d.Platform != sender.PlatformAndroid {
			return nil, fmt.Errorf("user %q device %d: invalid platform %v", userID, i, d.Platform)
		}
		if d.Token == "" {
			return nil, fmt.Errorf("user %q device %d: empty token", userID, i)
		}
		m := map[string]types.AttributeValue{
			attrPlatform: &types.AttributeValueMemberS{Value: d.Platform.String()},
			attrToken:    &types.AttributeValueMemberS{Value: d.Token},
			attrApp:      &types.AttributeValueMemberS{Value: d.App},
		}
		if d.Locale != "" {
			m[attrLocale] = &types.AttributeValueMemberS{Value: d.Locale}
		}
		list[i] = &types.AttributeValueMemberM{Value: m}
	}
	return map[string]types.AttributeValue{
		attrUserID:  &types.AttributeValueMemberS{Value: userID},
		attrDevices: &types.AttributeValueMemberL{Value: list},
	}, nil
}

// decodeUser reads one registry item.
func decodeUser(item map[string]types.AttributeValue) (string, []sender.Device, error) {
	idv, ok := item[attrUserID].(*types.AttributeValueMemberS)
	if !ok {
		return "", nil, errors.New("registry item without a string user_id")
	}
	devs := []sender.Device{}
	lv, ok := item[attrDevices].(*types.AttributeValueMemberL)
	if !ok {
		return idv.Value, devs, nil
	}
	for i, v := range lv.Value {
		m, ok := v.(*types.AttributeValueMemberM)
		if !ok {
			return "", nil, fmt.Errorf("user %q device %d is not a map", idv.Value, i)
		}
		p, err := sender.ParsePlatform(str(m.Value[attrPlatform]))
		if err != nil {
			return "", nil, fmt.Errorf("user %q device %d: %w", idv.Value, i, err)
		}
		devs = append(devs, sender.Device{
			Platform: p,
			Token:    str(m.Value[attrToken]),
			App:      str(m.Value[attrApp]),
			Locale:   str(m.Value[attrLocale]),
		})
	}
	return idv.Value, devs, nil
}

// str returns a string attribute's value, "" for anything else.
func str(v types.AttributeValue) string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

// LoadRegistry writes users into the registry table: each calls its argument once per user
// (loadgen.RegistrySpec.Each fits). Items go out in BatchWriteItem calls of 25, up to 8 at
// once, unprocessed items retried with backoff; devices are encoded before fn returns, so
// each may reuse its slices. A user given twice ends with one of the two device lists.
// LoadRegistry returns how many users were written; on error, those written before it.
func LoadRegistry(ctx context.Context, client *awsdynamodb.Client, table string, each func(fn func(userID string, devices []sender.Device) error) error) (int, error) {
	return LoadRegistryOpts(ctx, client, table, Options{}, each)
}

// LoadRegistryOpts is LoadRegistry with Options (Concurrency bounds the calls in flight).
func LoadRegistryOpts(ctx context.Context, client *awsdynamodb.Client, table string, opts Options, each func(fn func(userID string, devices []sender.Device) error) error) (int, error) {
	if table == "" {
		return 0, errors.New("dynamodb: load registry: table name is empty")
	}
	if err := opts.Validate(); err != nil {
		return 0, err
	}
	opts = opts.withDefaults()
	var written atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Concurrency)
	batch := make([]types.WriteRequest, 0, MaxWriteItems)
	inBatch := make(map[string]bool, MaxWriteItems)
	flush := func() {
		reqs := batch
		g.Go(func() error {
			if err := writeBatch(gctx, client, table, opts, reqs); err != nil {
				return err
			}
			written.Add(int64(len(reqs)))
			return nil
		})
		batch = make([]types.WriteRequest, 0, MaxWriteItems)
		clear(inBatch)
	}
	err := each(func(userID string, devices []sender.Device) error {
		if err := gctx.Err(); err != nil {
			return err
		}
		if userID == "" {
			return errors.New("empty user ID")
		}
		item, err := encodeUser(userID, devices)
		if err != nil {
			return err
		}
		if inBatch[userID] { // one call may not name a key twice
			flush()
		}
		batch = append(batch, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
		inBatch[userID] = true
		if len(batch) == MaxWriteItems {
			flush()
		}
		return nil
	})
	if err == nil && len(batch) > 0 {
		flush()
	}
	werr := g.Wait()
	if err == nil {
		err = werr
	}
	if err != nil {
		return int(written.Load()), fmt.Errorf("dynamodb: load registry into %s: %w", table, err)
	}
	return int(written.Load()), nil
}

// writeBatch writes up to 25 items, retrying unprocessed ones.
func writeBatch(ctx context.Context, client *awsdynamodb.Client, table string, opts Options, reqs []types.WriteRequest) error {
	for attempt := 0; len(reqs) > 0; attempt++ {
		if attempt > 0 {
			if attempt >= opts.MaxAttempts {
				return fmt.Errorf("%d items still unprocessed after %d attempts", len(reqs), attempt)
			}
			if err := opts.wait(ctx, attempt); err != nil {
				return err
			}
		}
		out, err := client.BatchWriteItem(ctx, &awsdynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: reqs}})
		if err != nil {
			return fmt.Errorf("batch write: %w", err)
		}
		reqs = out.UnprocessedItems[table]
	}
	return nil
}
