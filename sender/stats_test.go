package sender

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/salvopush/salvo/results"
)

// TestLatencyCountsMatchHdrHistogram records the same latencies into a worker's latencyCounts
// and into a results.NewLatencyHistogram: the histogram built from the counts, and one
// merged through mergeLatency, hold exactly the same counts.
func TestLatencyCountsMatchHdrHistogram(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	want := results.NewLatencyHistogram()
	c := &latencyCounts{}
	record := func(d time.Duration) {
		results.RecordLatency(want, d)
		c.record(d)
	}
	// Edges: below the range, the exact range's ends, each power of two, the top and beyond.
	for _, us := range []int64{-5, 0, 1, 2047, 2048, 2049, 4095, 4096, 1 << 20, 1<<31 + 12345, 3_599_999_999, 3_600_000_000, 1 << 40} {
		record(time.Duration(us) * time.Microsecond)
	}
	for range 100000 {
		record(time.Duration(rng.Int64N(int64(20 * time.Second))))
	}
	got := c.histogram()
	if !slices.Equal(got.Export().Counts, want.Export().Counts) || got.TotalCount() != want.TotalCount() {
		t.Fatalf("counts differ: total %d, want %d", got.TotalCount(), want.TotalCount())
	}
	merged := results.NewLatencyHistogram()
	mergeLatency(merged, want)
	mergeLatency(merged, results.NewLatencyHistogram()) // empty: no-op
	if !slices.Equal(merged.Export().Counts, want.Export().Counts) {
		t.Fatal("mergeLatency: counts differ")
	}
	if merged.ValueAtQuantile(99) != want.ValueAtQuantile(99) || merged.Max() != want.Max() {
		t.Fatal("mergeLatency: quantiles differ")
	}
}

// TestWorkerStatsMergesLoops checks that Worker.Stats adds up every loop's figures and that
// ResetStats clears them.
func TestWorkerStatsMergesLoops(t *testing.T) {
	t.Parallel()
	w := &Worker{stats: []*loopStats{newLoopStats(), newLoopStats()}, latency: &latencyCounts{}}
	for i, d := range []time.Duration{3 * time.Second, 10 * time.Millisecond, 5 * time.Second} {
		w.stats[i/2].accept(d)
		w.latency.record(d)
	}
	w.stats[1].reject(time.Second, "Unregistered")
	w.stats[1].transientResult("TooManyRequests")
	w.stats[1].retries, w.stats[0].failed = 2, 1
	st := w.Stats()
	if st.Accepted != 3 || st.Latency.TotalCount() != 3 || st.Rejected["Unregistered"] != 1 ||
		st.Transient["TooManyRequests"] != 1 || st.Retries != 2 || st.Failed != 1 || st.Done() != 5 {
		t.Fatalf("merged: %+v", st)
	}
	if acc, rej := st.Timeline.Totals(); acc != 3 || rej != 1 {
		t.Fatalf("timeline totals %d, %d", acc, rej)
	}
	if got := st.Latency.Max(); got < 4_990_000 || got > 5_010_000 {
		t.Fatalf("max latency %d µs", got)
	}
	w.ResetStats()
	if st := w.Stats(); st.Done() != 0 || st.Latency.TotalCount() != 0 {
		t.Fatalf("after reset: %+v", st)
	}
}

// BenchmarkWorkerStats is the cost of one Worker.Stats over 64 send loops that each hold
// latencies spread over ten seconds (what the benchmark harness polls 20 times a second).
func BenchmarkWorkerStats(b *testing.B) {
	w := &Worker{latency: &latencyCounts{}}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 64 {
		l := newLoopStats()
		for range 8000 {
			d := time.Duration(rng.Int64N(int64(10 * time.Second)))
			l.accept(d)
			w.latency.record(d)
		}
		w.stats = append(w.stats, l)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_ = w.Stats()
	}
}
