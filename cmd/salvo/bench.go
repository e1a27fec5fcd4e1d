package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/salvopush/salvo/results"
	"github.com/salvopush/salvo/scenarios"
	"github.com/salvopush/salvo/sender/transport"
)

// runBench runs one scenario end to end: `salvo bench --scenario NAME|FILE [--audience N]
// [--out DIR] [--arm NAME,...] [--repeat N]`. With --repeat N > 1 it plays the scenario N
// times into DIR/run-1 .. DIR/run-N (the layout `salvo results compare` reads as repeats).
// Exit 0 when every run passes its criteria, 1 when one fails, 2 on bad usage or a setup
// failure.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	name := fs.String("scenario", "throughput", "built-in scenario name ("+strings.Join(scenarios.Names(), ", ")+") or a scenario JSON file")
	audience := fs.Int("audience", 0, "override the scenario's audience (number of users)")
	kind := fs.String("transport", "", "override the scenario's push transports: burst (the default of every scenario that names none) or stock (apns2, firebase admin)")
	out := fs.String("out", filepath.Join("results", "latest"), "folder for report.json and the readable reports")
	cache := fs.String("cache-dir", filepath.Join("results", "cache"), "folder keeping generated registries between runs")
	arms := fs.String("arm", "", "run only these arms of a multi-arm scenario (comma-separated names)")
	repeat := fs.Int("repeat", 1, "play the scenario N times, into DIR/run-1 .. DIR/run-N (1..20)")
	verbose := fs.Bool("v", false, "log the pipeline's events to stderr")
	var prof profileFlags
	prof.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: salvo bench --scenario NAME|FILE [--audience N] [--transport burst|stock] [--out DIR] [--arm NAME,...] [--repeat N] [flags]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *audience < 0 {
		return usageError("--audience: must not be negative")
	}
	if *kind != "" {
		if _, err := transport.ParseKind(*kind); err != nil {
			return usageError("--transport: %v", err)
		}
	}
	if *repeat < 1 || *repeat > 20 {
		return usageError("--repeat: %d is out of range (1..20)", *repeat)
	}
	var armNames []string
	if *arms != "" {
		armNames = strings.Split(*arms, ",")
	}
	sc, err := scenarios.Load(*name)
	if err != nil {
		return usageError("%v", err)
	}
	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = slog.New(slog.NewTextHandler(stderr, nil))
	}
	stopProf, err := prof.start(ctx)
	if err != nil {
		return usageError("%v", err)
	}
	defer func() {
		if perr := stopProf(); perr != nil {
			fmt.Fprintf(stderr, "salvo bench: %v\n", perr)
		}
	}()
	var reports []*results.Report
	for i := 1; i <= *repeat; i++ {
		dir := *out
		if *repeat > 1 {
			dir = filepath.Join(*out, fmt.Sprintf("run-%d", i))
			fmt.Fprintf(stdout, "== run %d of %d -> %s\n", i, *repeat, dir)
		}
		reps, err := scenarios.Run(ctx, sc, scenarios.Options{Out: dir, CacheDir: *cache, Audience: *audience,
			Transport: *kind, Arms: armNames, Progress: stdout, Log: log})
		if err != nil {
			if errors.Is(err, scenarios.ErrSetup) {
				return &exitError{code: 2, err: err}
			}
			return &exitError{code: 1, err: err}
		}
		reports = append(reports, reps...)
	}
	// Every verdict is results.Build's (Report.Pass, Report.Verdict); this only prints them
	// and maps them to the exit code.
	failed := 0
	for _, r := range reports {
		fmt.Fprintf(stdout, "%s: %s: accepted %d, lost %d, duplicates %d (mock %d); p95 %.0f ms, p99 %.0f ms; %.0f/s; %.2f CPU-µs/notification; %s\n",
			r.Scenario, r.Verdict(), r.Delivery.Accepted, r.Delivery.Lost, r.Delivery.Duplicates, mockDup(r.Mock),
			r.Latency.P95, r.Latency.P99, r.Throughput.Mean, r.Resources.SenderCPUUsPerNotification, r.TargetLine())
		for _, f := range r.Failures {
			fmt.Fprintf(stdout, "  FAIL: %s\n", f)
		}
		if !r.Pass {
			failed++
		}
	}
	switch {
	case *repeat > 1:
		fmt.Fprintf(stdout, "reports: %s\n", filepath.Join(*out, "run-*"))
	case len(sc.Arms) > 0:
		fmt.Fprintf(stdout, "summary: %s\n", filepath.Join(*out, "summary.md"))
	default:
		fmt.Fprintf(stdout, "report: %s\n", filepath.Join(*out, "report.json"))
	}
	if failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d runs failed their criteria", failed, len(reports))}
	}
	return nil
}

func mockDup(m *results.Mock) int64 {
	if m == nil {
		return 0
	}
	return m.Duplicates
}
