package dynamodb_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/salvopush/salvo/localstack/npmemu"
	"github.com/salvopush/salvo/sender/dynamodb"
)

func TestMain(m *testing.M) { os.Exit(npmemu.Run(m)) }

// env is one test's DynamoDB client, its call counts per action, and fresh tables.
type env struct {
	client *awsdynamodb.Client
	calls  map[string]*atomic.Int64
	tables dynamodb.Tables
}

// newEnv creates fresh tables; f, if not nil, sits between the client and the emulator.
func newEnv(t *testing.T, f *unprocessed) env {
	t.Helper()
	ep := npmemu.Start(t)
	cfg, err := ep.AWSConfig().AWS(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]*atomic.Int64{}
	for _, a := range []string{"BatchGetItem", "BatchWriteItem", "UpdateItem", "PutItem", "Query", "Scan"} {
		calls[a] = new(atomic.Int64)
	}
	client := awsdynamodb.NewFromConfig(cfg, func(o *awsdynamodb.Options) {
		o.BaseEndpoint = aws.String(ep.DynamoDB)
		o.HTTPClient = &counter{next: o.HTTPClient, calls: calls}
		if f != nil {
			f.next = o.HTTPClient
			o.HTTPClient = f
		}
	})
	id := time.Now().UnixNano()
	tables := dynamodb.Tables{
		Registry: fmt.Sprintf("registry-%d", id),
		Records:  fmt.Sprintf("records-%d", id),
		Ledger:   fmt.Sprintf("ledger-%d", id),
	}
	if err := dynamodb.CreateTables(t.Context(), client, tables); err != nil {
		t.Fatal(err)
	}
	return env{client: client, calls: calls, tables: tables}
}

// counter counts requests per DynamoDB action (the X-Amz-Target header).
type counter struct {
	next  aws.HTTPClient
	calls map[string]*atomic.Int64
}

func (c *counter) Do(r *http.Request) (*http.Response, error) {
	if n, ok := c.calls[strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")]; ok {
		n.Add(1)
	}
	return c.next.Do(r)
}

// unprocessed makes the next `left` BatchGetItem / BatchWriteItem calls leave their last
// `keep` keys or items unprocessed, as DynamoDB does when a call is throttled or its answer
// too large: they are stripped from the request the emulator sees and handed back as
// UnprocessedKeys / UnprocessedItems.
type unprocessed struct {
	next aws.HTTPClient
	keep int
	left atomic.Int64
}

func (u *unprocessed) Do(r *http.Request) (*http.Response, error) {
	action := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	if (action != "BatchGetItem" && action != "BatchWriteItem") || u.left.Add(-1) < 0 {
		return u.next.Do(r)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	var req struct {
		RequestItems map[string]json.RawMessage
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	left := map[string]any{}
	for table, raw := range req.RequestItems {
		if action == "BatchGetItem" {
			var ka map[string]any
			_ = json.Unmarshal(raw, &ka)
			keys := ka["Keys"].([]any)
			k := min(u.keep, len(keys)-1)
			rest := map[string]any{}
			for f, v := range ka {
				rest[f] = v
			}
			rest["Keys"] = keys[len(keys)-k:]
			ka["Keys"] = keys[:len(keys)-k]
			left[table] = rest
			req.RequestItems[table], _ = json.Marshal(ka)
		} else {
			var reqs []any
			_ = json.Unmarshal(raw, &reqs)
			k := min(u.keep, len(reqs)-1)
			left[table] = reqs[len(reqs)-k:]
			req.RequestItems[table], _ = json.Marshal(reqs[:len(reqs)-k])
		}
	}
	nb, _ := json.Marshal(req)
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(nb))
	r2.ContentLength = int64(len(nb))
	resp, err := u.next.Do(r2)
	if err != nil {
		return nil, err
	}
	rb, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(rb, &out); err != nil {
		return nil, fmt.Errorf("answer %q: %w", rb, err)
	}
	if action == "BatchGetItem" {
		out["UnprocessedKeys"] = left
	} else {
		out["UnprocessedItems"] = left
	}
	ob, _ := json.Marshal(out)
	resp.Body = io.NopCloser(bytes.NewReader(ob))
	resp.ContentLength = int64(len(ob))
	resp.Header.Set("X-Amz-Crc32", fmt.Sprint(crc32.ChecksumIEEE(ob))) // the body changed
	resp.Header.Set("Content-Length", fmt.Sprint(len(ob)))
	return resp, nil
}
