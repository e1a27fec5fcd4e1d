package results

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// GateSchema is the value of the gate report's "schema" field (gate.json).
const GateSchema = "salvo.gate/v1"

// Parameters of the gate's statistics (docs/gate.md says why these values).
const (
	// GateConfidence is the two-sided confidence of each metric's interval.
	GateConfidence = 0.99
	// GateMinPairs is the fewest complete pairs per workload the gate decides on.
	GateMinPairs = 6
)

// GateVerdict is the outcome of one metric of the gate.
type GateVerdict string

// Verdicts of one metric. Only GateRegressed fails the gate.
const (
	// GateOK: no change beyond the threshold, or none that the runs can tell from noise.
	GateOK GateVerdict = "ok"
	// GateBetter: an improvement beyond the threshold, statistically clear.
	GateBetter GateVerdict = "better"
	// GateNoisy: the median is worse by more than the threshold, but the interval still
	// holds "no change": the runs cannot tell it from noise, so it does not fail.
	GateNoisy GateVerdict = "~ noisy"
	// GateRegressed: worse by more than the threshold, and the whole interval is on the
	// worse side of "no change".
	GateRegressed GateVerdict = "REGRESSED"
	// GateNA: not judged: a base value is zero or not finite, so there is no ratio, or the
	// metric does not apply (GateInput.MockDiffers).
	GateNA GateVerdict = "n/a"
)

// GateMetric is one metric the gate compares: its report.json field (or the fields it is
// derived from), unit, direction and threshold.
type GateMetric struct {
	// Name is the report.json path, or for a derived metric a name that says how it is made.
	Name string
	// Label names it for a person.
	Label string
	Unit  string
	// Better is LowerIsBetter or HigherIsBetter.
	Better string
	// ThresholdPct is the change, in percent of the base's median, that counts as a
	// regression when it is also statistically clear.
	ThresholdPct float64

	value func(*Report) float64
}

// Value reads the metric from a report; an unreached milestone is +Inf.
func (m GateMetric) Value(r *Report) float64 { return m.value(r) }

// gateRelativeCPU names the sender's CPU measured against the mock's in the same run. Load
// on the machine inflates both alike (they share the cores during the send), so the ratio
// keeps the sender's cost while most of the load's noise cancels; it holds only while the
// mock does the same work on both sides (GateInput.MockDiffers).
const gateRelativeCPU = "resources.sender_cpu_seconds/resources.mock_cpu_seconds"

// GateMetrics returns the metrics the gate compares, in table order, with their thresholds.
// Only fields of the report.json contract are read, so that a base revision of any age can
// be compared.
func GateMetrics() []GateMetric {
	ms := milestoneValue
	return []GateMetric{
		{"resources.sender_cpu_us_per_notification", "sender CPU per notification", "µs", LowerIsBetter, 10,
			func(r *Report) float64 { return r.Resources.SenderCPUUsPerNotification }},
		{"resources.mock_cpu_seconds/delivery.accepted", "mock CPU per notification", "µs", LowerIsBetter, 10,
			func(r *Report) float64 {
				if r.Delivery.Accepted == 0 {
					return math.Inf(1)
				}
				return r.Resources.MockCPUSeconds * 1e6 / float64(r.Delivery.Accepted)
			}},
		{gateRelativeCPU, "sender CPU / mock CPU", "", LowerIsBetter, 10,
			func(r *Report) float64 {
				if r.Resources.MockCPUSeconds <= 0 {
					return math.NaN()
				}
				return r.Resources.SenderCPUSeconds / r.Resources.MockCPUSeconds
			}},
		{"milestones_ms.p95", "95% accepted", "ms", LowerIsBetter, 50, func(r *Report) float64 { return ms(r.Milestones.P95) }},
		{"milestones_ms.p99", "99% accepted", "ms", LowerIsBetter, 50, func(r *Report) float64 { return ms(r.Milestones.P99) }},
		{"milestones_ms.all", "all accepted", "ms", LowerIsBetter, 50, func(r *Report) float64 { return ms(r.Milestones.All) }},
		{"throughput_per_s.mean", "throughput", "/s", HigherIsBetter, 33, func(r *Report) float64 { return r.Throughput.Mean }},
	}
}

// GateRun is one bench run of the gate.
type GateRun struct {
	// Dir is the run's folder (report.json and the run's log).
	Dir string
	// Report is the run's report.json; nil when the run wrote none.
	Report *Report
	// Err says why there is no report (the bench exit status and the last line it printed).
	Err string
}

// GatePair is one pair of runs of one workload: the base's and the candidate's, played
// one right after the other.
type GatePair struct {
	// BaseFirst says which of the two ran first (the gate alternates the order).
	BaseFirst       bool
	Base, Candidate GateRun
}

// GateArm is one workload (a transport) played by both sides, pair after pair.
type GateArm struct {
	Name  string
	Pairs []GatePair
}

// GateInput is everything the gate measured and knows about the two revisions.
type GateInput struct {
	// BaseRef is the base as asked for (a git ref); BaseCommit its commit.
	BaseRef, BaseCommit string
	// Candidate says what the candidate is (a commit, with "+ uncommitted changes" when the
	// working tree differs from it).
	Candidate string
	Arms      []GateArm
	// Errors say why the gate could not run before any comparison (a base that does not
	// exist or does not build); with any, the gate's code is 2.
	Errors []string
	// MockDiffers, when set, says how the mock's code differs between the two sides; the
	// sender's CPU relative to the mock's then means nothing and is not judged (n/a).
	MockDiffers string
	// ElapsedSeconds is the gate's own duration so far (informational).
	ElapsedSeconds float64
}

// GateRow is one metric of one workload.
type GateRow struct {
	Metric GateMetric
	// Base and Candidate are the medians over the complete pairs.
	Base, Candidate float64
	// Ratio is Candidate / Base; Low and High bound the ratio of the two sides at
	// GateConfidence (the Mann-Whitney interval, see ratioInterval).
	Ratio, Low, High float64
	Verdict          GateVerdict
	// BaseValues and CandidateValues are the metric in each complete pair, in pair order.
	BaseValues, CandidateValues []float64
}

// GateArmResult is the comparison of one workload.
type GateArmResult struct {
	Name string
	// Pairs is the number of complete pairs (both runs wrote a report).
	Pairs int
	// BaseFirst says, per complete pair, whether the base ran first.
	BaseFirst []bool
	Rows      []GateRow
}

// GateResult is the gate's decision, with everything a person needs to check it.
type GateResult struct {
	BaseRef, BaseCommit, Candidate string
	Confidence                     float64
	Arms                           []GateArmResult
	// Failures fail the gate (code 1): a candidate run that lost or duplicated a
	// notification, whose mock counts differ from the sender's, or that wrote no report.
	Failures []string
	// Errors mean the gate could not run or decide (code 2).
	Errors []string
	// Notes do not fail the gate (a base run that failed its own correctness checks).
	Notes          []string
	ElapsedSeconds float64
	// Code is the exit code: 0 no regression, 1 a regression or a correctness failure, 2
	// could not run.
	Code int
	// Verdict is the one-line verdict, the last line the gate prints.
	Verdict string
}

// Gate decides the CI gate from the runs of the base and the candidate. Per workload and
// metric it takes the ratio of the candidate's median to the base's, with a distribution-free
// interval at GateConfidence (Mann-Whitney); a metric regresses only when the ratio is worse
// than its threshold and the whole interval lies on the worse side of 1. A candidate run with lost
// or duplicated notifications, mock counts that differ from the sender's, or no report
// fails the gate on its own; the same in a base run is a note (the base was already broken).
// A base run without a report, fewer than GateMinPairs complete pairs or in.Errors make
// the code 2. Gate is pure: the same input gives the same result.
func Gate(in GateInput) *GateResult {
	res := &GateResult{BaseRef: in.BaseRef, BaseCommit: in.BaseCommit, Candidate: in.Candidate,
		Confidence: GateConfidence, ElapsedSeconds: in.ElapsedSeconds}
	res.Errors = append(res.Errors, in.Errors...)
	var fewPairs []string
	for _, arm := range in.Arms {
		var complete []GatePair
		for _, p := range arm.Pairs {
			if p.Base.Report == nil {
				res.Errors = append(res.Errors, fmt.Sprintf("base run %s wrote no report: %s", p.Base.Dir, p.Base.Err))
			} else if bad := runProblems(p.Base.Report); len(bad) > 0 {
				res.Notes = append(res.Notes, fmt.Sprintf("base run %s: %s (the base itself is broken; its figures are compared as measured)", p.Base.Dir, strings.Join(bad, ", ")))
			}
			if p.Candidate.Report == nil {
				res.Failures = append(res.Failures, fmt.Sprintf("candidate run %s wrote no report: %s", p.Candidate.Dir, p.Candidate.Err))
			} else if bad := runProblems(p.Candidate.Report); len(bad) > 0 {
				res.Failures = append(res.Failures, fmt.Sprintf("candidate run %s: %s", p.Candidate.Dir, strings.Join(bad, ", ")))
			}
			if p.Base.Report != nil && p.Candidate.Report != nil {
				complete = append(complete, p)
			}
		}
		ar := GateArmResult{Name: arm.Name, Pairs: len(complete)}
		for _, p := range complete {
			ar.BaseFirst = append(ar.BaseFirst, p.BaseFirst)
		}
		if len(complete) < GateMinPairs {
			fewPairs = append(fewPairs, fmt.Sprintf("%s: %d complete pairs, at least %d needed to decide", arm.Name, len(complete), GateMinPairs))
		} else {
			for _, m := range GateMetrics() {
				row := gateRow(m, complete)
				if m.Name == gateRelativeCPU && in.MockDiffers != "" {
					row.Ratio, row.Low, row.High, row.Verdict = math.NaN(), math.NaN(), math.NaN(), GateNA
				}
				ar.Rows = append(ar.Rows, row)
			}
		}
		res.Arms = append(res.Arms, ar)
	}
	if in.MockDiffers != "" && len(in.Arms) > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("sender CPU / mock CPU not judged: %s", in.MockDiffers))
	}
	if len(in.Arms) == 0 && len(res.Errors) == 0 {
		res.Errors = append(res.Errors, "no workload was run")
	}
	var regressed []string
	for _, a := range res.Arms {
		for _, r := range a.Rows {
			if r.Verdict == GateRegressed {
				regressed = append(regressed, fmt.Sprintf("%s %s %s %s (threshold %s)", a.Name, r.Metric.Label,
					fmtRatioPct(r.Ratio), fmtInterval(r.Low, r.High), fmtThreshold(r.Metric)))
			}
		}
	}
	switch {
	case len(res.Errors) > 0:
		res.Code = 2
		res.Verdict = "gate: COULD NOT RUN: " + firstOf(res.Errors)
	case len(res.Failures) > 0:
		res.Code = 1
		res.Verdict = "gate: FAIL: " + firstOf(res.Failures)
		if len(regressed) > 0 {
			res.Verdict += "; regressed: " + strings.Join(regressed, "; ")
		}
	case len(fewPairs) > 0:
		res.Errors = append(res.Errors, fewPairs...)
		res.Code = 2
		res.Verdict = "gate: COULD NOT RUN: " + firstOf(fewPairs)
	case len(regressed) > 0:
		res.Code = 1
		res.Verdict = "gate: FAIL: regressed: " + strings.Join(regressed, "; ")
	default:
		n, noisy := 0, 0
		for _, a := range res.Arms {
			n += len(a.Rows)
			for _, r := range a.Rows {
				if r.Verdict == GateNoisy {
					noisy++
				}
			}
		}
		res.Verdict = fmt.Sprintf("gate: PASS: no regression in %s", plural(n, "metric"))
		if noisy > 0 {
			res.Verdict += fmt.Sprintf(" (%d beyond threshold but not clear of noise)", noisy)
		}
	}
	res.Verdict += fmt.Sprintf(" [base %s, %s", res.baseName(), res.pairsSummary())
	if res.ElapsedSeconds > 0 {
		res.Verdict += ", " + fmtElapsed(res.ElapsedSeconds)
	}
	res.Verdict += "]"
	return res
}

// runProblems lists what is wrong with a run's correctness, from the contract's fields.
func runProblems(r *Report) []string {
	var out []string
	if r.Delivery.Lost > 0 {
		out = append(out, fmt.Sprintf("lost %d", r.Delivery.Lost))
	}
	if r.Delivery.Duplicates > 0 {
		out = append(out, fmt.Sprintf("duplicates %d", r.Delivery.Duplicates))
	}
	if m := r.Mock; m == nil {
		out = append(out, "no mock counts")
	} else {
		if m.Duplicates > 0 {
			out = append(out, fmt.Sprintf("mock duplicates %d", m.Duplicates))
		}
		if m.Unique != r.Delivery.Accepted {
			out = append(out, fmt.Sprintf("mock counted %d unique, the sender %d accepted", m.Unique, r.Delivery.Accepted))
		}
		if c := m.MilestoneCheck; c != nil && len(c.Failed) > 0 {
			out = append(out, fmt.Sprintf("the sender's milestones %s disagree with the mock's receipts (mock.milestone_check)", strings.Join(c.Failed, ", ")))
		}
	}
	if id := r.Identity; id != nil && (id.Unexpected > 0 || id.Matched != r.Delivery.Accepted) {
		out = append(out, fmt.Sprintf("identity: the mock accepted %d unexpected tokens and %d of the %d expected, the sender %d",
			id.Unexpected, id.Matched, id.Expected, r.Delivery.Accepted))
	}
	return out
}

// gateRow compares one metric over the complete pairs.
func gateRow(m GateMetric, pairs []GatePair) GateRow {
	row := GateRow{Metric: m, Verdict: GateOK}
	for _, p := range pairs {
		row.BaseValues = append(row.BaseValues, m.value(p.Base.Report))
		row.CandidateValues = append(row.CandidateValues, m.value(p.Candidate.Report))
	}
	row.Base = sortedMedian(row.BaseValues)
	row.Candidate = sortedMedian(row.CandidateValues)
	row.Ratio = row.Candidate / row.Base
	if slices.ContainsFunc(row.BaseValues, func(v float64) bool { return !(v > 0) || math.IsInf(v, 0) }) ||
		slices.ContainsFunc(row.CandidateValues, math.IsNaN) {
		row.Ratio, row.Low, row.High = math.NaN(), math.NaN(), math.NaN()
		row.Verdict = GateNA
		return row
	}
	row.Low, row.High = ratioInterval(row.BaseValues, row.CandidateValues, GateConfidence)
	worse, better := 1+m.ThresholdPct/100, 1/(1+m.ThresholdPct/100)
	clearlyWorse, clearlyBetter := row.Low > 1, row.High < 1
	if m.Better == HigherIsBetter {
		worse, better = 1-m.ThresholdPct/100, 1/(1-m.ThresholdPct/100)
		clearlyWorse, clearlyBetter = row.High < 1, row.Low > 1
	}
	beyondWorse := row.Ratio > worse
	beyondBetter := row.Ratio < better
	if m.Better == HigherIsBetter {
		beyondWorse, beyondBetter = row.Ratio < worse, row.Ratio > better
	}
	switch {
	case beyondWorse && clearlyWorse:
		row.Verdict = GateRegressed
	case beyondWorse:
		row.Verdict = GateNoisy
	case beyondBetter && clearlyBetter:
		row.Verdict = GateBetter
	}
	return row
}

// ratioInterval bounds the ratio of the candidate's values c to the base's values b at the
// given two-sided confidence, the Mann-Whitney way: on a log scale the interval of the shift
// between two samples is read from the sorted differences of every pair (here the ratios
// c[i]/b[j]), k in from each end, where k comes from the exact distribution of the
// Mann-Whitney U statistic. It assumes nothing about the shape of the noise, only that the
// runs of a side are alike and independent. When the samples are too small for the
// confidence, the interval is (0, +Inf).
func ratioInterval(b, c []float64, confidence float64) (lo, hi float64) {
	ratios := make([]float64, 0, len(b)*len(c))
	for _, y := range c {
		for _, x := range b {
			ratios = append(ratios, y/x)
		}
	}
	slices.Sort(ratios)
	k := mannWhitneyRank(len(b), len(c), 1-confidence)
	if k == 0 {
		return 0, math.Inf(1)
	}
	return ratios[k-1], ratios[len(ratios)-k]
}

// mannWhitneyRank is the largest k with P(U <= k-1) <= alpha/2, where U is the
// Mann-Whitney statistic of two samples of sizes m and n drawn from one distribution; 0
// when even P(U = 0) is larger. The interval between the k-th smallest and the k-th largest
// of the m*n pairwise differences then covers the true shift with probability at least
// 1 - alpha.
func mannWhitneyRank(m, n int, alpha float64) int {
	counts := mannWhitneyCounts(m, n)
	total := 0.0
	for _, c := range counts {
		total += c
	}
	k, cum := 0, 0.0
	for u, c := range counts {
		cum += c
		if cum/total > alpha/2 {
			break
		}
		k = u + 1
	}
	return k
}

// mannWhitneyCounts returns, for u = 0..m*n, how many of the C(m+n, m) orderings of two
// samples of sizes m and n give U = u: f(i, j) = f(i-1, j) shifted by j, plus f(i, j-1).
// Only additions, so float64 keeps the counts to 16 digits.
func mannWhitneyCounts(m, n int) []float64 {
	row := make([][]float64, n+1) // row[j] = f(i, j) for the current i
	for j := range row {
		row[j] = []float64{1}
	}
	for i := 1; i <= m; i++ {
		next := make([][]float64, n+1)
		next[0] = []float64{1}
		for j := 1; j <= n; j++ {
			f := make([]float64, i*j+1)
			for u, v := range row[j] {
				f[u+j] += v
			}
			for u, v := range next[j-1] {
				f[u] += v
			}
			next[j] = f
		}
		row = next
	}
	return row[n]
}

// sortedMedian is the median of vals, which it leaves in their order.
func sortedMedian(vals []float64) float64 {
	s := slices.Clone(vals)
	slices.Sort(s)
	return median(s)
}

// baseName says which base was compared: "abc1234 (origin/main)".
func (g *GateResult) baseName() string {
	c := g.BaseCommit
	if len(c) > 12 {
		c = c[:12]
	}
	switch {
	case c == "" && g.BaseRef == "":
		return "unknown"
	case c == "":
		return g.BaseRef
	case g.BaseRef == "" || strings.HasPrefix(g.BaseCommit, g.BaseRef):
		return c
	}
	return fmt.Sprintf("%s (%s)", c, g.BaseRef)
}

// pairsSummary says how many pairs each workload had: "10 pairs of burst, 10 of stock".
func (g *GateResult) pairsSummary() string {
	if len(g.Arms) == 0 {
		return "no runs"
	}
	parts := make([]string, len(g.Arms))
	for i, a := range g.Arms {
		if i == 0 {
			parts[i] = plural(a.Pairs, "pair") + " of " + a.Name
		} else {
			parts[i] = fmt.Sprintf("%d of %s", a.Pairs, a.Name)
		}
	}
	return strings.Join(parts, ", ")
}
