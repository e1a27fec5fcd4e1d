package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
)

// BaselineSchema is the value of a baseline file's "schema" field.
const BaselineSchema = "salvo.baseline/v1"

// Directions of a metric.
const (
	LowerIsBetter  = "lower"
	HigherIsBetter = "higher"
)

// Baseline is the reference the CI gate compares runs against (results/baseline.json). Each
// metric has a reference value, a direction and a tolerance; see docs/reports.md.
type Baseline struct {
	// Schema is BaselineSchema.
	Schema string `json:"schema"`
	// Scenario, when set, must be the scenario of every compared run.
	Scenario string `json:"scenario,omitempty"`
	// Note says where the values came from (free text).
	Note string `json:"note,omitempty"`
	// Runs is how many runs the values are medians of (informational).
	Runs int `json:"runs,omitempty"`
	// Machine is the machine of the runs (informational: a different one is reported).
	Machine *Machine `json:"machine,omitempty"`
	// Metrics are compared in this order.
	Metrics []BaselineMetric `json:"metrics"`
}

// BaselineMetric is one gated metric. The allowed slack is the larger of TolerancePct % of
// Value and ToleranceAbs (in the metric's unit): a lower-is-better metric regresses when the
// current median exceeds Value + slack, a higher-is-better one when it falls below
// Value - slack.
type BaselineMetric struct {
	// Name is a report.json path such as "latency_ms.p99" (see MetricNames).
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	// Better is LowerIsBetter or HigherIsBetter.
	Better       string  `json:"better"`
	TolerancePct float64 `json:"tolerance_pct"`
	ToleranceAbs float64 `json:"tolerance_abs"`
}

// metricDef describes a metric the gate knows how to read from a report, with the default
// direction and tolerance a fresh baseline gives it.
type metricDef struct {
	name     string
	better   string
	pct, abs float64
	gated    bool // in a fresh baseline
	get      func(*Report) float64
}

// metricDefs lists the metrics, in table order.
func metricDefs() []metricDef {
	ms := milestoneValue
	return []metricDef{
		{"latency_ms.p50", LowerIsBetter, 25, 50, true, func(r *Report) float64 { return r.Latency.P50 }},
		{"latency_ms.p90", LowerIsBetter, 25, 50, false, func(r *Report) float64 { return r.Latency.P90 }},
		{"latency_ms.p95", LowerIsBetter, 25, 50, true, func(r *Report) float64 { return r.Latency.P95 }},
		{"latency_ms.p99", LowerIsBetter, 25, 50, true, func(r *Report) float64 { return r.Latency.P99 }},
		{"latency_ms.p999", LowerIsBetter, 30, 100, false, func(r *Report) float64 { return r.Latency.P999 }},
		{"latency_ms.max", LowerIsBetter, 50, 100, false, func(r *Report) float64 { return r.Latency.Max }},
		{"milestones_ms.first", LowerIsBetter, 50, 20, false, func(r *Report) float64 { return ms(r.Milestones.First) }},
		{"milestones_ms.p50", LowerIsBetter, 25, 50, false, func(r *Report) float64 { return ms(r.Milestones.P50) }},
		{"milestones_ms.p95", LowerIsBetter, 25, 50, true, func(r *Report) float64 { return ms(r.Milestones.P95) }},
		{"milestones_ms.p99", LowerIsBetter, 25, 50, true, func(r *Report) float64 { return ms(r.Milestones.P99) }},
		{"milestones_ms.all", LowerIsBetter, 30, 100, true, func(r *Report) float64 { return ms(r.Milestones.All) }},
		{"throughput_per_s.mean", HigherIsBetter, 20, 0, true, func(r *Report) float64 { return r.Throughput.Mean }},
		{"throughput_per_s.peak_1s", HigherIsBetter, 20, 0, false, func(r *Report) float64 { return r.Throughput.Peak1s }},
		{"resources.sender_cpu_us_per_notification", LowerIsBetter, 25, 1, true, func(r *Report) float64 { return r.Resources.SenderCPUUsPerNotification }},
		{"resources.sender_cpu_seconds", LowerIsBetter, 25, 0.5, false, func(r *Report) float64 { return r.Resources.SenderCPUSeconds }},
		{"resources.sender_peak_rss_bytes", LowerIsBetter, 20, 16 << 20, false, func(r *Report) float64 { return float64(r.Resources.SenderPeakRSSBytes) }},
		{"resources.resident_bytes_per_recipient", LowerIsBetter, 20, 16, false, func(r *Report) float64 { return r.Resources.ResidentBytesPerRecipient }},
		{"resources.prepare_ms", LowerIsBetter, 30, 100, false, func(r *Report) float64 { return r.Resources.PrepareMs }},
		{"resources.mock_cpu_seconds", LowerIsBetter, 30, 0.5, false, func(r *Report) float64 { return r.Resources.MockCPUSeconds }},
	}
}

// milestoneValue is a milestone as a number to compare: an unreached one is infinitely late.
func milestoneValue(v float64) float64 {
	if v == Unreached {
		return math.Inf(1)
	}
	return v
}

// lookupMetric finds a metric by name.
func lookupMetric(name string) (metricDef, bool) {
	for _, d := range metricDefs() {
		if d.name == name {
			return d, true
		}
	}
	return metricDef{}, false
}

// MetricNames returns the names a baseline may gate on, in table order.
func MetricNames() []string {
	defs := metricDefs()
	names := make([]string, len(defs))
	for i, d := range defs {
		names[i] = d.name
	}
	return names
}

// CompareFiles is the CI gate's work: it reads the baseline file and the runs in currentDir
// (see ReadRuns) and compares them. Bad input is an *InputError; a regression is not an
// error but shows in the result (Regressed, Err).
func CompareFiles(baselinePath, currentDir string) (*Comparison, error) {
	b, err := ReadBaseline(baselinePath)
	if err != nil {
		return nil, err
	}
	runs, err := ReadRuns(currentDir)
	if err != nil {
		return nil, err
	}
	c, err := Compare(b, runs)
	if err != nil {
		return nil, err
	}
	c.BaselineFile = baselinePath
	return c, nil
}

// ReadBaseline reads and validates a baseline file. Errors are *InputError naming the file
// and the field.
func ReadBaseline(path string) (*Baseline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fileError(path, err)
	}
	return ParseBaseline(path, data)
}

// ParseBaseline decodes and validates baseline JSON; name is the file named in errors.
// Unknown fields are refused, so that a misspelt tolerance never silently becomes zero.
func ParseBaseline(name string, data []byte) (*Baseline, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var b Baseline
	if err := dec.Decode(&b); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return nil, &InputError{File: name, Field: strings.Trim(f, `"`), Err: errors.New("unknown field")}
		}
		return nil, jsonInputError(name, err)
	}
	if dec.More() {
		return nil, &InputError{File: name, Err: errors.New("trailing data after the JSON object")}
	}
	if err := b.validate(name); err != nil {
		return nil, err
	}
	return &b, nil
}

// Validate checks the baseline: schema, at least one metric, known and distinct names, a
// direction, and finite, non-negative values and tolerances.
func (b *Baseline) Validate() error { return b.validate("baseline") }

func (b *Baseline) validate(file string) error {
	bad := func(field string, format string, a ...any) error {
		return &InputError{File: file, Field: field, Err: fmt.Errorf(format, a...)}
	}
	if b.Schema != BaselineSchema {
		return bad("schema", "got %q, want %q", b.Schema, BaselineSchema)
	}
	if len(b.Metrics) == 0 {
		return bad("metrics", "no metric listed")
	}
	if b.Runs < 0 {
		return bad("runs", "negative")
	}
	seen := map[string]bool{}
	for i, m := range b.Metrics {
		field := func(f string) string { return fmt.Sprintf("metrics[%d].%s", i, f) }
		if _, ok := lookupMetric(m.Name); !ok {
			return bad(field("name"), "unknown metric %q (known: %s)", m.Name, strings.Join(MetricNames(), ", "))
		}
		if seen[m.Name] {
			return bad(field("name"), "metric %q listed twice", m.Name)
		}
		seen[m.Name] = true
		if m.Better != LowerIsBetter && m.Better != HigherIsBetter {
			return bad(field("better"), "got %q, want %q or %q", m.Better, LowerIsBetter, HigherIsBetter)
		}
		for _, v := range []struct {
			f string
			v float64
		}{{"value", m.Value}, {"tolerance_pct", m.TolerancePct}, {"tolerance_abs", m.ToleranceAbs}} {
			if math.IsNaN(v.v) || math.IsInf(v.v, 0) || v.v < 0 {
				return bad(field(v.f), "must be a finite number >= 0, got %v", v.v)
			}
		}
	}
	return nil
}

// Run is one report of the runs being compared.
type Run struct {
	// Path is the report.json the run was read from.
	Path   string
	Report *Report
}

// ReadRuns reads the reports in dir: dir/report.json when there is one (a single run), else
// the arms listed by dir/summary.json, else every dir/*/report.json (repeat runs such as
// dir/run-1, dir/run-2), in name order. Errors are *InputError.
func ReadRuns(dir string) ([]Run, error) {
	single := filepath.Join(dir, fileReportJSON)
	if _, err := os.Stat(single); err == nil {
		r, err := ReadReport(single)
		if err != nil {
			return nil, err
		}
		return []Run{{Path: single, Report: r}}, nil
	}
	if _, err := os.Stat(filepath.Join(dir, fileSummaryJSON)); err == nil {
		arms, err := ReadSummary(dir)
		if err != nil {
			return nil, err
		}
		runs := make([]Run, len(arms))
		for i, a := range arms {
			runs[i] = Run{Path: a.reportPath, Report: a.Report}
		}
		return runs, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fileError(dir, err)
	}
	var runs []Run
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		p := filepath.Join(dir, e.Name(), fileReportJSON)
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		r, err := ReadReport(p)
		if err != nil {
			return nil, err
		}
		runs = append(runs, Run{Path: p, Report: r})
	}
	if len(runs) == 0 {
		return nil, &InputError{File: dir, Err: errors.New("no report.json, summary.json or */report.json found")}
	}
	return runs, nil
}

// checkRepeats refuses runs that are not repeats of one configuration.
func checkRepeats(runs []Run) error {
	if len(runs) == 0 {
		return errors.New("results: no run to compare")
	}
	first := runs[0].Report
	for _, r := range runs[1:] {
		if r.Report.Scenario != first.Scenario {
			return &InputError{File: r.Path, Field: "scenario", Err: fmt.Errorf("%q, but %s has %q: runs are not repeats", r.Report.Scenario, runs[0].Path, first.Scenario)}
		}
		if r.Report.Audience.Recipients != first.Audience.Recipients {
			return &InputError{File: r.Path, Field: "audience.recipients", Err: fmt.Errorf("%d, but %s has %d: runs are not repeats", r.Report.Audience.Recipients, runs[0].Path, first.Audience.Recipients)}
		}
	}
	return nil
}

// Verdict is the outcome of one metric's comparison.
type Verdict string

// Verdicts.
const (
	VerdictOK        Verdict = "ok"
	VerdictImproved  Verdict = "improved"
	VerdictRegressed Verdict = "REGRESSED"
)

// Row is one metric of a Comparison.
type Row struct {
	Metric   string
	Better   string
	Baseline float64
	// Current is the median over the runs; Min and Max their range (+Inf for an unreached
	// milestone).
	Current, Min, Max float64
	// DeltaPct is (Current - Baseline) / Baseline in percent; NaN when Baseline is 0.
	DeltaPct float64
	// Slack is the allowed distance from Baseline; Limit is Baseline + or - Slack.
	Slack, Limit float64
	TolerancePct float64
	ToleranceAbs float64
	Verdict      Verdict
}

// Comparison is the result of comparing runs with a baseline.
type Comparison struct {
	BaselineFile string
	Baseline     *Baseline
	Runs         []Run
	Rows         []Row
	// FailedRuns lists the runs that failed a correctness check (truth checks, lost, failed,
	// duplicates): their numbers cannot be trusted, so the gate fails. A run that only missed
	// its performance criteria (target, latency, throughput, prepare, memory) gets a note:
	// speed is judged by the medians.
	FailedRuns []string
	// Notes are remarks that do not fail the gate (another machine than the baseline's).
	Notes []string
}

// Compare compares the medians of runs (repeats of one scenario) with the baseline. It
// returns an *InputError when the runs are not repeats of one configuration or not of the
// baseline's scenario; regressions are in the result, not errors.
func Compare(b *Baseline, runs []Run) (*Comparison, error) {
	if err := checkRepeats(runs); err != nil {
		return nil, err
	}
	if b.Scenario != "" {
		for _, r := range runs {
			if r.Report.Scenario != b.Scenario {
				return nil, &InputError{File: r.Path, Field: "scenario", Err: fmt.Errorf("%q, but the baseline is for %q", r.Report.Scenario, b.Scenario)}
			}
		}
	}
	c := &Comparison{Baseline: b, Runs: runs}
	for _, r := range runs {
		var broken, slow []string
		for _, f := range r.Report.Failures {
			if isPerformanceFailure(f) {
				slow = append(slow, f)
			} else {
				broken = append(broken, f)
			}
		}
		if len(broken) > 0 || (!r.Report.Pass && len(slow) == 0) {
			c.FailedRuns = append(c.FailedRuns, fmt.Sprintf("%s did not pass: %s", r.Path, firstOf(broken)))
		}
		if len(slow) > 0 {
			c.Notes = append(c.Notes, fmt.Sprintf("%s missed its own performance criteria (judged here by the medians): %s", r.Path, firstOf(slow)))
		}
	}
	if m := b.Machine; m != nil {
		if got := runs[0].Report.Machine; got.CPUs != m.CPUs || got.Arch != m.Arch || got.OS != m.OS {
			c.Notes = append(c.Notes, fmt.Sprintf("the baseline was measured on %s/%s with %d CPUs, these runs on %s/%s with %d CPUs",
				m.OS, m.Arch, m.CPUs, got.OS, got.Arch, got.CPUs))
		}
	}
	for _, m := range b.Metrics {
		def, _ := lookupMetric(m.Name) // validated
		vals := make([]float64, len(runs))
		for i, r := range runs {
			vals[i] = def.get(r.Report)
		}
		c.Rows = append(c.Rows, compareMetric(m, vals))
	}
	return c, nil
}

// isPerformanceFailure tells a failure about speed or size (target, latency, throughput,
// prepare, memory: noisy, so the gate judges them by the medians) from one about
// correctness (truth checks, lost, failed, duplicates: never noise, so they fail the gate).
// Failures start with the name of their check and a colon.
func isPerformanceFailure(f string) bool {
	check, _, _ := strings.Cut(f, ":")
	switch check {
	case "target", "latency", "throughput", "prepare", "memory":
		return true
	}
	return false
}

// firstOf says the first failure and how many more there are.
func firstOf(failures []string) string {
	if len(failures) == 0 {
		return "no failure listed"
	}
	s := failures[0]
	if n := len(failures) - 1; n > 0 {
		s += fmt.Sprintf(" (and %d more)", n)
	}
	return s
}

// compareMetric judges one metric's values against its baseline.
func compareMetric(m BaselineMetric, vals []float64) Row {
	sort.Float64s(vals)
	row := Row{
		Metric: m.Name, Better: m.Better, Baseline: m.Value,
		Current: median(vals), Min: vals[0], Max: vals[len(vals)-1],
		TolerancePct: m.TolerancePct, ToleranceAbs: m.ToleranceAbs,
		Slack:    max(m.Value*m.TolerancePct/100, m.ToleranceAbs),
		DeltaPct: math.NaN(),
		Verdict:  VerdictOK,
	}
	if m.Value != 0 {
		row.DeltaPct = (row.Current - m.Value) / m.Value * 100
	} else if row.Current == 0 {
		row.DeltaPct = 0
	}
	if m.Better == LowerIsBetter {
		row.Limit = m.Value + row.Slack
		switch {
		case row.Current > row.Limit || math.IsNaN(row.Current):
			row.Verdict = VerdictRegressed
		case row.Current < m.Value-row.Slack:
			row.Verdict = VerdictImproved
		}
	} else {
		row.Limit = m.Value - row.Slack
		switch {
		case row.Current < row.Limit || math.IsNaN(row.Current):
			row.Verdict = VerdictRegressed
		case row.Current > m.Value+row.Slack:
			row.Verdict = VerdictImproved
		}
	}
	return row
}

// median of sorted values; the mean of the middle two for an even count.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// Regressed reports whether the gate fails: a metric regressed beyond its tolerance or a run
// failed a correctness check.
func (c *Comparison) Regressed() bool {
	if len(c.FailedRuns) > 0 {
		return true
	}
	for _, r := range c.Rows {
		if r.Verdict == VerdictRegressed {
			return true
		}
	}
	return false
}

// Regressions names the metrics that regressed.
func (c *Comparison) Regressions() []string {
	var out []string
	for _, r := range c.Rows {
		if r.Verdict == VerdictRegressed {
			out = append(out, r.Metric)
		}
	}
	return out
}

// WriteTable prints the side-by-side table: metric, baseline, current median, range over the
// runs, delta, tolerance, limit and verdict, then the failed runs, notes and the outcome.
func (c *Comparison) WriteTable(w io.Writer) error {
	var buf bytes.Buffer
	b := c.Baseline
	fmt.Fprintf(&buf, "baseline: %s", orDash(c.BaselineFile))
	if b.Scenario != "" {
		fmt.Fprintf(&buf, " (scenario %s", b.Scenario)
		if b.Runs > 0 {
			fmt.Fprintf(&buf, ", median of %s", plural(b.Runs, "run"))
		}
		fmt.Fprint(&buf, ")")
	}
	fmt.Fprintf(&buf, "\ncurrent:  median of %s: %s\n\n", plural(len(c.Runs), "run"), runPaths(c.Runs))
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "METRIC\tBETTER\tBASELINE\tCURRENT\tRANGE\tDELTA\tTOLERANCE\tLIMIT\tVERDICT")
	for _, r := range c.Rows {
		rng := fmtMetric(r.Min)
		if r.Max != r.Min {
			rng += " .. " + fmtMetric(r.Max)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.Metric, r.Better, fmtMetric(r.Baseline), fmtMetric(r.Current), rng,
			fmtDelta(r.DeltaPct), fmtTolerance(r), fmtMetric(r.Limit), r.Verdict)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	for _, f := range c.FailedRuns {
		fmt.Fprintf(&buf, "\nFAILED RUN: %s", f)
	}
	for _, n := range c.Notes {
		fmt.Fprintf(&buf, "\nnote: %s", n)
	}
	if len(c.FailedRuns)+len(c.Notes) > 0 {
		fmt.Fprintln(&buf)
	}
	switch {
	case c.Regressed():
		fmt.Fprintf(&buf, "\nFAIL: %s\n", c.failureSummary())
	default:
		fmt.Fprintf(&buf, "\nPASS: %d metrics within tolerance", len(c.Rows))
		var improved []string
		for _, r := range c.Rows {
			if r.Verdict == VerdictImproved {
				improved = append(improved, r.Metric)
			}
		}
		if len(improved) > 0 {
			fmt.Fprintf(&buf, "; improved beyond tolerance: %s (consider refreshing the baseline)", strings.Join(improved, ", "))
		}
		fmt.Fprintln(&buf)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	return nil
}

// failureSummary says why the gate fails, in one line.
func (c *Comparison) failureSummary() string {
	var parts []string
	if reg := c.Regressions(); len(reg) > 0 {
		parts = append(parts, fmt.Sprintf("%s regressed beyond tolerance: %s", plural(len(reg), "metric"), strings.Join(reg, ", ")))
	}
	if n := len(c.FailedRuns); n > 0 {
		parts = append(parts, fmt.Sprintf("%s failed a correctness check", plural(n, "run")))
	}
	return strings.Join(parts, "; ")
}

// Err returns nil when the gate passes, else an error that says why.
func (c *Comparison) Err() error {
	if !c.Regressed() {
		return nil
	}
	return errors.New(c.failureSummary())
}

// plural says "1 run" or "3 runs".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func runPaths(runs []Run) string {
	ps := make([]string, len(runs))
	for i, r := range runs {
		ps[i] = filepath.ToSlash(r.Path)
	}
	return strings.Join(ps, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// fmtMetric prints a metric value with a precision that suits its size.
func fmtMetric(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "unreached"
	case math.Abs(v) >= 100:
		return fmtNum(v, 1)
	case math.Abs(v) >= 1:
		return fmtNum(v, 2)
	}
	return fmtNum(v, 3)
}

func fmtDelta(pct float64) string {
	switch {
	case math.IsNaN(pct):
		return "n/a"
	case math.IsInf(pct, 1):
		return "+inf"
	case pct >= 0:
		return "+" + fmtNum(pct, 1) + "%"
	}
	return fmtNum(pct, 1) + "%"
}

func fmtTolerance(r Row) string {
	sign := "+"
	if r.Better == HigherIsBetter {
		sign = "-"
	}
	switch {
	case r.TolerancePct > 0 && r.ToleranceAbs > 0:
		return fmt.Sprintf("%s%s%% (min %s)", sign, fmtNum(r.TolerancePct, 2), fmtMetric(r.ToleranceAbs))
	case r.TolerancePct > 0:
		return fmt.Sprintf("%s%s%%", sign, fmtNum(r.TolerancePct, 2))
	case r.ToleranceAbs > 0:
		return sign + fmtMetric(r.ToleranceAbs)
	}
	return "exact"
}

// NewBaseline makes a baseline from runs: for each metric of keep (or, when keep is nil, the
// default gated metrics with their default tolerances) the median over the runs, keeping
// keep's directions and tolerances. It refuses runs that did not pass or that are not
// repeats, and a median that is unreached.
func NewBaseline(runs []Run, keep *Baseline) (*Baseline, error) {
	if err := checkRepeats(runs); err != nil {
		return nil, err
	}
	for _, r := range runs {
		if !r.Report.Pass {
			return nil, &InputError{File: r.Path, Field: "pass", Err: errors.New("false: a failed run cannot be a baseline")}
		}
	}
	first := runs[0].Report
	machine := first.Machine
	b := &Baseline{Schema: BaselineSchema, Scenario: first.Scenario, Runs: len(runs), Machine: &machine}
	var metrics []BaselineMetric
	if keep != nil {
		metrics = append(metrics, keep.Metrics...)
	} else {
		for _, d := range metricDefs() {
			if d.gated {
				metrics = append(metrics, BaselineMetric{Name: d.name, Better: d.better, TolerancePct: d.pct, ToleranceAbs: d.abs})
			}
		}
	}
	for _, m := range metrics {
		def, ok := lookupMetric(m.Name)
		if !ok {
			return nil, fmt.Errorf("results: baseline: unknown metric %q", m.Name)
		}
		vals := make([]float64, len(runs))
		for i, r := range runs {
			vals[i] = def.get(r.Report)
		}
		sort.Float64s(vals)
		v := median(vals)
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, fmt.Errorf("results: baseline: %s is unreached in the median run", m.Name)
		}
		m.Value = round(v, 3)
		b.Metrics = append(b.Metrics, m)
	}
	return b, nil
}

// WriteBaseline writes b as indented JSON to path, after validating it.
func WriteBaseline(path string, b *Baseline) error {
	if err := b.Validate(); err != nil {
		return fmt.Errorf("results: baseline: %w", err)
	}
	js, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return fmt.Errorf("results: baseline: %w", err)
	}
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	return writeFiles(dir, map[string][]byte{name: append(js, '\n')})
}
