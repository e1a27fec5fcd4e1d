package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salvopush/salvo/sender/metrics"
)

// goldenRun builds a fixture report with the machine pinned.
func goldenRun(in Inputs) *Report {
	r := Build(in)
	r.Machine = fixtureMachine()
	return r
}

// failingFixture is a run that breaks several criteria: 25 recipients lost, 3 duplicates
// (seen by the sender and by the mock), and p95 above its bound.
func failingFixture() Inputs {
	in := fixture(20000, 2)
	in.Scenario = "chaos"
	in.Audience.Recipients += 25
	in.Audience.Android += 25
	in.Delivery.Duplicates = 3
	in.Mock.Duplicates, in.Mock.Received = 3, in.Mock.Received+3
	in.Criteria.MaxP95Ms = 3000
	return in
}

func TestReportMarkdownGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   Inputs
	}{
		// A run that passes, with faults injected and extra parameters.
		{"report.md", fixture(20000, 1)},
		// A run that fails: the verdict line, late milestones and the failures list.
		{"report-fail.md", failingFixture()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := writeReportMD(&buf, goldenRun(tt.in)); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name, buf.Bytes())
		})
	}
}

func TestWriteRunThenRenderGivesTheSameFiles(t *testing.T) {
	t.Parallel()
	in := fixture(8000, 4)
	dir := t.TempDir()
	if err := WriteRun(dir, goldenRun(in), in); err != nil {
		t.Fatal(err)
	}
	views := []string{"report.md", "latency.hgrm", "delivered.svg", "latency.svg"}
	before := map[string][]byte{}
	for _, name := range views {
		before[name] = mustRead(t, filepath.Join(dir, name))
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := Render(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range views {
		if !bytes.Equal(mustRead(t, filepath.Join(dir, name)), before[name]) {
			t.Errorf("%s re-rendered from the data files differs from the original", name)
		}
	}
	for _, name := range []string{"report.json", "latency.hlog", "timeline.csv"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
}

func TestRenderNamesTheBadFile(t *testing.T) {
	t.Parallel()
	in := fixture(1000, 4)
	dir := t.TempDir()
	if err := WriteRun(dir, goldenRun(in), in); err != nil {
		t.Fatal(err)
	}
	hlog := filepath.Join(dir, "latency.hlog")
	if err := os.WriteFile(hlog, []byte("0,1,2,garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Render(dir)
	var ie *InputError
	if !errors.As(err, &ie) || ie.File != hlog {
		t.Fatalf("err = %v, want an *InputError naming %s", err, hlog)
	}
	if err := Render(t.TempDir()); !errors.As(err, &ie) || !strings.HasSuffix(ie.File, "report.json") {
		t.Fatalf("empty folder: err = %v, want an *InputError naming report.json", err)
	}
}

func TestSVGsAreWellFormed(t *testing.T) {
	t.Parallel()
	for _, in := range []Inputs{fixture(3000, 1), failingFixture(), smallRun(), {}} {
		r := Build(in)
		h := in.Latency
		if h == nil {
			h = metrics.NewLatencyHistogram()
		}
		for name, doc := range map[string][]byte{
			"delivered": deliveredSVG(r, h, in.Timeline),
			"latency":   latencySVG(r, h),
			"summary":   summarySVG([]armCurve{{name: "a", report: r, hist: h}}),
		} {
			if err := xmlWellFormed(doc); err != nil {
				t.Errorf("%s.svg of %q: %v", name, in.Scenario, err)
			}
			if bytes.Contains(doc, []byte("NaN")) || bytes.Contains(doc, []byte("Inf")) {
				t.Errorf("%s.svg of %q holds NaN or Inf coordinates", name, in.Scenario)
			}
		}
	}
}

func TestSummary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var arms []Arm
	for i, n := range []int64{5000, 10000, 20000} {
		in := fixture(n, uint64(i))
		in.Scenario = "audience"
		r := goldenRun(in)
		name := []string{"500k", "1m", "2m"}[i]
		if err := WriteRun(filepath.Join(dir, name), r, in); err != nil {
			t.Fatal(err)
		}
		arm := Arm{Name: name, Report: r}
		if i == 1 {
			arm.Dir = filepath.Join(dir, name) // as a runner passes it: the folder given to WriteRun
		}
		arms = append(arms, arm)
	}
	if err := WriteSummary(dir, arms); err != nil {
		t.Fatal(err)
	}
	// summary.json is exactly the contract's shape.
	var got any
	if err := json.Unmarshal(mustRead(t, filepath.Join(dir, "summary.json")), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"arms": []any{
		map[string]any{"name": "500k", "report": "500k/report.json"},
		map[string]any{"name": "1m", "report": "1m/report.json"},
		map[string]any{"name": "2m", "report": "2m/report.json"},
	}}
	if a, b := mustJSON(t, got), mustJSON(t, want); a != b {
		t.Fatalf("summary.json = %s, want %s", a, b)
	}
	golden(t, "summary.md", mustRead(t, filepath.Join(dir, "summary.md")))
	back, err := ReadSummary(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 3 || back[1].Name != "1m" || back[1].Report.Audience.Recipients != 10000 {
		t.Fatalf("read back %d arms: %+v", len(back), back)
	}
	if err := Render(dir); err != nil {
		t.Fatal(err)
	}
}

func TestWriteSummaryRefusesBadArms(t *testing.T) {
	t.Parallel()
	r := Build(smallRun())
	tests := []struct {
		name string
		arms []Arm
	}{
		// A name that would leave the folder.
		{"parent", []Arm{{Name: "..", Report: r}}},
		// A name with a separator.
		{"separator", []Arm{{Name: "a/b", Report: r}}},
		// No name.
		{"empty", []Arm{{Report: r}}},
		// The same arm twice.
		{"twice", []Arm{{Name: "a", Report: r}, {Name: "a", Report: r}}},
		// No report.
		{"no report", []Arm{{Name: "a"}}},
		// A folder outside the summary's.
		{"folder outside", []Arm{{Name: "a", Report: r, Dir: t.TempDir()}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := WriteSummary(t.TempDir(), tt.arms); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

func TestReadSummaryRefusesBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, json, field string
	}{
		// No arm at all.
		{"no arms", `{"arms": []}`, "arms"},
		// A report path that leaves the folder.
		{"escape", `{"arms": [{"name": "a", "report": "../a/report.json"}]}`, "arms[0].report"},
		// An arm name that is a path.
		{"name", `{"arms": [{"name": "a/b", "report": "a/report.json"}]}`, "arms[0].name"},
		// A wrong type.
		{"type", `{"arms": [{"name": 3}]}`, "arms.name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "summary.json"), []byte(tt.json), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadSummary(dir)
			var ie *InputError
			if !errors.As(err, &ie) || ie.Field != tt.field {
				t.Fatalf("err = %v, want an *InputError on field %q", err, tt.field)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
