// Package metrics holds what Salvo measures while it sends, and nothing else: the latency of
// every notification from the GO press in an HdrHistogram layout (microseconds, 1 µs .. 1
// hour, 3 significant figures), a concurrent fixed-layout recorder with the same indexes for
// the send loops' hot path, and a Timeline of responses per step since the press.
//
// It is a leaf: the production pipeline (sender/...) records into it, and the reports
// (results/) read it; it imports neither.
//
// Usage:
//
//	var lat metrics.Latency            // shared by every send loop; safe for concurrent use
//	lat.Record(acceptedAt.Sub(pressedAt))
//	h := lat.Histogram()               // an HdrHistogram for reports and the wire
//	tl := metrics.NewTimeline(0)       // one per goroutine; combine with Merge
//	tl.Add(acceptedAt.Sub(pressedAt), true)
package metrics
