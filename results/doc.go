// Package results turns a benchmark run into its reports and gates CI on them.
//
// During a run, the send loops record the latency of every accepted notification from the
// GO press and count responses per 100 ms (package sender/metrics, which this package only
// reads); the runner gathers them, adds the counts it and
// the mock servers kept, and calls Build. Build computes the latency percentiles, the
// milestones (when 50/95/99/100% of the deliverable audience had been accepted), the
// throughput and the target verdict, runs the truth checks (the report's own numbers must
// agree with each other) and the scenario's Criteria, and lists every failure. WriteRun then
// writes the run's folder:
//
//	report.json    the contract (schema salvo.report/v1)
//	report.md      tables a person reads at a glance
//	latency.hgrm   HdrHistogram percentile distribution, milliseconds
//	latency.hlog   HdrHistogram interval log, microseconds (the raw histogram)
//	timeline.csv   t_ms,accepted,rejected,cumulative_accepted per 100 ms
//	delivered.svg  share of the audience accepted over time, with the target line
//	latency.svg    latency by percentile
//
// With the mock's receipts (Inputs.MockArrivals), Build also sets the mock's own milestones
// beside the sender's and checks the two clocks against each other (ClockCheck).
//
// A live send (the report of a campaign sent by hand, `salvo report`) has no mock and takes
// its latencies from the figures the workers published: it sets Inputs.NoLatencySample to
// the acceptances no published histogram holds, and Build states that count in the report
// and checks samples + gap == accepted.
//
// A run with several arms writes one folder per arm and WriteSummary lists them in
// summary.json (and compares them in summary.md). Render re-renders the views from the data
// files.
//
// The CI gate plays a base revision and a candidate in interleaved pairs of runs; Gate
// decides from their reports, metric by metric, and WriteGate writes gate.md and gate.json
// (docs/gate.md). Saved runs are compared with a saved reference through a Baseline
// (reference values with tolerances): ReadRuns reads them (one run or repeats) and Compare
// judges the medians; CompareFiles does all three. NewBaseline makes a fresh baseline from
// runs. docs/reports.md describes every definition and file format.
//
// Nothing in the package is safe for concurrent use unless said otherwise; it holds no
// package-level state.
package results
