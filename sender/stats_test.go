package sender

import (
	"math/rand/v2"
	"testing"
	"time"
)

// record files one answer into a recorder the way a send loop does.
func record(r *sendRecorder, since time.Duration, outcome Outcome, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch outcome {
	case Accepted:
		r.accepted++
		r.latency.Record(since)
		r.timeline.Add(since, true)
	case Permanent:
		r.rejected[reason]++
		r.timeline.Add(since, false)
	default:
		r.transient[reason]++
	}
}

// TestWorkerStatsMergesSends checks that Worker.Stats adds up every send's figures, that
// SendStats gives one send's alone, and that ResetStats clears them.
func TestWorkerStatsMergesSends(t *testing.T) {
	t.Parallel()
	w := &Worker{sends: map[string]*sendRecorder{}}
	a, b := newSendRecorder("c1", "s1"), newSendRecorder("c1", "s2")
	w.sends["c1/s1"], w.sends["c1/s2"] = a, b
	for i, d := range []time.Duration{3 * time.Second, 10 * time.Millisecond, 5 * time.Second} {
		record([]*sendRecorder{a, b}[i/2], d, Accepted, "")
	}
	record(b, time.Second, Permanent, "Unregistered")
	record(b, time.Second, Transient, "TooManyRequests")
	b.retries, a.failed["deadline passed"] = 2, 1
	st := w.Stats()
	if st.Accepted != 3 || st.Latency.TotalCount() != 3 || st.Rejected["Unregistered"] != 1 ||
		st.Transient["TooManyRequests"] != 1 || st.Retries != 2 || st.FailedTotal() != 1 || st.Done() != 5 {
		t.Fatalf("merged: %+v", st)
	}
	if acc, rej := st.Timeline.Totals(); acc != 3 || rej != 1 {
		t.Fatalf("timeline totals %d, %d", acc, rej)
	}
	if got := st.Latency.Max(); got < 4_990_000 || got > 5_010_000 {
		t.Fatalf("max latency %d µs", got)
	}
	if one := w.SendStats("c1", "s1"); one.Accepted != 2 || one.FailedTotal() != 1 {
		t.Fatalf("send s1: %+v", one)
	}
	w.ResetStats()
	if st := w.Stats(); st.Done() != 0 || st.Latency.TotalCount() != 0 {
		t.Fatalf("after reset: %+v", st)
	}
}

// TestStallBeginsAndEnds: a send with work in flight and no answer for StallAfter is
// stalled once (with the last transient reason as its cause) and resumes on progress.
func TestStallBeginsAndEnds(t *testing.T) {
	t.Parallel()
	r := newSendRecorder("c", "s")
	t0 := time.Now()
	r.begin(t0)
	if began, _ := r.checkStall(t0.Add(5*time.Second), 10*time.Second, "w"); began != nil {
		t.Fatal("stalled too early")
	}
	r.mu.Lock()
	r.lastReason = "ServiceUnavailable"
	r.mu.Unlock()
	began, _ := r.checkStall(t0.Add(11*time.Second), 10*time.Second, "w")
	if began == nil || began.Cause != "ServiceUnavailable" {
		t.Fatalf("stall = %+v", began)
	}
	if again, _ := r.checkStall(t0.Add(12*time.Second), 10*time.Second, "w"); again != nil {
		t.Fatal("a stall is reported once")
	}
	if r.snapshot().Stall == nil {
		t.Fatal("the stall is not in the figures")
	}
	r.mu.Lock()
	r.lastProgress = t0.Add(13 * time.Second)
	r.mu.Unlock()
	if _, resumed := r.checkStall(t0.Add(14*time.Second), 10*time.Second, "w"); !resumed {
		t.Fatal("progress did not end the stall")
	}
	// Idle (nothing in flight) is never a stall.
	r.end()
	if began, _ := r.checkStall(t0.Add(time.Hour), 10*time.Second, "w"); began != nil {
		t.Fatal("an idle send stalled")
	}
}

// TestSnapshotRoundTrip: what a worker publishes decodes to the same figures, and seeding a
// fresh recorder with it (a restart) continues the counts.
func TestSnapshotRoundTrip(t *testing.T) {
	t.Parallel()
	r := newSendRecorder("c", "s")
	for i := range 100 {
		record(r, time.Duration(i)*time.Millisecond, Accepted, "")
	}
	record(r, time.Second, Permanent, "BadDeviceToken")
	sn, err := r.snapshot().Snapshot("w1", "c", "s")
	if err != nil {
		t.Fatal(err)
	}
	st, err := sn.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Accepted != 100 || st.Latency.TotalCount() != 100 || st.Rejected["BadDeviceToken"] != 1 {
		t.Fatalf("decoded %+v", st)
	}
	again := newSendRecorder("c", "s")
	again.seed(st)
	record(again, time.Second, Accepted, "")
	if got := again.snapshot(); got.Accepted != 101 || got.Latency.TotalCount() != 101 {
		t.Fatalf("after seed: accepted %d, histogram %d", got.Accepted, got.Latency.TotalCount())
	}
}

// BenchmarkWorkerStats is the cost of one Worker.Stats over a send whose latencies spread
// over ten seconds (what the benchmark harness polls 20 times a second).
func BenchmarkWorkerStats(b *testing.B) {
	w := &Worker{sends: map[string]*sendRecorder{}}
	r := newSendRecorder("c", "s")
	w.sends["c/s"] = r
	rng := rand.New(rand.NewPCG(1, 2))
	for range 64 * 8000 {
		record(r, time.Duration(rng.Int64N(int64(10*time.Second))), Accepted, "")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_ = w.Stats()
	}
}
