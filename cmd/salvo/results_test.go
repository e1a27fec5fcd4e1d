package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/salvopush/salvo/results"
	"github.com/salvopush/salvo/sender/metrics"
)

// writeCIRuns writes one passing run per latency (ms) as dir/run-N: 1,000 recipients
// accepted evenly up to that latency.
func writeCIRuns(t *testing.T, dir string, lastMs ...int) {
	t.Helper()
	for i, ms := range lastMs {
		h := metrics.NewLatencyHistogram()
		tl := metrics.NewTimeline(metrics.DefaultStep)
		const n = 1000
		for k := 1; k <= n; k++ {
			d := time.Duration(k*ms/n) * time.Millisecond
			metrics.RecordLatency(h, d)
			tl.Add(d, true)
		}
		in := results.Inputs{
			Scenario: "ci",
			Audience: results.Audience{Recipients: n, IOS: n},
			Delivery: results.Delivery{Accepted: n},
			Mock:     &results.Mock{Received: n, Unique: n},
			Latency:  h, Timeline: tl,
			Resources: results.Resources{SenderCPUSeconds: float64(ms) / 1000},
		}
		if err := results.WriteRun(filepath.Join(dir, "run-"+strconv.Itoa(i+1)), results.Build(in), in); err != nil {
			t.Fatal(err)
		}
	}
}

func TestResultsExitCodes(t *testing.T) {
	ref, fast, slow := t.TempDir(), t.TempDir(), t.TempDir()
	writeCIRuns(t, ref, 1000, 1000, 1000)
	writeCIRuns(t, fast, 1020, 980, 1050)  // noise
	writeCIRuns(t, slow, 1600, 1700, 1650) // injected regression
	baseline := filepath.Join(t.TempDir(), "baseline.json")
	badBaseline := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(badBaseline, []byte(`{"schema": "salvo.baseline/v1", "metrics": [{"name": "latency_ms.p99", "better": "sideways"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		code     int
		inOutput string // expected in stdout or stderr
	}{
		// A fresh baseline from the reference runs.
		{"baseline", []string{"results", "baseline", "--from", ref, "--out", baseline}, 0, "8 metrics"},
		// Noise within tolerance passes.
		{"compare noise", []string{"results", "compare", "--baseline", baseline, "--current", fast}, 0, "PASS:"},
		// The injected regression fails the gate with exit code 1.
		{"compare regression", []string{"results", "compare", "--baseline", baseline, "--current", slow}, 1, "REGRESSED"},
		// A missing baseline is bad input.
		{"missing baseline", []string{"results", "compare", "--baseline", baseline + ".nope", "--current", fast}, 2, "no such file"},
		// A malformed baseline names the file and the field.
		{"bad baseline", []string{"results", "compare", "--baseline", badBaseline, "--current", fast}, 2, "bad.json: field metrics[0].better"},
		// A folder without reports is bad input.
		{"no runs", []string{"results", "compare", "--baseline", baseline, "--current", t.TempDir()}, 2, "no report.json"},
		// Required flags.
		{"missing flag", []string{"results", "compare", "--baseline", baseline}, 2, "--current are required"},
		// Re-rendering a run folder.
		{"render", []string{"results", "render", filepath.Join(fast, "run-1")}, 0, "rendered"},
		// Rendering a folder with no report is bad input.
		{"render nothing", []string{"results", "render", t.TempDir()}, 2, "report.json"},
		// No subcommand.
		{"no subcommand", []string{"results"}, 2, "missing subcommand"},
		// Help exits 0.
		{"help", []string{"results", "compare", "-h"}, 0, "-baseline"},
	}
	for _, tt := range tests { // in order: compare needs the baseline
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout.String(), stderr.String())
			}
			if out := stdout.String() + stderr.String(); !strings.Contains(out, tt.inOutput) {
				t.Fatalf("output lacks %q:\n%s", tt.inOutput, out)
			}
		})
	}
}
