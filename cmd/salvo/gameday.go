package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/salvopush/salvo/gameday"
	"github.com/salvopush/salvo/sender/prom"
)

// runGameday runs a rehearsal against the providers named in its config, silent pushes
// only, through the production pipeline (embedded, or a deployed API with "api"), and writes
// its report. Exit 0: finished and the criteria held; 1: a criterion failed or the run was
// aborted; 2: refused before any push, or could not run.
func runGameday(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gameday", stderr)
	configPath := fs.String("config", "", "rehearsal config, JSON (docs/gameday.md) (required)")
	out := fs.String("out", "", "output folder: report.json, report.md, latency files, plots, "+gameday.FeedbackFile+" (required)")
	yes := fs.Bool("yes", false, "press GO without asking for the typed confirmation")
	apiAddr := fs.String("api-addr", "127.0.0.1:0", "embedded mode: where the campaign API listens (abort it from elsewhere with POST .../abort)")
	var of observeFlags
	of.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: salvo gameday --config FILE --out DIR [--yes] [flags]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *configPath == "":
		return usageError("--config: required")
	case *out == "":
		return usageError("--out: required")
	}
	data, err := os.ReadFile(*configPath)
	if err != nil {
		return usageError("--config: %v", err)
	}
	cfg, err := gameday.ParseConfig(data)
	if err != nil {
		return usageError("%s: %v", *configPath, err)
	}
	cfg.Resolve(filepath.Dir(*configPath))
	log, err := of.logger(stderr)
	if err != nil {
		return err
	}
	metrics := prom.New()
	stopMetrics, err := of.serveMetrics(metrics, stdout, log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	rep, err := gameday.Run(ctx, cfg, gameday.Options{Out: *out, Yes: *yes, Confirm: os.Stdin, Progress: stdout, Log: log,
		Getenv: os.Getenv, Metrics: metrics, APIAddr: *apiAddr})
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	fmt.Fprintf(stdout, "%s: report in %s\n", rep.Verdict(), filepath.Join(*out, "report.md"))
	if !rep.Pass {
		return &exitError{code: 1, err: fmt.Errorf("%s", strings.Join(rep.Failures, "; "))}
	}
	return nil
}
