package memledger_test

import (
	"context"
	"fmt"
	"time"

	"github.com/salvopush/salvo/sender/memledger"
)

// A batch message delivered twice: the second delivery finds nothing left to push.
func Example() {
	ctx := context.Background()
	ledger := memledger.New()

	first, _ := ledger.Claim(ctx, "c42", 0, 5, time.Minute, nil)
	fmt.Println("first delivery pushes", first)
	_ = ledger.Done(ctx, "c42", first[:3])    // accepted
	_ = ledger.Release(ctx, "c42", first[3:]) // failed for good this time

	second, _ := ledger.Claim(ctx, "c42", 0, 5, time.Minute, nil)
	fmt.Println("second delivery pushes", second)
	// Output:
	// first delivery pushes [0 1 2 3 4]
	// second delivery pushes [3 4]
}
