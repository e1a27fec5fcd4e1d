package memqueue_test

import (
	"context"
	"fmt"
	"time"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/memqueue"
)

// A second GO press sends the same ranges with the same deduplication IDs; the queue drops
// them.
func Example() {
	ctx := context.Background()
	q, err := memqueue.New(memqueue.Config{FIFO: true})
	if err != nil {
		panic(err)
	}
	defer q.Close()

	press := []sender.OutMessage{
		{Body: []byte("range 0"), GroupID: "c42", DedupID: "c42/0"},
		{Body: []byte("range 1"), GroupID: "c42", DedupID: "c42/1"},
	}
	for range 2 {
		if err := q.Send(ctx, press); err != nil {
			panic(err)
		}
	}
	msgs, err := q.Receive(ctx, 10, time.Second)
	if err != nil {
		panic(err)
	}
	for _, m := range msgs {
		fmt.Printf("%s (received %d time)\n", m.Body, m.ReceiveCount)
	}
	if err := q.Delete(ctx, []string{msgs[0].Receipt, msgs[1].Receipt}); err != nil {
		panic(err)
	}
	fmt.Printf("%+v\n", q.Stats())
	// Output:
	// range 0 (received 1 time)
	// range 1 (received 1 time)
	// {Visible:0 InFlight:0 Deduplicated:2 Redelivered:0 StaleDeletes:0}
}
