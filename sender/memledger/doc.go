// Package memledger is Salvo's in-process delivery ledger, the embedded default behind
// sender.Ledger: per campaign, which recipients are claimed by a send loop (with a lease),
// and which are accepted, rejected or failed, so that a batch delivered twice never pushes a
// recipient twice and the campaign's counts come from one place.
//
// # Layout
//
// Recipients are grouped in words of 16. Per word, one 64-bit claim word holds the claimed
// bits, the tag of the owner holding them and the word's lease deadline (milliseconds,
// rounded up); one 64-bit state word holds an accepted, a rejected, a failed and a repeated
// (accepted more than once) bit per recipient. Claim, Renew, Finish and Release are lock-free (one atomic compare-and-swap
// per word touched) and allocate nothing in the steady state. Words come in chunks of
// 65,536 recipients (64 KiB) allocated when first touched; Reserve allocates ahead of a
// send. Counts reads counters that Finish and Redrive keep, so it costs nothing.
//
// # Leases are kept per word
//
// A word's deadline is the latest lease of the claims in it and is kept while any of its
// claimed bits is set. A claim thus never ends early, but an expired claim that shares a
// word with a later one (at most the first and last 15 recipients of a range) becomes
// claimable again only when the later lease also runs out, or when every other claim of
// the word is finished or released. Likewise Renew extends the whole word, other owners'
// claims in the range's first and last words included.
//
// # Owners
//
// Claims are exclusive whoever asks: a second Claim of a held recipient returns nothing,
// to its own holder too. Each owner gets a tag on first use (up to 1,022 per Ledger; later
// owners share one tag and lose the checks below). A word whose claims are all one owner's
// carries that owner's tag, and Release and Renew leave it alone when they come from
// someone else. A word holding claims of two owners (a range boundary) is shared: any
// owner may release or renew it. Renew returns sender.ErrLeaseLost when a claim it would
// renew has run out, and when the owner holds nothing in the range (all finished or
// released, or taken by others after running out). Finish records what it is told
// whatever the owner, drops the owner's claims, and drops anyone's claims on recipients
// that are now final.
//
// # Durability
//
// New keeps everything in memory. Open keeps an append-only journal of the changes that
// must survive a crash: Finish, Redrive and Forget are appended and synced (fdatasync on
// Linux) before they return, many concurrent callers sharing one sync (group commit: syncs
// start at most every JournalOptions.SyncGap, 2 ms by default, a sync's end wakes only the
// callers it carried, and up to two syncs overlap so that a slow wake-up does not stall the
// next batch); claims are not journaled, since leases die with the process. Records are
// length-prefixed and CRC-32C checksummed, and runs of consecutive recipients are stored as
// (start, length). The file is zero-filled 1 MiB ahead of the last record so that a sync
// writes data only, not a new size. On Open the journal is replayed up to the zeros; a torn
// or corrupt end is cut (see OpenJournal and Recovery). The
// journal grows with every change and is never compacted; Forget shrinks memory, not the
// file.
//
//	ledger, err := memledger.Open(filepath.Join(dataDir, "ledger.journal"))
//	if err != nil {
//		return err
//	}
//	defer ledger.Close()
//	ledger.Reserve("c42", 4_000_000)
//	ids, err := ledger.Claim(ctx, "c42", "worker-1/0", 1500, 500, 10*time.Second, ids[:0])
//	// push to ids, renewing the lease while it lasts ...
//	err = ledger.Renew(ctx, "c42", "worker-1/0", 1500, 500, 10*time.Second)
//	err = ledger.Finish(ctx, "c42", "worker-1/0", sender.RecipientAccepted, accepted)
//	err = ledger.Finish(ctx, "c42", "worker-1/0", sender.RecipientFailed, gaveUp)
//	changed, err := ledger.Redrive(ctx, "c42", 0, 4_000_000) // the failed ones, once more
package memledger
