// Package memledger is Salvo's in-process delivery ledger, the embedded default behind
// sender.Ledger: per campaign, which recipients are claimed by a send worker (with a lease)
// and which are done, so that a batch delivered twice never pushes a recipient twice.
//
// Claims, Done and Release are lock-free: a claimed bit and a done bit per recipient, packed
// in words of 24 recipients with the word's lease deadline, changed with atomic
// compare-and-swap. Campaigns grow on first use; Reserve allocates ahead of a send.
//
//	ledger := memledger.New()
//	ledger.Reserve("c42", 4_000_000)
//	ids, err := ledger.Claim(ctx, "c42", 1500, 500, 2*time.Minute, ids[:0])
//	// push to ids ...
//	err = ledger.Done(ctx, "c42", accepted)   // never claimed again
//	err = ledger.Release(ctx, "c42", failed) // claimable again at once
package memledger
