package memledger_test

import (
	"context"
	"fmt"
	"time"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/memledger"
)

// A batch message delivered twice: the second delivery finds nothing left to push while the
// first holds the batch, and only what the first gave back once it is done.
func Example() {
	ctx := context.Background()
	ledger := memledger.New()

	first, _ := ledger.Claim(ctx, "c42", "loop-1", 0, 5, time.Minute, nil)
	fmt.Println("first delivery pushes", first)
	again, _ := ledger.Claim(ctx, "c42", "loop-2", 0, 5, time.Minute, nil)
	fmt.Println("second delivery meanwhile pushes", again)

	_ = ledger.Finish(ctx, "c42", "loop-1", sender.RecipientAccepted, first[:3])
	_ = ledger.Finish(ctx, "c42", "loop-1", sender.RecipientRejected, first[3:4])
	_ = ledger.Release(ctx, "c42", "loop-1", first[4:]) // not tried this time

	later, _ := ledger.Claim(ctx, "c42", "loop-2", 0, 5, time.Minute, nil)
	fmt.Println("a later delivery pushes", later)
	counts, _ := ledger.Counts(ctx, "c42")
	fmt.Printf("%+v\n", counts)
	// Output:
	// first delivery pushes [0 1 2 3 4]
	// second delivery meanwhile pushes []
	// a later delivery pushes [4]
	// {Accepted:3 Rejected:1 Failed:0 Repeated:0}
}
