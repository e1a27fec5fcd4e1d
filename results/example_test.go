package results_test

import (
	"fmt"
	"time"

	"github.com/salvopush/salvo/results"
	"github.com/salvopush/salvo/sender/metrics"
)

// A run of 4 recipients, one of them in the control group: each goroutine records into its
// own histogram and timeline, the runner merges them and builds the report.
func Example() {
	hist := metrics.NewLatencyHistogram()
	timeline := metrics.NewTimeline(metrics.DefaultStep)
	for _, d := range []time.Duration{900 * time.Millisecond, 1200 * time.Millisecond, 4100 * time.Millisecond} {
		metrics.RecordLatency(hist, d)
		timeline.Add(d, true)
	}
	r := results.Build(results.Inputs{
		Scenario: "example",
		Audience: results.Audience{Recipients: 4, IOS: 2, Android: 2, Control: 1},
		Delivery: results.Delivery{Accepted: 3},
		Latency:  hist,
		Timeline: timeline,
		Target:   results.Target{Seconds: 5, Percentile: 99},
		Criteria: results.Criteria{RequireTarget: true},
	})
	fmt.Printf("p50 milestone %.0f ms, all %.0f ms\n", r.Milestones.P50, r.Milestones.All)
	fmt.Printf("target met: %v, pass: %v, lost: %d\n", r.Target.Met, r.Pass, r.Delivery.Lost)
	// Output:
	// p50 milestone 1200 ms, all 4100 ms
	// target met: true, pass: true, lost: 0
}
