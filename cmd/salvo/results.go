package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/salvopush/salvo/results"
)

const resultsUsage = `usage: salvo results <subcommand> [flags]

subcommands:
  compare   --baseline FILE --current DIR    compare runs with a baseline (exit 1 on a regression)
  baseline  --from DIR [--out FILE]          write a baseline from the medians of the runs in DIR
  render    DIR                              re-render report.md, latency.hgrm and plots from the data files

DIR is a run folder (DIR/report.json), a folder of arms (DIR/summary.json) or a folder of
repeat runs (DIR/*/report.json). See docs/reports.md.
`

// runResults dispatches "salvo results compare|baseline|render".
func runResults(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, resultsUsage)
		return usageError("missing subcommand (compare, baseline or render)")
	}
	switch args[0] {
	case "compare":
		return runResultsCompare(args[1:], stdout, stderr)
	case "baseline":
		return runResultsBaseline(args[1:], stdout, stderr)
	case "render":
		return runResultsRender(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, resultsUsage)
		return flag.ErrHelp
	}
	fmt.Fprint(stderr, resultsUsage)
	return usageError("unknown subcommand %q", args[0])
}

// runResultsCompare is the CI gate: exit 0 within tolerance, 1 on a regression, 2 on bad input.
func runResultsCompare(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("results compare", stderr)
	baselinePath := fs.String("baseline", "", "baseline file (JSON, schema salvo.baseline/v1)")
	current := fs.String("current", "", "run folder, folder of arms or folder of repeat runs")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *baselinePath == "" || *current == "" {
		return usageError("compare: --baseline and --current are required")
	}
	cmp, err := results.CompareFiles(*baselinePath, *current)
	if err != nil {
		return inputError("compare", err)
	}
	if err := cmp.WriteTable(stdout); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	if err := cmp.Err(); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("compare: %w", err)}
	}
	return nil
}

// runResultsBaseline writes a baseline from the medians of the runs in --from.
func runResultsBaseline(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("results baseline", stderr)
	from := fs.String("from", "", "run folder, folder of arms or folder of repeat runs")
	out := fs.String("out", "results/baseline.json", "baseline file to write")
	reset := fs.Bool("reset-tolerances", false, "use the default metrics and tolerances instead of those of the existing --out file")
	note := fs.String("note", "", "note stored in the baseline (default: where and when it was made)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *from == "" {
		return usageError("baseline: --from is required")
	}
	runs, err := results.ReadRuns(*from)
	if err != nil {
		return inputError("baseline", err)
	}
	var keep *results.Baseline
	if !*reset {
		old, err := results.ReadBaseline(*out)
		switch {
		case err == nil:
			keep = old
		case errors.Is(err, os.ErrNotExist):
		default:
			return inputError("baseline", fmt.Errorf("%w (use --reset-tolerances to start afresh)", err))
		}
	}
	b, err := results.NewBaseline(runs, keep)
	if err != nil {
		return inputError("baseline", err)
	}
	b.Note = *note
	if b.Note == "" {
		b.Note = fmt.Sprintf("medians of %d run(s) in %s, %s", len(runs), *from, time.Now().UTC().Format(time.DateOnly))
	}
	if err := results.WriteBaseline(*out, b); err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s: %d metrics, medians of %d run(s) of scenario %s\n", *out, len(b.Metrics), b.Runs, b.Scenario)
	for _, m := range b.Metrics {
		fmt.Fprintf(stdout, "  %-42s %14.3f  (%s is better, %g%%, min %g)\n", m.Name, m.Value, m.Better, m.TolerancePct, m.ToleranceAbs)
	}
	return nil
}

// runResultsRender re-renders a run folder, or every arm of a summary folder.
func runResultsRender(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("results render", stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: salvo results render DIR")
		fs.PrintDefaults()
	}
	var dir string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		dir, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if dir == "" {
		return usageError("render: missing DIR")
	}
	if err := results.Render(dir); err != nil {
		return inputError("render", err)
	}
	fmt.Fprintf(stdout, "rendered %s\n", dir)
	return nil
}

// inputError maps bad input (a file that is missing or malformed) to exit code 2 and any
// other error to exit code 1.
func inputError(prefix string, err error) error {
	var ie *results.InputError
	if errors.As(err, &ie) {
		return usageError("%s: %w", prefix, err)
	}
	return fmt.Errorf("%s: %w", prefix, err)
}
