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

// middleware sits between a test's DynamoDB client and the emulator.
type middleware interface {
	aws.HTTPClient
	// wrap gives the middleware the client it passes requests on to.
	wrap(next aws.HTTPClient)
}

// newEnv creates fresh tables; f, if not nil, sits between the client and the emulator.
func newEnv(t *testing.T, f middleware) env {
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
			f.wrap(o.HTTPClient)
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

func (u *unprocessed) wrap(next aws.HTTPClient) { u.next = next }

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

// lostAnswers makes the next `left` UpdateItem calls whose body contains `marker` reach the
// emulator and take effect, then lose their answer as a connection reset would: the SDK
// retries the call, which the first one's effect may make fail its condition.
type lostAnswers struct {
	next   aws.HTTPClient
	marker string
	left   atomic.Int64
}

func (l *lostAnswers) wrap(next aws.HTTPClient) { l.next = next }

func (l *lostAnswers) Do(r *http.Request) (*http.Response, error) {
	if r.Header.Get("X-Amz-Target") != "DynamoDB_20120810.UpdateItem" || r.Body == nil {
		return l.next.Do(r)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	r.Body.Close()
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := l.next.Do(r2)
	if err != nil || !bytes.Contains(body, []byte(l.marker)) || l.left.Add(-1) < 0 {
		return resp, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil, fmt.Errorf("read: connection reset by peer (the answer to a write that took effect)")
}
