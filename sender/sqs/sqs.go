package sqs

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"golang.org/x/sync/errgroup"

	"github.com/salvopush/salvo/sender"
)

// Limits of the SQS API.
const (
	// MaxBatchEntries is the most entries one SendMessageBatch or DeleteMessageBatch takes.
	MaxBatchEntries = 10
	// DefaultMaxBatchBytes is the batch payload limit Send packs to: 256 KiB, the limit every
	// SQS queue accepts (queues created with a larger MaximumMessageSize accept more).
	DefaultMaxBatchBytes = 256 << 10
	// MaxWait is the longest long-polling wait SQS allows.
	MaxWait = 20 * time.Second
	// MaxVisibility is the longest visibility timeout SQS allows (12 hours).
	MaxVisibility = 12 * time.Hour
)

// Options tune a Queue; the zero value is ready to use.
type Options struct {
	// MaxBatchBytes bounds the summed body size of one SendMessageBatch call
	// (0: DefaultMaxBatchBytes). A single larger message is sent alone and SQS judges it.
	MaxBatchBytes int
	// Concurrency bounds the batch calls one Send or Delete makes at once on a standard queue
	// (0: 8). FIFO queues always send one batch at a time, in order.
	Concurrency int
	// MaxAttempts bounds the tries of an entry that fails with a retryable (server-side)
	// error, first try included (0: 6). Entries SQS rejects as the sender's fault are not
	// retried.
	MaxAttempts int
	// RetryBase and RetryMax shape the full-jitter exponential backoff between tries
	// (0: 50ms and 2s).
	RetryBase time.Duration
	RetryMax  time.Duration
	// VisibilityTimeout, when above 0, is the visibility timeout Receive asks for (whole
	// seconds), instead of the queue's own setting.
	VisibilityTimeout time.Duration
}

// Validate reports the first bad field.
func (o Options) Validate() error {
	switch {
	case o.MaxBatchBytes < 0:
		return fmt.Errorf("sqs: Options.MaxBatchBytes %d is negative", o.MaxBatchBytes)
	case o.Concurrency < 0:
		return fmt.Errorf("sqs: Options.Concurrency %d is negative", o.Concurrency)
	case o.MaxAttempts < 0:
		return fmt.Errorf("sqs: Options.MaxAttempts %d is negative", o.MaxAttempts)
	case o.RetryBase < 0 || o.RetryMax < 0:
		return errors.New("sqs: Options.RetryBase and RetryMax must not be negative")
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.MaxBatchBytes == 0 {
		o.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if o.Concurrency == 0 {
		o.Concurrency = 8
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 6
	}
	if o.RetryBase == 0 {
		o.RetryBase = 50 * time.Millisecond
	}
	if o.RetryMax == 0 {
		o.RetryMax = 2 * time.Second
	}
	return o
}

// Queue is one SQS queue; it implements sender.Queue. It is safe for concurrent use and holds
// nothing that needs closing.
type Queue struct {
	client *awssqs.Client
	name   string
	url    string
	fifo   bool
	opts   Options
}

var _ sender.Queue = (*Queue)(nil)

// Open looks up the queue named queueName (GetQueueUrl) and returns it. The queue must exist
// (CreateQueues or the setup command makes it); a name ending in ".fifo" is a FIFO queue,
// whose messages need a GroupID and, since Salvo's FIFO queues have content-based
// deduplication off, a DedupID.
func Open(ctx context.Context, client *awssqs.Client, queueName string, opts Options) (*Queue, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	out, err := client.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String(queueName)})
	if err != nil {
		return nil, fmt.Errorf("sqs: open %q: %w", queueName, err)
	}
	return &Queue{
		client: client,
		name:   queueName,
		url:    aws.ToString(out.QueueUrl),
		fifo:   strings.HasSuffix(queueName, ".fifo"),
		opts:   opts.withDefaults(),
	}, nil
}

// URL returns the queue URL.
func (q *Queue) URL() string { return q.url }

// Name returns the queue name.
func (q *Queue) Name() string { return q.name }

// FIFO reports whether the queue is a FIFO queue.
func (q *Queue) FIFO() bool { return q.fifo }

// EntryError is the failure of one message (or receipt) of a batch call, after its retries.
// Send and Delete return every EntryError joined, wrapped; use errors.As to get one.
type EntryError struct {
	// Index is the message's index in Send's msgs, or the receipt's in Delete's receipts.
	Index int
	// Code and Message are SQS's; SenderFault says SQS blamed the request (not retried).
	Code        string
	Message     string
	SenderFault bool
}

// Error names the entry and SQS's reason.
func (e *EntryError) Error() string {
	return fmt.Sprintf("entry %d: %s: %s", e.Index, e.Code, e.Message)
}

// Send puts msgs on the queue in calls of at most 10 entries and MaxBatchBytes of bodies.
// Entries that fail on the server's side are retried with backoff; an entry rejected for good
// (too large, invalid characters, missing FIFO group) does not stop the others. Send returns
// nil when every message was accepted, else an error joining one *EntryError per failed
// message. On FIFO queues batches go out one after another so that order within a group
// holds; on standard queues up to Concurrency batches are in flight.
//
// Bodies must be valid UTF-8 text as SQS accepts it (no control characters other than tab,
// LF and CR); callers with binary payloads encode them.
func (q *Queue) Send(ctx context.Context, msgs []sender.OutMessage) error {
	var local []error
	ok := make([]int, 0, len(msgs)) // indices that passed local checks
	for i := range msgs {
		if err := q.check(i, &msgs[i]); err != nil {
			local = append(local, err)
			continue
		}
		ok = append(ok, i)
	}
	batches := q.pack(msgs, ok)
	errs := make([][]error, len(batches))
	g, gctx := errgroup.WithContext(ctx)
	if q.fifo {
		g.SetLimit(1)
	} else {
		g.SetLimit(q.opts.Concurrency)
	}
	for b, idx := range batches {
		g.Go(func() error {
			var err error
			errs[b], err = q.sendBatch(gctx, msgs, idx)
			return err
		})
	}
	err := g.Wait()
	if err != nil {
		return fmt.Errorf("sqs: send: %w", err)
	}
	for _, e := range errs {
		local = append(local, e...)
	}
	if len(local) > 0 {
		return fmt.Errorf("sqs: send to %s: %w", q.name, errors.Join(local...))
	}
	return nil
}

// check validates one message before it is sent.
func (q *Queue) check(i int, m *sender.OutMessage) error {
	if len(m.Body) == 0 {
		return &EntryError{Index: i, Code: "EmptyBody", Message: "message body is empty", SenderFault: true}
	}
	if !validBody(m.Body) {
		return &EntryError{Index: i, Code: "InvalidBody", Message: "body is not valid UTF-8 text SQS accepts", SenderFault: true}
	}
	if q.fifo && m.GroupID == "" {
		return &EntryError{Index: i, Code: "MissingGroupID", Message: "a FIFO queue needs a GroupID", SenderFault: true}
	}
	if q.fifo && m.DedupID == "" {
		return &EntryError{Index: i, Code: "MissingDedupID", Message: "a FIFO queue without content-based deduplication needs a DedupID", SenderFault: true}
	}
	return nil
}

// validBody reports whether b is UTF-8 made of the characters SQS allows: #x9 | #xA | #xD |
// #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
func validBody(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 {
			return false
		}
		switch {
		case r == 0x9 || r == 0xA || r == 0xD:
		case r >= 0x20 && r <= 0xD7FF:
		case r >= 0xE000 && r <= 0xFFFD:
		case r >= 0x10000 && r <= 0x10FFFF:
		default:
			return false
		}
		b = b[n:]
	}
	return true
}

// pack cuts the indices idx into batches of at most MaxBatchEntries entries and
// MaxBatchBytes of bodies, keeping order.
func (q *Queue) pack(msgs []sender.OutMessage, idx []int) [][]int {
	var batches [][]int
	var cur []int
	size := 0
	for _, i := range idx {
		n := len(msgs[i].Body)
		if len(cur) > 0 && (len(cur) == MaxBatchEntries || size+n > q.opts.MaxBatchBytes) {
			batches = append(batches, cur)
			cur, size = nil, 0
		}
		cur = append(cur, i)
		size += n
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}
	return batches
}

// sendBatch sends the messages msgs[idx...] in one call and retries the entries that failed
// on the server's side. It returns the entries that failed for good; the error is for a call
// that failed as a whole after the SDK's own retries (or a cancelled context).
func (q *Queue) sendBatch(ctx context.Context, msgs []sender.OutMessage, idx []int) ([]error, error) {
	return q.retryEntries(ctx, idx, func(ctx context.Context, pending []int) ([]types.BatchResultErrorEntry, error) {
		entries := make([]types.SendMessageBatchRequestEntry, len(pending))
		for k, i := range pending {
			m := &msgs[i]
			entries[k] = types.SendMessageBatchRequestEntry{
				Id:          aws.String(strconv.Itoa(i)),
				MessageBody: aws.String(string(m.Body)),
			}
			if q.fifo {
				entries[k].MessageGroupId = aws.String(m.GroupID)
				entries[k].MessageDeduplicationId = aws.String(m.DedupID)
			}
		}
		out, err := q.client.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: aws.String(q.url), Entries: entries})
		if err != nil {
			if len(pending) == 1 && !retryableCall(err) {
				// A call of one message that SQS refuses as a whole (too long) is that
				// message's failure: name it and let the others go on.
				return []types.BatchResultErrorEntry{{Id: entries[0].Id, Code: aws.String("Rejected"), Message: aws.String(err.Error()), SenderFault: true}}, nil
			}
			return nil, err
		}
		return out.Failed, nil
	})
}

// retryEntries makes call for the entries pending (indices into the caller's slice) and
// again, with backoff, for those that fail on the server's side, up to MaxAttempts. It
// returns an *EntryError per entry that failed for good; the error is for a call that
// failed as a whole.
func (q *Queue) retryEntries(ctx context.Context, pending []int, call func(context.Context, []int) ([]types.BatchResultErrorEntry, error)) ([]error, error) {
	var failed []error
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt > 0 {
			if err := sleep(ctx, backoff(q.opts.RetryBase, q.opts.RetryMax, attempt)); err != nil {
				return nil, err
			}
		}
		out, err := call(ctx, pending)
		if err != nil {
			return nil, fmt.Errorf("batch of %d from entry %d: %w", len(pending), pending[0], err)
		}
		var retry []int
		for _, f := range out {
			i, err := strconv.Atoi(aws.ToString(f.Id))
			if err != nil {
				return nil, fmt.Errorf("batch: unknown entry id %q in the answer", aws.ToString(f.Id))
			}
			e := &EntryError{Index: i, Code: aws.ToString(f.Code), Message: aws.ToString(f.Message), SenderFault: f.SenderFault}
			if f.SenderFault || attempt+1 >= q.opts.MaxAttempts {
				failed = append(failed, e)
				continue
			}
			retry = append(retry, i)
		}
		pending = retry
	}
	return failed, nil
}

// Receive waits up to wait (rounded down to whole seconds, at most 20 s; under a second
// means no waiting) for at most max (1..10) messages. It returns an empty slice when none
// came. Each message carries its ApproximateReceiveCount as ReceiveCount.
func (q *Queue) Receive(ctx context.Context, n int, wait time.Duration) ([]sender.Message, error) {
	if n < 1 || n > MaxBatchEntries {
		return nil, fmt.Errorf("sqs: receive: max %d is outside 1..%d", n, MaxBatchEntries)
	}
	wait = min(max(wait, 0), MaxWait)
	out, err := q.client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(q.url),
		MaxNumberOfMessages:         int32(n),
		WaitTimeSeconds:             int32(wait / time.Second),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
		VisibilityTimeout:           int32((q.opts.VisibilityTimeout + time.Second - 1) / time.Second),
	})
	if err != nil {
		return nil, fmt.Errorf("sqs: receive from %s: %w", q.name, err)
	}
	msgs := make([]sender.Message, len(out.Messages))
	for i, m := range out.Messages {
		n, _ := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
		msgs[i] = sender.Message{
			ID:           aws.ToString(m.MessageId),
			Body:         []byte(aws.ToString(m.Body)),
			Receipt:      aws.ToString(m.ReceiptHandle),
			ReceiveCount: n,
		}
	}
	return msgs, nil
}

// Delete removes received messages by receipt handle, in DeleteMessageBatch calls of 10 (up
// to Concurrency at once), retrying entries that fail on the server's side. Deleting a
// message twice with a valid receipt is not an error. It returns an error joining one
// *EntryError per receipt that could not be deleted (an expired or invalid receipt).
func (q *Queue) Delete(ctx context.Context, receipts []string) error {
	nb := (len(receipts) + MaxBatchEntries - 1) / MaxBatchEntries
	errs := make([][]error, nb)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(q.opts.Concurrency)
	for b := range nb {
		g.Go(func() error {
			lo := b * MaxBatchEntries
			hi := min(lo+MaxBatchEntries, len(receipts))
			var err error
			errs[b], err = q.deleteBatch(gctx, receipts, lo, hi)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("sqs: delete: %w", err)
	}
	var all []error
	for _, e := range errs {
		all = append(all, e...)
	}
	if len(all) > 0 {
		return fmt.Errorf("sqs: delete from %s: %w", q.name, errors.Join(all...))
	}
	return nil
}

// deleteBatch deletes receipts[lo:hi] in one call, retrying server-side entry failures.
func (q *Queue) deleteBatch(ctx context.Context, receipts []string, lo, hi int) ([]error, error) {
	idx := make([]int, 0, hi-lo)
	for i := lo; i < hi; i++ {
		idx = append(idx, i)
	}
	return q.retryEntries(ctx, idx, func(ctx context.Context, pending []int) ([]types.BatchResultErrorEntry, error) {
		entries := make([]types.DeleteMessageBatchRequestEntry, len(pending))
		for k, i := range pending {
			entries[k] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(receipts[i])}
		}
		out, err := q.client.DeleteMessageBatch(ctx, &awssqs.DeleteMessageBatchInput{QueueUrl: aws.String(q.url), Entries: entries})
		if err != nil {
			return nil, err
		}
		return out.Failed, nil
	})
}

// ExtendVisibility keeps a received message invisible for d from now (rounded up to whole
// seconds, at most 12 hours; 0 makes it visible again at once).
func (q *Queue) ExtendVisibility(ctx context.Context, receipt string, d time.Duration) error {
	if d < 0 || d > MaxVisibility {
		return fmt.Errorf("sqs: extend visibility: %v is outside 0..%v", d, MaxVisibility)
	}
	secs := int32((d + time.Second - 1) / time.Second)
	_, err := q.client.ChangeMessageVisibility(ctx, &awssqs.ChangeMessageVisibilityInput{
		QueueUrl:          aws.String(q.url),
		ReceiptHandle:     aws.String(receipt),
		VisibilityTimeout: secs,
	})
	if err != nil {
		return fmt.Errorf("sqs: extend visibility on %s: %w", q.name, err)
	}
	return nil
}

// Depth returns the queue's approximate number of messages waiting (visible) and received
// but not deleted (in flight), as SQS reports them (GetQueueAttributes; eventually
// consistent, for monitoring).
func (q *Queue) Depth(ctx context.Context) (visible, inFlight int64, err error) {
	out, err := q.client.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(q.url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		return 0, 0, fmt.Errorf("sqs: depth of %s: %w", q.name, err)
	}
	parse := func(name types.QueueAttributeName) int64 {
		n, _ := strconv.ParseInt(out.Attributes[string(name)], 10, 64) // absent or malformed: 0
		return n
	}
	return parse(types.QueueAttributeNameApproximateNumberOfMessages),
		parse(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible), nil
}

// CreateQueues creates the named queues if they do not exist and is a no-op for those that
// do with the same attributes. Names ending in ".fifo" become FIFO queues with content-based
// deduplication off (messages carry their own deduplication IDs). It is for the setup
// command; workers only Open.
func CreateQueues(ctx context.Context, client *awssqs.Client, names ...string) error {
	for _, name := range names {
		in := &awssqs.CreateQueueInput{QueueName: aws.String(name)}
		if strings.HasSuffix(name, ".fifo") {
			in.Attributes = map[string]string{
				string(types.QueueAttributeNameFifoQueue):                 "true",
				string(types.QueueAttributeNameContentBasedDeduplication): "false",
			}
		}
		if _, err := client.CreateQueue(ctx, in); err != nil {
			return fmt.Errorf("sqs: create queue %q: %w", name, err)
		}
	}
	return nil
}

// SetRedrive gives queue a redrive policy: a message received maxReceives times without
// being deleted moves to dlq (which must exist). It replaces any policy queue had.
func SetRedrive(ctx context.Context, client *awssqs.Client, queue, dlq string, maxReceives int) error {
	if maxReceives < 1 {
		return fmt.Errorf("sqs: redrive %q: maxReceives %d must be at least 1", queue, maxReceives)
	}
	url := func(name string) (string, error) {
		out, err := client.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String(name)})
		if err != nil {
			return "", fmt.Errorf("sqs: queue %q: %w", name, err)
		}
		return aws.ToString(out.QueueUrl), nil
	}
	dlqURL, err := url(dlq)
	if err != nil {
		return err
	}
	attrs, err := client.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(dlqURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		return fmt.Errorf("sqs: queue %q: arn: %w", dlq, err)
	}
	arn := attrs.Attributes[string(types.QueueAttributeNameQueueArn)]
	if arn == "" {
		return fmt.Errorf("sqs: queue %q: no ARN", dlq)
	}
	qURL, err := url(queue)
	if err != nil {
		return err
	}
	policy := fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`, arn, maxReceives)
	_, err = client.SetQueueAttributes(ctx, &awssqs.SetQueueAttributesInput{QueueUrl: aws.String(qURL),
		Attributes: map[string]string{string(types.QueueAttributeNameRedrivePolicy): policy}})
	if err != nil {
		return fmt.Errorf("sqs: queue %q: set redrive policy: %w", queue, err)
	}
	return nil
}

// retryableCall reports whether a failed call might succeed if made again (the SDK already
// retried it): requests SQS refused as the client's fault (malformed, too large) are not.
func retryableCall(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorFault() == smithy.FaultClient {
		return false
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		s := re.HTTPStatusCode()
		return s == 429 || s >= 500
	}
	return true
}

// backoff returns a full-jitter delay for the given retry attempt (1, 2, ...).
func backoff(base, limit time.Duration, attempt int) time.Duration {
	d := limit
	if attempt < 30 && base<<attempt < limit {
		d = base << attempt
	}
	return rand.N(d) + 1
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
