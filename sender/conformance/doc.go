// Package conformance holds the behaviour every implementation of a seam in package sender
// must show, as test suites that each implementation's tests run against its own
// constructor: Ledger (sender/memledger in memory and on a journal, sender/dynamodb),
// Queue (sender/memqueue, sender/sqs), RecordStore (sender/localstore, sender/dynamodb)
// and ObjectStore (sender/localstore, sender/s3). A suite checks what the seam's doc
// comment promises, so that two implementations cannot disagree on it unnoticed; what
// only one implementation does (word-granular leases, receipts, file layouts) stays in that
// implementation's own tests.
//
// Suites never assert on wall-clock time. Ledger suites drive leases with a clock they
// control; Queue suites move time through the implementation's Advance (a fake clock for
// memqueue, a real wait for SQS, whose visibility timeouts are whole seconds).
//
//	func TestLedgerConformance(t *testing.T) {
//		conformance.Ledger(t, func(t *testing.T, clock func() time.Time) sender.Ledger {
//			return memledger.NewWithClock(clock)
//		})
//	}
package conformance
