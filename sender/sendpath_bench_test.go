package sender

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// acceptAll is a Transport that accepts every notification at once.
type acceptAll struct{}

func (acceptAll) Send(_ context.Context, b *Batch) error {
	now := time.Now()
	for i := range b.Results {
		b.Results[i] = Result{Outcome: Accepted, Status: 200, At: now}
	}
	return nil
}

func (acceptAll) Close() error { return nil }

// openLedger is a Ledger that hands out every recipient and remembers nothing: the
// benchmark measures the send loop, not a ledger.
type openLedger struct{}

func (openLedger) Claim(_ context.Context, _, _ string, start, n uint32, _ time.Duration, dst []uint32) ([]uint32, error) {
	for i := range n {
		dst = append(dst, start+i)
	}
	return dst, nil
}
func (openLedger) Renew(context.Context, string, string, uint32, uint32, time.Duration) error {
	return nil
}
func (openLedger) Finish(context.Context, string, string, RecipientState, []uint32) error { return nil }
func (openLedger) Release(context.Context, string, string, []uint32) error                { return nil }
func (openLedger) Remaining(context.Context, string, uint32, uint32) (int, error)         { return 0, nil }
func (openLedger) Redrive(context.Context, string, uint32, uint32) (int, error)           { return 0, nil }
func (openLedger) Counts(context.Context, string) (LedgerCounts, error)                   { return LedgerCounts{}, nil }

// BenchmarkSendBatch is the send loop's own cost per notification (claim, token slices,
// the results loop and statistics, done) around a transport that costs nothing: one op is
// one batch message of 500 iOS recipients. Allocations are per batch.
func BenchmarkSendBatch(b *testing.B) {
	const n = 500
	var sh shardData
	for i := range n {
		sh.tokens = fmt.Appendf(sh.tokens, "%064x", i)
		sh.ends = append(sh.ends, uint32(len(sh.tokens)))
	}
	pre := newPreloaded(Manifest{Campaign: "c1", Recipients: n,
		Segments: []Segment{{Platform: PlatformIOS, App: "com.example.app", Start: 0, Count: n}}}, []shardData{sh})
	spec := CampaignSpec{Name: "bench", Message: MessageSpec{APNs: &APNsSpec{Payload: json.RawMessage(`{"aps":{"content-available":1}}`)}}}
	w, err := NewWorker(WorkerConfig{Objects: nopObjects{}, Records: nopRecords{}, Ledger: openLedger{},
		Batches: nopQueue{}, DeadLetters: nopQueue{}, Transports: map[Platform]Transport{PlatformIOS: acceptAll{}}, Send: 1})
	if err != nil {
		b.Fatal(err)
	}
	w.campaigns["c1"] = &loaded{spec: spec, manifest: pre.Manifest, pre: pre, rendered: map[int]*Batch{}}
	body, err := json.Marshal(BatchMessage{Campaign: "c1", Send: "s1", PressedAt: time.Now().UnixNano(), Start: 0, Count: n})
	if err != nil {
		b.Fatal(err)
	}
	m := Message{ID: "m1", Body: body, Receipt: "r1"}
	s := newSender(w, 0)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if !s.handle(ctx, ctx, m) {
			b.Fatal("batch not finished")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/notification")
}

// nopObjects, nopRecords and nopQueue satisfy WorkerConfig for the benchmark; the send path
// does not touch them.
type nopObjects struct{}

func (nopObjects) Put(context.Context, string, []byte) error      { return nil }
func (nopObjects) Get(context.Context, string) ([]byte, error)    { return nil, ErrNotFound }
func (nopObjects) List(context.Context, string) ([]string, error) { return nil, nil }

type nopRecords struct{}

func (nopRecords) Get(context.Context, string) (Record, error) { return Record{}, ErrNotFound }
func (nopRecords) CompareAndSwap(context.Context, string, int64, []byte) (int64, error) {
	return 1, nil
}
func (nopRecords) List(context.Context, string) ([]Record, error) { return nil, nil }

type nopQueue struct{}

func (nopQueue) Send(context.Context, []OutMessage) error                       { return nil }
func (nopQueue) Receive(context.Context, int, time.Duration) ([]Message, error) { return nil, nil }
func (nopQueue) Delete(context.Context, []string) error                         { return nil }
func (nopQueue) ExtendVisibility(context.Context, string, time.Duration) error  { return nil }
