package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/salvopush/salvo/sender/metrics"
)

// scaled returns in with every latency multiplied by factor and the sender's CPU time by
// cpuFactor: a run that is that much slower (or faster).
func scaled(in Inputs, factor, cpuFactor float64) Inputs {
	h := metrics.NewLatencyHistogram()
	for _, b := range in.Latency.Distribution() {
		if b.Count > 0 {
			v := min(max(int64(float64(b.To)*factor), 1), metrics.HighestUs)
			_ = h.RecordValues(v, b.Count)
		}
	}
	in.Latency = h
	in.Timeline = nil // the timeline keeps its totals; its shape is not compared
	in.Resources.SenderCPUSeconds *= cpuFactor
	return in
}

// writeRepeats writes one run per factor as dir/run-N, latencies and CPU scaled alike.
func writeRepeats(t *testing.T, dir string, factors ...float64) {
	t.Helper()
	for i, f := range factors {
		in := scaled(fixture(20000, uint64(i+1)), f, f)
		in.Scenario = "ci"
		if err := WriteRun(filepath.Join(dir, "run-"+strconv.Itoa(i+1)), goldenRun(in), in); err != nil {
			t.Fatal(err)
		}
	}
}

// writeBaseline makes a baseline from three unscaled repeats and writes it.
func writeBaseline(t *testing.T) string {
	t.Helper()
	ref := t.TempDir()
	writeRepeats(t, ref, 1, 1, 1)
	runs, err := ReadRuns(ref)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBaseline(runs, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "baseline.json")
	if err := WriteBaseline(p, b); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGate runs the whole gate on files: a baseline and repeat runs on disk.
func TestGate(t *testing.T) {
	t.Parallel()
	baseline := writeBaseline(t)
	tests := []struct {
		name      string
		factors   []float64 // latency and CPU of each repeat, relative to the baseline
		regressed []string  // metrics that must regress; nil means the gate passes
	}{
		// Noise within tolerance: a few percent either way.
		{"noise", []float64{1.05, 0.97, 1.10}, nil},
		// One repeat twice as slow: the median ignores it.
		{"one outlier", []float64{1.0, 2.0, 1.02}, nil},
		// A single run, unchanged.
		{"single run", []float64{1}, nil},
		// Every repeat 50% slower: latency, milestones, throughput and CPU all regress.
		{"injected regression", []float64{1.5, 1.45, 1.55}, []string{
			"latency_ms.p50", "latency_ms.p95", "latency_ms.p99", "milestones_ms.p95",
			"milestones_ms.p99", "milestones_ms.all", "throughput_per_s.mean",
			"resources.sender_cpu_us_per_notification"}},
		// Two of three repeats slower: the median is slower.
		{"regression in the median", []float64{1.0, 1.5, 1.6}, []string{"latency_ms.p50"}},
		// Faster everywhere: improvements never fail the gate.
		{"improvement", []float64{0.5, 0.55, 0.6}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cur := t.TempDir()
			writeRepeats(t, cur, tt.factors...)
			c, err := CompareFiles(baseline, cur)
			if err != nil {
				t.Fatal(err)
			}
			var table bytes.Buffer
			if err := c.WriteTable(&table); err != nil {
				t.Fatal(err)
			}
			if got := c.Regressed(); got != (tt.regressed != nil) {
				t.Fatalf("regressed = %v, want %v\n%s", got, tt.regressed != nil, table.String())
			}
			if (c.Err() != nil) != c.Regressed() {
				t.Fatalf("Err() = %v disagrees with Regressed()", c.Err())
			}
			for _, m := range tt.regressed {
				if !slices.Contains(c.Regressions(), m) {
					t.Errorf("%s did not regress; regressions %v\n%s", m, c.Regressions(), table.String())
				}
			}
			wantLast := "PASS:"
			if tt.regressed != nil {
				wantLast = "FAIL:"
			}
			if !strings.Contains(table.String(), "\n"+wantLast) {
				t.Errorf("table does not end with %s\n%s", wantLast, table.String())
			}
		})
	}
}

// metricReport is a passing report with the given gated metrics.
func metricReport(p50, p95, p99, m95, m99, all, thr, cpu float64) *Report {
	return &Report{
		Schema: Schema, Scenario: "ci", Pass: true, Failures: []string{},
		Machine:    fixtureMachine(),
		Audience:   Audience{Recipients: 20000},
		Latency:    Latency{P50: p50, P95: p95, P99: p99},
		Milestones: Milestones{P95: m95, P99: m99, All: all},
		Throughput: Throughput{Mean: thr},
		Resources:  Resources{SenderCPUUsPerNotification: cpu},
	}
}

func goldenBaseline() *Baseline {
	return &Baseline{
		Schema: BaselineSchema, Scenario: "ci", Runs: 3, Machine: &Machine{CPUs: 2, Go: "go1.26.8", OS: "linux", Arch: "amd64"},
		Metrics: []BaselineMetric{
			{Name: "latency_ms.p50", Value: 400, Better: LowerIsBetter, TolerancePct: 25, ToleranceAbs: 50},
			{Name: "latency_ms.p95", Value: 800, Better: LowerIsBetter, TolerancePct: 25, ToleranceAbs: 50},
			{Name: "latency_ms.p99", Value: 900, Better: LowerIsBetter, TolerancePct: 25, ToleranceAbs: 50},
			{Name: "milestones_ms.p95", Value: 800, Better: LowerIsBetter, TolerancePct: 25, ToleranceAbs: 50},
			{Name: "milestones_ms.p99", Value: 900, Better: LowerIsBetter, TolerancePct: 25},
			{Name: "milestones_ms.all", Value: 1200, Better: LowerIsBetter, TolerancePct: 30, ToleranceAbs: 100},
			{Name: "throughput_per_s.mean", Value: 20000, Better: HigherIsBetter, TolerancePct: 20},
			{Name: "resources.sender_cpu_us_per_notification", Value: 4, Better: LowerIsBetter, ToleranceAbs: 1},
		},
	}
}

func TestComparisonTableGolden(t *testing.T) {
	t.Parallel()
	runs := []Run{
		// p99 regressed in two of three repeats; the all milestone was never reached in one.
		{Path: "current/run-1/report.json", Report: metricReport(410, 790, 1300, 800, 1300, Unreached, 21000, 4.2)},
		{Path: "current/run-2/report.json", Report: metricReport(395, 820, 1250, 805, 1250, 1250, 19500, 4.1)},
		{Path: "current/run-3/report.json", Report: metricReport(420, 805, 880, 810, 880, 1210, 26000, 2.5)},
	}
	// The machine differs from the baseline's: a note, not a failure.
	runs[0].Report.Machine.CPUs = 8
	c, err := Compare(goldenBaseline(), runs)
	if err != nil {
		t.Fatal(err)
	}
	c.BaselineFile = "results/baseline.json"
	var buf bytes.Buffer
	if err := c.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	golden(t, "compare.txt", buf.Bytes())
	if want := []string{"latency_ms.p99", "milestones_ms.p99"}; !slices.Equal(c.Regressions(), want) {
		t.Fatalf("regressions = %v, want %v", c.Regressions(), want)
	}
}

func TestCompareVerdicts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		m    BaselineMetric
		vals []float64
		want Verdict
	}{
		// Lower is better: 20% above with a 25% tolerance is fine.
		{"lower within", BaselineMetric{Value: 100, Better: LowerIsBetter, TolerancePct: 25}, []float64{120}, VerdictOK},
		// Lower is better: 30% above a 25% tolerance regresses.
		{"lower beyond", BaselineMetric{Value: 100, Better: LowerIsBetter, TolerancePct: 25}, []float64{130}, VerdictRegressed},
		// The absolute floor widens a small relative slack: 40 above 100 within a floor of 50.
		{"absolute floor", BaselineMetric{Value: 100, Better: LowerIsBetter, TolerancePct: 10, ToleranceAbs: 50}, []float64{140}, VerdictOK},
		// Exactly at the limit is still fine.
		{"at the limit", BaselineMetric{Value: 100, Better: LowerIsBetter, TolerancePct: 25}, []float64{125}, VerdictOK},
		// Far below a lower-is-better baseline is an improvement.
		{"lower improved", BaselineMetric{Value: 100, Better: LowerIsBetter, TolerancePct: 25}, []float64{50}, VerdictImproved},
		// Higher is better: 30% under a 20% tolerance regresses.
		{"higher beyond", BaselineMetric{Value: 1000, Better: HigherIsBetter, TolerancePct: 20}, []float64{700}, VerdictRegressed},
		// Higher is better: 30% above is an improvement.
		{"higher improved", BaselineMetric{Value: 1000, Better: HigherIsBetter, TolerancePct: 20}, []float64{1300}, VerdictImproved},
		// An unreached milestone in the median regresses.
		{"unreached median", BaselineMetric{Value: 1000, Better: LowerIsBetter, TolerancePct: 20}, []float64{math.Inf(1), math.Inf(1), 900}, VerdictRegressed},
		// One unreached repeat out of three does not move the median much.
		{"one unreached repeat", BaselineMetric{Value: 1000, Better: LowerIsBetter, TolerancePct: 20}, []float64{math.Inf(1), 1000, 900}, VerdictOK},
		// Zero tolerance: any excess regresses.
		{"exact", BaselineMetric{Value: 10, Better: LowerIsBetter}, []float64{10.001}, VerdictRegressed},
		// Even count: the median is the mean of the middle two (110).
		{"even count median", BaselineMetric{Value: 100, Better: LowerIsBetter, TolerancePct: 10}, []float64{100, 120, 100, 130}, VerdictOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := compareMetric(tt.m, slices.Clone(tt.vals)); got.Verdict != tt.want {
				t.Fatalf("verdict = %s (current %v, limit %v), want %s", got.Verdict, got.Current, got.Limit, tt.want)
			}
		})
	}
}

func TestGateFailsOnAFailedRun(t *testing.T) {
	t.Parallel()
	r := metricReport(400, 800, 900, 800, 900, 1200, 20000, 4)
	r.Pass, r.Failures = false, []string{"truth: delivery.accepted 8 != mock.unique 7", "lost: 1"}
	c, err := Compare(goldenBaseline(), []Run{{Path: "run-1/report.json", Report: r}})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Regressed() || len(c.FailedRuns) != 1 || !strings.Contains(c.FailedRuns[0], "truth: delivery.accepted 8 != mock.unique 7 (and 1 more)") {
		t.Fatalf("regressed %v, failed runs %q", c.Regressed(), c.FailedRuns)
	}
}

func TestCompareRefusesMismatchedRuns(t *testing.T) {
	t.Parallel()
	ok := func() *Report { return metricReport(400, 800, 900, 800, 900, 1200, 20000, 4) }
	other := ok()
	other.Scenario = "throughput"
	bigger := ok()
	bigger.Audience.Recipients = 40000
	tests := []struct {
		name  string
		runs  []Run
		field string
	}{
		// Runs of another scenario than the baseline's.
		{"baseline scenario", []Run{{Path: "a", Report: other}}, "scenario"},
		// Repeats of different scenarios.
		{"mixed scenarios", []Run{{Path: "a", Report: ok()}, {Path: "b", Report: other}}, "scenario"},
		// Repeats of different audiences are not repeats.
		{"mixed audiences", []Run{{Path: "a", Report: ok()}, {Path: "b", Report: bigger}}, "audience.recipients"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Compare(goldenBaseline(), tt.runs)
			var ie *InputError
			if !errors.As(err, &ie) || ie.Field != tt.field {
				t.Fatalf("err = %v, want an *InputError on %q", err, tt.field)
			}
		})
	}
	if _, err := Compare(goldenBaseline(), nil); err == nil {
		t.Fatal("no runs: want an error")
	}
}

func TestParseBaselineNamesTheBadField(t *testing.T) {
	t.Parallel()
	metric := `{"name": "latency_ms.p99", "value": 900, "better": "lower", "tolerance_pct": 25, "tolerance_abs": 50}`
	tests := []struct {
		name, json, field string
	}{
		// Another schema.
		{"schema", `{"schema": "salvo.baseline/v0", "metrics": [` + metric + `]}`, "schema"},
		// No metric to gate on.
		{"no metrics", `{"schema": "salvo.baseline/v1", "metrics": []}`, "metrics"},
		// A metric the gate cannot read from a report.
		{"unknown metric", `{"schema": "salvo.baseline/v1", "metrics": [{"name": "latency_ms.p42", "better": "lower"}]}`, "metrics[0].name"},
		// The same metric twice.
		{"duplicate", `{"schema": "salvo.baseline/v1", "metrics": [` + metric + `, ` + metric + `]}`, "metrics[1].name"},
		// A direction that is neither lower nor higher.
		{"direction", `{"schema": "salvo.baseline/v1", "metrics": [{"name": "latency_ms.p99", "better": "less"}]}`, "metrics[0].better"},
		// A negative tolerance.
		{"negative tolerance", `{"schema": "salvo.baseline/v1", "metrics": [{"name": "latency_ms.p99", "better": "lower", "tolerance_pct": -5}]}`, "metrics[0].tolerance_pct"},
		// A negative value.
		{"negative value", `{"schema": "salvo.baseline/v1", "metrics": [{"name": "latency_ms.p99", "better": "lower", "value": -1}]}`, "metrics[0].value"},
		// A misspelt field is refused rather than read as a zero tolerance.
		{"unknown field", `{"schema": "salvo.baseline/v1", "metrics": [{"name": "latency_ms.p99", "better": "lower", "tolerence_pct": 5}]}`, "tolerence_pct"},
		// A number given as a string.
		{"type", `{"schema": "salvo.baseline/v1", "metrics": [{"name": "latency_ms.p99", "value": "900"}]}`, "metrics.value"},
		// A negative run count.
		{"runs", `{"schema": "salvo.baseline/v1", "runs": -1, "metrics": [` + metric + `]}`, "runs"},
		// Broken JSON names no field.
		{"syntax", `{"schema": "salvo.baseline/v1",`, ""},
		// Two JSON values in one file.
		{"trailing", `{"schema": "salvo.baseline/v1", "metrics": [` + metric + `]} {}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseBaseline("baseline.json", []byte(tt.json))
			var ie *InputError
			if !errors.As(err, &ie) || ie.File != "baseline.json" || ie.Field != tt.field {
				t.Fatalf("err = %v, want an *InputError on baseline.json field %q", err, tt.field)
			}
		})
	}
}

func TestNewBaseline(t *testing.T) {
	t.Parallel()
	runs := []Run{
		{Path: "1", Report: metricReport(400, 800, 900, 800, 900, 1200, 20000, 4)},
		{Path: "2", Report: metricReport(500, 700, 950, 700, 950, 1300, 18000, 5)},
		{Path: "3", Report: metricReport(450, 750, 1000, 750, 1000, 1250, 22000, 6)},
	}
	b, err := NewBaseline(runs, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, m := range b.Metrics {
		got[m.Name] = m.Value
	}
	want := map[string]float64{
		"latency_ms.p50": 450, "latency_ms.p95": 750, "latency_ms.p99": 950, "milestones_ms.p95": 750,
		"milestones_ms.p99": 950, "milestones_ms.all": 1250, "throughput_per_s.mean": 20000,
		"resources.sender_cpu_us_per_notification": 5,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("medians = %v, want %v", got, want)
	}
	if b.Scenario != "ci" || b.Runs != 3 || b.Validate() != nil {
		t.Fatalf("baseline = %+v", b)
	}

	// A refresh keeps the existing metric list and tolerances.
	keep := &Baseline{Schema: BaselineSchema, Metrics: []BaselineMetric{
		{Name: "latency_ms.p999", Value: 1, Better: LowerIsBetter, TolerancePct: 7, ToleranceAbs: 3},
	}}
	b, err = NewBaseline(runs, keep)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Metrics) != 1 || b.Metrics[0].TolerancePct != 7 || b.Metrics[0].ToleranceAbs != 3 || b.Metrics[0].Value != 0 {
		t.Fatalf("refreshed metrics = %+v", b.Metrics)
	}

	// A failed run cannot be a baseline.
	failed := metricReport(400, 800, 900, 800, 900, 1200, 20000, 4)
	failed.Pass = false
	var ie *InputError
	if _, err := NewBaseline([]Run{{Path: "f", Report: failed}}, nil); !errors.As(err, &ie) || ie.Field != "pass" {
		t.Fatalf("failed run: err = %v", err)
	}
	// Nor can a median milestone that was never reached.
	unreached := metricReport(400, 800, 900, 800, 900, Unreached, 20000, 4)
	if _, err := NewBaseline([]Run{{Path: "u", Report: unreached}}, nil); err == nil || !strings.Contains(err.Error(), "milestones_ms.all") {
		t.Fatalf("unreached: err = %v", err)
	}
}

func TestReadRuns(t *testing.T) {
	t.Parallel()
	// A single run folder.
	single := t.TempDir()
	in := fixture(1000, 1)
	if err := WriteRun(single, Build(in), in); err != nil {
		t.Fatal(err)
	}
	if runs, err := ReadRuns(single); err != nil || len(runs) != 1 {
		t.Fatalf("single: %d runs, %v", len(runs), err)
	}
	// Repeats, with an unrelated folder that holds no report.
	repeats := t.TempDir()
	writeRepeats(t, repeats, 1, 1)
	if err := os.Mkdir(filepath.Join(repeats, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	runs, err := ReadRuns(repeats)
	if err != nil || len(runs) != 2 || filepath.Base(filepath.Dir(runs[1].Path)) != "run-2" {
		t.Fatalf("repeats: %v, %v", runs, err)
	}
	// A folder of arms, read through summary.json.
	if err := WriteSummary(repeats, []Arm{{Name: "run-2", Report: runs[1].Report}}); err != nil {
		t.Fatal(err)
	}
	if runs, err := ReadRuns(repeats); err != nil || len(runs) != 1 {
		t.Fatalf("summary: %d runs, %v", len(runs), err)
	}
	// Nothing to read.
	var ie *InputError
	if _, err := ReadRuns(t.TempDir()); !errors.As(err, &ie) {
		t.Fatalf("empty: err = %v", err)
	}
	if _, err := ReadRuns(filepath.Join(t.TempDir(), "missing")); !errors.As(err, &ie) {
		t.Fatalf("missing: err = %v", err)
	}
}

// FuzzParseBaseline feeds the baseline parser arbitrary bytes: it must never panic, and
// whatever it accepts must be valid and survive a write and a second parse unchanged.
func FuzzParseBaseline(f *testing.F) {
	good, err := json.Marshal(goldenBaseline())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"schema": "salvo.baseline/v1", "metrics": [{"name": "latency_ms.p99", "value": 1e308, "better": "higher"}]}`))
	f.Add([]byte(`{"schema": "salvo.baseline/v1", "metrics": [{"name": "latency_ms.p99", "value": -0, "better": "lower"}]} `))
	f.Add([]byte(`{"metrics": null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBaseline("fuzz.json", data)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || ie.File != "fuzz.json" {
				t.Fatalf("error %v is not an *InputError naming the file", err)
			}
			return
		}
		if err := b.Validate(); err != nil {
			t.Fatalf("accepted an invalid baseline: %v", err)
		}
		again, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		b2, err := ParseBaseline("fuzz.json", again)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", again, err)
		}
		if !reflect.DeepEqual(b, b2) {
			t.Fatalf("round trip changed the baseline:\n%+v\n%+v", b, b2)
		}
	})
}

func TestFailureClassification(t *testing.T) {
	t.Parallel()
	tests := []struct {
		failure     string
		performance bool
	}{
		{"truth: latency histogram holds 7 samples but delivery.accepted is 8", false}, // numbers disagree
		{"lost: 2 recipients were never accepted (max 0)", false},                      // correctness
		{"failed: the sender gave up on 1 recipients (max 0)", false},                  // correctness
		{"duplicates: 1 recipients were accepted more than once (max 0)", false},       // correctness
		{"target: p99 milestone 6,001 ms is later than the 5 s target", true},          // speed
		{"latency: p99 800.3 ms exceeds 500 ms", true},                                 // speed
		{"throughput: mean 10/s is below 100/s", true},                                 // speed
		{"prepare: 2,500 ms exceeds 2,000 ms", true},                                   // speed
		{"memory: sender peak RSS 2000 bytes exceeds 1000 bytes", true},                // size
		{"something new", false},                                                       // unknown: treated as correctness
	}
	for _, tt := range tests {
		if got := isPerformanceFailure(tt.failure); got != tt.performance {
			t.Errorf("isPerformanceFailure(%q) = %v, want %v", tt.failure, got, tt.performance)
		}
	}
}
