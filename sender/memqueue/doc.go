// Package memqueue is Salvo's in-process queue: the embedded default behind sender.Queue,
// with the SQS semantics the pipeline relies on.
//
// A standard queue delivers in roughly send order with no deduplication. A FIFO queue
// (Config.FIFO) needs a DedupID and a GroupID on every message: a DedupID seen within the
// deduplication window (5 minutes by default) is accepted and dropped, even if its first
// message was already deleted; messages of one group come in send order, and none while an
// earlier message of the group is in flight. Both kinds hand out at most 10 messages per
// Receive, hide received messages for the visibility timeout, deliver them again with
// ReceiveCount incremented unless deleted, and long-poll: a waiting Receive returns as soon
// as a message is sent or times out back into view.
//
// Receipts are "<message ID>.<receive count>"; only the latest receipt of a message acts.
// A Delete with an older one deletes nothing and succeeds (Stats counts it), so Delete is
// idempotent.
//
// The Queue owns no goroutines; Close wakes waiting receivers and discards the messages.
//
//	q, err := memqueue.New(memqueue.Config{FIFO: true})
//	if err != nil {
//		return err
//	}
//	defer q.Close()
//	err = q.Send(ctx, []sender.OutMessage{{Body: body, GroupID: "c42", DedupID: "c42/range/0"}})
//	...
//	msgs, err := q.Receive(ctx, 10, 20*time.Second)
//	...
//	err = q.Delete(ctx, []string{msgs[0].Receipt})
package memqueue
