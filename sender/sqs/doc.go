// Package sqs implements sender.Queue on Amazon SQS (aws-sdk-go-v2, AWS JSON protocol).
//
// Salvo uses two queues: a FIFO queue of range messages, whose 5-minute deduplication
// window turns a second GO press into a no-op, and a standard queue of batch messages. Open
// looks a queue up by name; CreateQueues (for the setup command) makes them.
//
//	q, err := sqs.Open(ctx, clients.SQS, "salvo-ranges.fifo", sqs.Options{})
//	if err != nil {
//		return err
//	}
//	// GroupID and DedupID are required on FIFO queues.
//	err = q.Send(ctx, []sender.OutMessage{{Body: body, GroupID: campaign, DedupID: campaign + "/r0"}})
//
//	msgs, err := q.Receive(ctx, 10, 20*time.Second) // long polling
//	...
//	err = q.Delete(ctx, receipts)
//
// Send cuts messages into SendMessageBatch calls of at most 10 entries and 256 KiB and
// retries entries that fail on the server's side; Delete does the same with
// DeleteMessageBatch. Entries that fail for good come back as *EntryError values joined in
// the returned error, naming the entry's index.
package sqs
