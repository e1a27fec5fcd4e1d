package sender

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/salvopush/salvo/sender/metrics"
)

// TestWorkerStatsMergesLoops checks that Worker.Stats adds up every loop's figures and that
// ResetStats clears them.
func TestWorkerStatsMergesLoops(t *testing.T) {
	t.Parallel()
	w := &Worker{stats: []*loopStats{newLoopStats(), newLoopStats()}, latency: &metrics.Latency{}}
	for i, d := range []time.Duration{3 * time.Second, 10 * time.Millisecond, 5 * time.Second} {
		w.stats[i/2].accept(d)
		w.latency.Record(d)
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
	w := &Worker{latency: &metrics.Latency{}}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 64 {
		l := newLoopStats()
		for range 8000 {
			d := time.Duration(rng.Int64N(int64(10 * time.Second)))
			l.accept(d)
			w.latency.Record(d)
		}
		w.stats = append(w.stats, l)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_ = w.Stats()
	}
}
