package sqs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/salvopush/salvo/localstack/npmemu"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/sqs"
)

func TestMain(m *testing.M) { os.Exit(npmemu.Run(m)) }

// callCounter counts HTTP requests per SQS action (the X-Amz-Target header).
type callCounter struct {
	next  aws.HTTPClient
	calls map[string]*atomic.Int64
}

func (c *callCounter) Do(r *http.Request) (*http.Response, error) {
	action := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.")
	if n, ok := c.calls[action]; ok {
		n.Add(1)
	}
	return c.next.Do(r)
}

// env is one test's view of the emulator: an SQS client whose calls are counted.
type env struct {
	client *awssqs.Client
	calls  map[string]*atomic.Int64
}

func newEnv(t *testing.T) env {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith is newEnv with a fault injector between the client and the emulator.
func newEnvWith(t *testing.T, f *faults) env {
	t.Helper()
	ep := npmemu.Start(t)
	cfg, err := ep.AWSConfig().AWS(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]*atomic.Int64{}
	for _, a := range []string{"SendMessageBatch", "DeleteMessageBatch", "ReceiveMessage"} {
		calls[a] = new(atomic.Int64)
	}
	client := awssqs.NewFromConfig(cfg, func(o *awssqs.Options) {
		o.BaseEndpoint = aws.String(ep.SQS)
		o.HTTPClient = &callCounter{next: o.HTTPClient, calls: calls}
		if f != nil {
			f.next = o.HTTPClient
			o.HTTPClient = f
		}
	})
	return env{client: client, calls: calls}
}

// queue creates a queue with a name unique to the test and the given attributes, and opens it.
func (e env) queue(t *testing.T, fifo bool, attrs map[string]string) *sqs.Queue {
	return e.queueOpts(t, fifo, attrs, sqs.Options{})
}

// queueOpts is queue with Options.
func (e env) queueOpts(t *testing.T, fifo bool, attrs map[string]string, opts sqs.Options) *sqs.Queue {
	t.Helper()
	name := fmt.Sprintf("t%d", time.Now().UnixNano())
	if fifo {
		name += ".fifo"
		if attrs == nil {
			attrs = map[string]string{}
		}
		attrs["FifoQueue"] = "true"
	}
	if _, err := e.client.CreateQueue(t.Context(), &awssqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs}); err != nil {
		t.Fatalf("create queue: %v", err)
	}
	q, err := sqs.Open(t.Context(), e.client, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// drain receives until the queue answers empty, deleting what it gets, and returns the bodies.
func drain(t *testing.T, q *sqs.Queue) []string {
	t.Helper()
	var bodies []string
	for {
		msgs, err := q.Receive(t.Context(), 10, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			return bodies
		}
		receipts := make([]string, len(msgs))
		for i, m := range msgs {
			bodies = append(bodies, string(m.Body))
			receipts[i] = m.Receipt
		}
		if err := q.Delete(t.Context(), receipts); err != nil {
			t.Fatal(err)
		}
	}
}

func msg(body, group, dedup string) sender.OutMessage {
	return sender.OutMessage{Body: []byte(body), GroupID: group, DedupID: dedup}
}

func TestOpenMissingQueue(t *testing.T) {
	e := newEnv(t)
	if _, err := sqs.Open(t.Context(), e.client, "no-such-queue", sqs.Options{}); err == nil {
		t.Fatal("Open of a missing queue succeeded")
	}
}

func TestFIFODeduplication(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name  string
		sends [][]sender.OutMessage // each a Send call
		want  []string              // bodies received, in order
	}{
		// A second GO press: the same range message in two calls is delivered once.
		{"same id twice", [][]sender.OutMessage{{msg("r0", "c1", "c1-r0")}, {msg("r0", "c1", "c1-r0")}}, []string{"r0"}},
		// The same deduplication ID inside one batch also counts once.
		{"same id in one batch", [][]sender.OutMessage{{msg("a", "g", "x"), msg("b", "g", "x")}}, []string{"a"}},
		// Distinct IDs with the same body are distinct messages (content-based dedup is off).
		{"distinct ids", [][]sender.OutMessage{{msg("same", "g", "1"), msg("same", "g", "2")}}, []string{"same", "same"}},
		// Order within a group holds across batches.
		{"order across batches", [][]sender.OutMessage{{
			msg("0", "g", "0"), msg("1", "g", "1"), msg("2", "g", "2"), msg("3", "g", "3"), msg("4", "g", "4"),
			msg("5", "g", "5"), msg("6", "g", "6"), msg("7", "g", "7"), msg("8", "g", "8"), msg("9", "g", "9"),
			msg("10", "g", "10"), msg("11", "g", "11"),
		}}, []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := e.queue(t, true, nil)
			for _, s := range tt.sends {
				if err := q.Send(t.Context(), s); err != nil {
					t.Fatalf("send: %v", err)
				}
			}
			if got := drain(t, q); !slices.Equal(got, tt.want) {
				t.Errorf("received %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRedeliveryAfterVisibilityTimeout(t *testing.T) {
	e := newEnv(t)
	q := e.queue(t, false, map[string]string{"VisibilityTimeout": "1"})
	if err := q.Send(t.Context(), []sender.OutMessage{msg("batch-7", "", "")}); err != nil {
		t.Fatal(err)
	}
	first := receiveOne(t, q, 2*time.Second)
	if first.ReceiveCount != 1 {
		t.Errorf("first receive: ReceiveCount %d, want 1", first.ReceiveCount)
	}
	// Not deleted: it comes back once the 1 s visibility timeout has run out, as after a
	// worker was killed mid-batch.
	second := receiveOne(t, q, 5*time.Second)
	if second.ID != first.ID || second.ReceiveCount != 2 {
		t.Errorf("second receive: ID %s count %d, want ID %s count 2", second.ID, second.ReceiveCount, first.ID)
	}
	if err := q.Delete(t.Context(), []string{second.Receipt}); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, q); len(got) != 0 {
		t.Errorf("after delete the queue still held %q", got)
	}
}

func TestExtendVisibility(t *testing.T) {
	e := newEnv(t)
	q := e.queue(t, false, map[string]string{"VisibilityTimeout": "1"})
	if err := q.Send(t.Context(), []sender.OutMessage{msg("slow batch", "", "")}); err != nil {
		t.Fatal(err)
	}
	m := receiveOne(t, q, 2*time.Second)
	if err := q.ExtendVisibility(t.Context(), m.Receipt, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// Past the queue's 1 s timeout the extended message stays hidden.
	if got, err := q.Receive(t.Context(), 10, 2*time.Second); err != nil || len(got) != 0 {
		t.Fatalf("receive during the extension: %d messages, err %v; want none", len(got), err)
	}
	// Visibility 0 gives it back at once.
	if err := q.ExtendVisibility(t.Context(), m.Receipt, 0); err != nil {
		t.Fatal(err)
	}
	again := receiveOne(t, q, 2*time.Second)
	if again.ID != m.ID || again.ReceiveCount != 2 {
		t.Errorf("after release: ID %s count %d, want ID %s count 2", again.ID, again.ReceiveCount, m.ID)
	}
	if err := q.ExtendVisibility(t.Context(), m.Receipt, 13*time.Hour); err == nil {
		t.Error("ExtendVisibility beyond 12 h succeeded")
	}
}

// receiveOne long-polls until one message arrives or within passes.
func receiveOne(t *testing.T, q *sqs.Queue, within time.Duration) sender.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), within+5*time.Second)
	defer cancel()
	deadline := time.Now().Add(within)
	for {
		msgs, err := q.Receive(ctx, 1, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 1 {
			return msgs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message within %v", within)
		}
	}
}

func TestSendBatching(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name      string
		n, size   int // messages and body size
		wantCalls int64
	}{
		// 25 small messages: 10 + 10 + 5.
		{"25 small", 25, 100, 3},
		// 10 messages of 100 KiB: two fit under 256 KiB, so 5 calls.
		{"10 of 100 KiB", 10, 100 << 10, 5},
		// Exactly 10 messages: one call.
		{"10 small", 10, 1, 1},
		// Nothing to send: no call.
		{"none", 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := e.queue(t, false, nil)
			msgs := make([]sender.OutMessage, tt.n)
			for i := range msgs {
				body := fmt.Sprintf("%04d", i)
				msgs[i].Body = []byte(body + strings.Repeat("x", max(tt.size-len(body), 0)))
			}
			before := e.calls["SendMessageBatch"].Load()
			if err := q.Send(t.Context(), msgs); err != nil {
				t.Fatal(err)
			}
			if got := e.calls["SendMessageBatch"].Load() - before; got != tt.wantCalls {
				t.Errorf("SendMessageBatch calls: %d, want %d", got, tt.wantCalls)
			}
			got := drain(t, q)
			if len(got) != tt.n {
				t.Fatalf("received %d messages, want %d", len(got), tt.n)
			}
			slices.Sort(got)
			for i, b := range got {
				if !bytes.Equal([]byte(b), msgs[i].Body) {
					t.Fatalf("message %d differs", i)
				}
			}
		})
	}
}

func TestSendPartialFailure(t *testing.T) {
	e := newEnv(t)
	big := strings.Repeat("b", 300<<10) // over the queue's 256 KiB limit
	tests := []struct {
		name    string
		fifo    bool
		opts    sqs.Options
		msgs    []sender.OutMessage
		bad     []int    // indices that must be named in the error
		wantGot []string // bodies delivered
	}{
		// An oversized message fails alone; the messages around it are delivered.
		{"oversized", false, sqs.Options{}, []sender.OutMessage{msg("a", "", ""), msg(big, "", ""), msg("c", "", "")}, []int{1}, []string{"a", "c"}},
		// With a 1 MiB batch budget the oversized message shares a call with the others: SQS
		// fails that one entry and accepts the rest of the same call.
		{"oversized in a shared call", false, sqs.Options{MaxBatchBytes: 1 << 20}, []sender.OutMessage{msg("a", "", ""), msg(big, "", ""), msg("c", "", "")}, []int{1}, []string{"a", "c"}},
		// A body SQS cannot carry (a NUL byte) is refused before sending.
		{"invalid character", false, sqs.Options{}, []sender.OutMessage{msg("a", "", ""), msg("bad\x00", "", "")}, []int{1}, []string{"a"}},
		// FIFO messages need a group and a deduplication ID.
		{"fifo without ids", true, sqs.Options{}, []sender.OutMessage{msg("a", "g", "1"), msg("b", "", "2"), msg("c", "g", "")}, []int{1, 2}, []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := e.queueOpts(t, tt.fifo, map[string]string{"MaximumMessageSize": "262144"}, tt.opts)
			err := q.Send(t.Context(), tt.msgs)
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			t.Logf("error: %v", err)
			for _, i := range tt.bad {
				if !strings.Contains(err.Error(), fmt.Sprintf("entry %d:", i)) {
					t.Errorf("error does not name entry %d: %v", i, err)
				}
			}
			var ee *sqs.EntryError
			if !errors.As(err, &ee) {
				t.Errorf("error is not an *EntryError: %v", err)
			}
			got := drain(t, q)
			slices.Sort(got)
			if !slices.Equal(got, tt.wantGot) {
				t.Errorf("delivered %q, want %q", got, tt.wantGot)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	e := newEnv(t)
	q := e.queue(t, false, map[string]string{"VisibilityTimeout": "1"})
	msgs := make([]sender.OutMessage, 25)
	for i := range msgs {
		msgs[i].Body = []byte(fmt.Sprint(i))
	}
	if err := q.Send(t.Context(), msgs); err != nil {
		t.Fatal(err)
	}
	var receipts []string
	for len(receipts) < 25 {
		got, err := q.Receive(t.Context(), 10, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			t.Fatalf("received %d of 25", len(receipts))
		}
		for _, m := range got {
			receipts = append(receipts, m.Receipt)
		}
	}
	before := e.calls["DeleteMessageBatch"].Load()
	if err := q.Delete(t.Context(), receipts); err != nil {
		t.Fatal(err)
	}
	if got := e.calls["DeleteMessageBatch"].Load() - before; got != 3 {
		t.Errorf("DeleteMessageBatch calls: %d, want 3", got)
	}
	time.Sleep(1500 * time.Millisecond) // past the visibility timeout: deleted means gone
	if got := drain(t, q); len(got) != 0 {
		t.Errorf("%d messages came back after delete", len(got))
	}
	// (fauxqs accepts any receipt handle in DeleteMessageBatch, where SQS answers
	// ReceiptHandleIsInvalid; that path is covered by TestRetryServerSideFailures' shape.)
}

func TestCreateQueues(t *testing.T) {
	e := newEnv(t)
	suffix := fmt.Sprint(time.Now().UnixNano())
	fifo, std := "ranges-"+suffix+".fifo", "batches-"+suffix
	for range 2 { // the second run finds them and succeeds
		if err := sqs.CreateQueues(t.Context(), e.client, fifo, std); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		queue    string
		wantFIFO bool
	}{
		// The range queue is FIFO with content-based deduplication off.
		{"fifo", fifo, true},
		// The batch queue is a standard queue.
		{"standard", std, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := sqs.Open(t.Context(), e.client, tt.queue, sqs.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if q.FIFO() != tt.wantFIFO {
				t.Errorf("FIFO() = %v, want %v", q.FIFO(), tt.wantFIFO)
			}
			out, err := e.client.GetQueueAttributes(t.Context(), &awssqs.GetQueueAttributesInput{
				QueueUrl: aws.String(q.URL()), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll},
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := out.Attributes["FifoQueue"] == "true"; got != tt.wantFIFO {
				t.Errorf("FifoQueue attribute %q", out.Attributes["FifoQueue"])
			}
			if tt.wantFIFO && out.Attributes["ContentBasedDeduplication"] != "false" {
				t.Errorf("ContentBasedDeduplication %q, want false", out.Attributes["ContentBasedDeduplication"])
			}
		})
	}
}

// faults makes the next `left` calls of one batch action fail for their last entry with a
// server-side (retryable) error, the way SQS answers when part of a batch hits an internal
// error: the entry is stripped from the request the emulator sees and reported in the
// answer's Failed list.
type faults struct {
	next   aws.HTTPClient
	action string
	left   atomic.Int64
}

func (f *faults) Do(r *http.Request) (*http.Response, error) {
	if r.Header.Get("X-Amz-Target") != "AmazonSQS."+f.action || f.left.Add(-1) < 0 {
		return f.next.Do(r)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	var req map[string]any
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	entries := req["Entries"].([]any)
	victim := entries[len(entries)-1].(map[string]any)["Id"]
	failure := map[string]any{"Id": victim, "Code": "InternalError", "Message": "injected fault", "SenderFault": false}
	out := map[string]any{"Successful": []any{}, "Failed": []any{failure}}
	if len(entries) > 1 {
		req["Entries"] = entries[:len(entries)-1]
		nb, _ := json.Marshal(req)
		r2 := r.Clone(r.Context())
		r2.Body = io.NopCloser(bytes.NewReader(nb))
		r2.ContentLength = int64(len(nb))
		resp, err := f.next.Do(r2)
		if err != nil {
			return nil, err
		}
		rb, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(rb, &out); err != nil {
			return nil, fmt.Errorf("answer %q: %w", rb, err)
		}
		failed, _ := out["Failed"].([]any)
		out["Failed"] = append(failed, failure)
	}
	ob, _ := json.Marshal(out)
	return &http.Response{
		StatusCode:    200,
		Status:        "200 OK",
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body:          io.NopCloser(bytes.NewReader(ob)),
		ContentLength: int64(len(ob)),
		Request:       r,
	}, nil
}

func TestRetryServerSideFailures(t *testing.T) {
	tests := []struct {
		name     string
		action   string // batch action whose calls fail
		faults   int64  // calls that fail (one entry each)
		attempts int    // Options.MaxAttempts
		wantBad  int    // entries reported failed
	}{
		// Two faulted calls: the failed entries are retried and everything goes through.
		{"send recovers", "SendMessageBatch", 2, 0, 0},
		// Every call faulted and 3 attempts: the last entry of each of the 3 batches gives up.
		{"send gives up", "SendMessageBatch", 1000, 3, 3},
		// Deletes are retried the same way.
		{"delete recovers", "DeleteMessageBatch", 2, 0, 0},
		// And give up the same way.
		{"delete gives up", "DeleteMessageBatch", 1000, 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &faults{action: tt.action}
			e := newEnvWith(t, f)
			q := e.queueOpts(t, false, map[string]string{"VisibilityTimeout": "2"}, sqs.Options{MaxAttempts: tt.attempts, RetryBase: time.Millisecond})
			msgs := make([]sender.OutMessage, 25)
			for i := range msgs {
				msgs[i].Body = []byte(fmt.Sprintf("%02d", i))
			}
			f.left.Store(0)
			if tt.action == "SendMessageBatch" {
				f.left.Store(tt.faults)
			}
			err := q.Send(t.Context(), msgs)
			if tt.action == "SendMessageBatch" {
				checkBad(t, err, tt.wantBad)
			} else if err != nil {
				t.Fatal(err)
			}
			var receipts []string
			for {
				got, err := q.Receive(t.Context(), 10, time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) == 0 {
					break
				}
				for _, m := range got {
					receipts = append(receipts, m.Receipt)
				}
			}
			if tt.action == "SendMessageBatch" {
				if want := 25 - tt.wantBad; len(receipts) != want {
					t.Errorf("delivered %d messages, want %d", len(receipts), want)
				}
				return
			}
			f.left.Store(tt.faults)
			checkBad(t, q.Delete(t.Context(), receipts), tt.wantBad)
			f.left.Store(0)
			time.Sleep(2500 * time.Millisecond) // past the visibility timeout
			if got := drain(t, q); len(got) != tt.wantBad {
				t.Errorf("%d messages survived the delete, want %d", len(got), tt.wantBad)
			}
		})
	}
}

// checkBad checks that err reports exactly want retryable *EntryErrors.
func checkBad(t *testing.T, err error, want int) {
	t.Helper()
	if want == 0 {
		if err != nil {
			t.Fatalf("error %v, want none", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %d failed entries", want)
	}
	if got := strings.Count(err.Error(), "InternalError"); got != want {
		t.Errorf("error names %d failed entries, want %d: %v", got, want, err)
	}
	var ee *sqs.EntryError
	if !errors.As(err, &ee) || ee.SenderFault || ee.Code != "InternalError" {
		t.Errorf("error %v, want retryable *EntryErrors", err)
	}
}

// TestDepth: the queue's depth counts waiting messages, then in-flight ones once received.
func TestDepth(t *testing.T) {
	e := newEnv(t)
	q := e.queue(t, false, nil)
	if err := q.Send(t.Context(), []sender.OutMessage{msg("a", "", ""), msg("b", "", ""), msg("c", "", "")}); err != nil {
		t.Fatal(err)
	}
	if v, f, err := q.Depth(t.Context()); err != nil || v != 3 || f != 0 {
		t.Fatalf("Depth after 3 sends = %d visible, %d in flight, %v; want 3, 0", v, f, err)
	}
	receiveOne(t, q, 2*time.Second)
	if v, f, err := q.Depth(t.Context()); err != nil || v != 2 || f != 1 {
		t.Fatalf("Depth after a receive = %d visible, %d in flight, %v; want 2, 1", v, f, err)
	}
}
