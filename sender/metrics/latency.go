package metrics

import (
	"math/bits"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// The latency range: microseconds, 1 µs .. 1 hour, 3 significant figures. HdrHistogram lays
// it out as 2,048 exact values followed by one run of 1,024 sub-buckets per further power of
// two; Latency uses the same indexes, so that its counts become an HdrHistogram's exactly.
const (
	LowestUs  = 1
	HighestUs = int64(time.Hour / time.Microsecond)
	SigFigs   = 3

	subShift = 10 // 1,024 sub-buckets per power of two beyond the exact range
	exact    = 2 << subShift
	indexes  = 22<<subShift + exact - 1<<subShift // up to 2^32 µs
)

// NewLatencyHistogram returns the histogram used for latency from the GO press: values in
// microseconds, 1 µs .. 1 hour, 3 significant figures. Like every HdrHistogram it is not
// safe for concurrent use: keep one per goroutine and combine them with MergeLatency, or
// record through a Latency.
func NewLatencyHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(LowestUs, HighestUs, SigFigs)
}

// RecordLatency records one latency into h, clamped to the histogram's range (1 µs .. 1
// hour) so that no sample is ever dropped: the truth checks compare the histogram's count
// with the accepted count.
func RecordLatency(h *hdrhistogram.Histogram, sincePress time.Duration) {
	us := min(max(sincePress.Microseconds(), LowestUs), HighestUs)
	_ = h.RecordValue(us) // cannot fail: us is within the range of NewLatencyHistogram
}

// Latency is a latency histogram that many goroutines record into at once: recording is an
// index computation and an atomic increment, so no send loop waits for another, and reading
// visits one array instead of merging an HdrHistogram per loop. The zero value is empty
// and ready. It is large (about 180 KiB): share one, do not copy it.
type Latency struct {
	counts [indexes]atomic.Int64
}

// index is the index of a latency in microseconds, clamped to 1 µs .. 1 hour.
func index(us int64) int {
	us = min(max(us, LowestUs), HighestUs)
	if us < exact {
		return int(us)
	}
	e := bits.Len64(uint64(us)) - subShift - 1 // us>>e is in [1024, 2048)
	return e<<subShift + int(us>>e)
}

// valueAt is the lowest latency (µs) with index i.
func valueAt(i int) int64 {
	if i < exact {
		return int64(i)
	}
	e := i>>subShift - 1
	return int64(i-e<<subShift) << e
}

// Record counts one latency (clamped like RecordLatency).
func (l *Latency) Record(sincePress time.Duration) {
	l.counts[index(sincePress.Microseconds())].Add(1)
}

// Reset clears every count.
func (l *Latency) Reset() {
	for i := range l.counts {
		l.counts[i].Store(0)
	}
}

// Histogram returns the counts so far as an HdrHistogram from NewLatencyHistogram. Counts
// recorded while it reads may or may not be included.
func (l *Latency) Histogram() *hdrhistogram.Histogram {
	h := NewLatencyHistogram()
	for i := range l.counts {
		if n := l.counts[i].Load(); n != 0 {
			_ = h.RecordValues(valueAt(i), n) // within range: valueAt(i) <= 1 hour
		}
	}
	return h
}

// MergeLatency adds src into dst. Histograms with the latency layout are added index by
// index; others go through HdrHistogram's own (slower) Merge. It returns how many samples
// of src fell outside dst's range (always 0 for two latency-layout histograms).
func MergeLatency(dst, src *hdrhistogram.Histogram) int64 {
	if src.TotalCount() == 0 {
		return 0
	}
	if !hasLayout(dst) || !hasLayout(src) {
		return dst.Merge(src)
	}
	snap := src.Export()
	if len(snap.Counts) != indexes {
		return dst.Merge(src)
	}
	for i, n := range snap.Counts {
		if n != 0 {
			_ = dst.RecordValues(valueAt(i), n)
		}
	}
	return 0
}

// IsLatencyLayout reports whether h has NewLatencyHistogram's range and precision (a
// decoded one does when it was encoded from such a histogram).
func IsLatencyLayout(h *hdrhistogram.Histogram) bool { return hasLayout(h) }

// hasLayout reports whether h was made like NewLatencyHistogram.
func hasLayout(h *hdrhistogram.Histogram) bool {
	return h.LowestTrackableValue() == LowestUs && h.HighestTrackableValue() == HighestUs && h.SignificantFigures() == SigFigs
}

// Add records every sample of h (a histogram from NewLatencyHistogram, or any other: its
// values are then clamped like Record).
func (l *Latency) Add(h *hdrhistogram.Histogram) {
	if h == nil || h.TotalCount() == 0 {
		return
	}
	if hasLayout(h) {
		if snap := h.Export(); len(snap.Counts) == indexes {
			for i, n := range snap.Counts {
				if n != 0 {
					l.counts[i].Add(n)
				}
			}
			return
		}
	}
	for _, b := range h.Distribution() {
		if b.Count != 0 {
			l.counts[index(b.From)].Add(b.Count)
		}
	}
}
