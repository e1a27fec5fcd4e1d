package metrics

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestRecordLatencyClampsToTheRange(t *testing.T) {
	t.Parallel()
	h := NewLatencyHistogram()
	RecordLatency(h, -time.Second)  // before the press: 1 µs
	RecordLatency(h, 0)             // 1 µs
	RecordLatency(h, 2*time.Hour)   // beyond the range: 1 hour
	RecordLatency(h, 3*time.Second) // in range
	if h.TotalCount() != 4 {
		t.Fatalf("count = %d, want 4: no sample may be dropped", h.TotalCount())
	}
	if h.Min() != 1 {
		t.Errorf("min = %d µs, want 1", h.Min())
	}
	if !h.ValuesAreEquivalent(h.Max(), int64(time.Hour/time.Microsecond)) {
		t.Errorf("max = %d µs, want 1 hour", h.Max())
	}
}

func TestLatencyMatchesHdrHistogram(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	want := NewLatencyHistogram()
	c := &Latency{}
	record := func(d time.Duration) {
		RecordLatency(want, d)
		c.Record(d)
	}
	// Edges: below the range, the exact range's ends, each power of two, the top and beyond.
	for _, us := range []int64{-5, 0, 1, 2047, 2048, 2049, 4095, 4096, 1 << 20, 1<<31 + 12345, 3_599_999_999, 3_600_000_000, 1 << 40} {
		record(time.Duration(us) * time.Microsecond)
	}
	for range 100000 {
		record(time.Duration(rng.Int64N(int64(20 * time.Second))))
	}
	got := c.Histogram()
	if !slices.Equal(got.Export().Counts, want.Export().Counts) || got.TotalCount() != want.TotalCount() {
		t.Fatalf("counts differ: total %d, want %d", got.TotalCount(), want.TotalCount())
	}
	merged := NewLatencyHistogram()
	MergeLatency(merged, want)
	MergeLatency(merged, NewLatencyHistogram()) // empty: no-op
	if !slices.Equal(merged.Export().Counts, want.Export().Counts) {
		t.Fatal("MergeLatency: counts differ")
	}
	if merged.ValueAtQuantile(99) != want.ValueAtQuantile(99) || merged.Max() != want.Max() {
		t.Fatal("MergeLatency: quantiles differ")
	}
}

// TestWorkerStatsMergesLoops checks that Worker.Stats adds up every loop's figures and that
// ResetStats clears them.

func BenchmarkRecordLatency(b *testing.B) {
	h := NewLatencyHistogram()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		RecordLatency(h, time.Duration(i%5000)*time.Millisecond)
	}
}
