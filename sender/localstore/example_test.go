package localstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/localstore"
)

// Two presses of GO race to move a campaign to sending; one wins.
func ExampleRecords_CompareAndSwap() {
	ctx := context.Background()
	records := localstore.NewRecords()
	v, _ := records.CompareAndSwap(ctx, "campaigns/c42", 0, []byte(`{"state":"ready"}`))
	for press := 1; press <= 2; press++ {
		_, err := records.CompareAndSwap(ctx, "campaigns/c42", v, []byte(`{"state":"sending"}`))
		fmt.Printf("press %d: conflict=%v\n", press, errors.Is(err, sender.ErrConflict))
	}
	// Output:
	// press 1: conflict=false
	// press 2: conflict=true
}

func ExampleStore() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "objects")
	defer os.RemoveAll(dir)
	objects, err := localstore.Open(dir)
	if err != nil {
		panic(err)
	}
	for _, k := range []string{"campaigns/c42/shard-1", "campaigns/c42/manifest.json", "feedback/c42"} {
		if err := objects.Put(ctx, k, []byte("...")); err != nil {
			panic(err)
		}
	}
	keys, _ := objects.List(ctx, "campaigns/")
	fmt.Println(keys)
	_, err = objects.Get(ctx, "campaigns/c7/manifest.json")
	fmt.Println(errors.Is(err, sender.ErrNotFound))
	// Output:
	// [campaigns/c42/manifest.json campaigns/c42/shard-1]
	// true
}
