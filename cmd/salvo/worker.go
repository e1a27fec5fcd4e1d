package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/prom"
	"github.com/salvopush/salvo/sender/ratelimit"
)

// runWorker runs a fan-out or send worker (or both) as its own process over the AWS
// backends. Send workers preload every campaign whose prepare was requested and that has not
// finished, report ready, publish heartbeats and their figures per send (runs/<campaign>/
// <send>/<worker>.json in S3), and push batches. It runs until SIGINT/SIGTERM, then drains;
// a worker killed outright loses nothing: it renews its leases and its messages'
// visibility every --renew, so others take its unfinished recipients over within about
// --lease.
func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("worker", stderr)
	role := fs.String("role", "", "fanout, send, or both (required)")
	id := fs.String("id", "", "worker ID (default: random)")
	sendLoops := fs.Int("send-loops", 64, "send goroutines")
	fanoutLoops := fs.Int("fanout-loops", 2, "fan-out goroutines")
	visibility := fs.Duration("visibility", 6*time.Second, "visibility of the messages a worker holds, renewed while it works (a dead worker's batches come back after it)")
	lease := fs.Duration("lease", 6*time.Second, "ledger lease on recipients being sent, renewed while the worker lives (a dead worker's claims expire after it)")
	renew := fs.Duration("renew", 0, "how often leases and visibility are renewed (default a third of the shorter of --lease and --visibility)")
	drain := fs.Duration("drain", 10*time.Second, "on SIGINT/SIGTERM: how long pushes in flight may take to finish and be recorded")
	chunk := fs.Int("chunk", 50, "recipients per push round, each recorded in the ledger as soon as answered (bounds what a killed worker leaves unknown)")
	readyFile := fs.String("ready-file", "", "write the worker ID to this file once running")
	var tf transportFlags
	tf.register(fs)
	var a awsFlags
	a.register(fs)
	var of observeFlags
	of.register(fs)
	ratePerSecond := fs.Float64("rate-per-second", 0, "cap on the pushes per second to each provider from this worker (a token bucket in the send path; 0: none)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: salvo worker --role fanout|send|both [flags] [AWS flags] [transport flags]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *chunk < 0 {
		return usageError("--chunk: must not be negative")
	}
	if *visibility < time.Second || *lease < time.Second || *renew < 0 {
		return usageError("--visibility and --lease must be at least 1s, --renew not negative")
	}
	if *renew > 0 && *renew >= min(*lease, *visibility) {
		return usageError("--renew %v must be shorter than --lease and --visibility", *renew)
	}
	if *ratePerSecond < 0 {
		return usageError("--rate-per-second: must not be negative")
	}
	log, err := of.logger(stderr)
	if err != nil {
		return err
	}
	cfg := sender.WorkerConfig{ID: *id, Visibility: *visibility, Lease: *lease, Renew: *renew, Drain: *drain, Chunk: *chunk,
		Heartbeat: 2 * time.Second, Log: log}
	switch *role {
	case "fanout":
		cfg.Fanout = *fanoutLoops
	case "send":
		cfg.Send = *sendLoops
	case "both":
		cfg.Fanout, cfg.Send = *fanoutLoops, *sendLoops
	default:
		return usageError("--role: %q: want fanout, send or both", *role)
	}
	if cfg.ID == "" {
		host, _ := os.Hostname()
		cfg.ID = sender.NewID(fmt.Sprintf("%s-%s-%d-", *role, host, os.Getpid()))
	}
	b, err := a.open(ctx, *visibility)
	if err != nil {
		return err
	}
	cfg.Objects, cfg.Records, cfg.Ledger, cfg.Ranges, cfg.Batches = b.objects, b.records, b.ledger, b.ranges, b.batches
	cfg.DeadLetters = b.deadLetters
	metrics := prom.New()
	if cfg.Send > 0 {
		transports, err := tf.open(ctx)
		if err != nil {
			return err
		}
		defer transports.Close()
		// The cap sits outside the counting wrapper: held-back pushes never count as pushes.
		cfg.Transports, err = ratelimit.Wrap(metrics.Transports(transports), ratelimit.Config{PerSecond: *ratePerSecond})
		if err != nil {
			return usageError("--rate-per-second: %v", err)
		}
	}
	w, err := sender.NewWorker(cfg)
	if err != nil {
		return usageError("%v", err)
	}
	metrics.WatchWorker(w)
	metrics.WatchQueue("batches", b.batches.Depth)
	if cfg.Fanout > 0 {
		metrics.WatchQueue("ranges", b.ranges.Depth)
	}
	stopMetrics, err := of.serveMetrics(metrics, stdout, log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	if err := writeReady(*readyFile, w.ID()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "salvo worker %s: role %s\n", w.ID(), *role)
	return w.Run(ctx)
}

// writeReady writes content to path atomically (nothing when path is empty).
func writeReady(path, content string) error {
	if path == "" {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	return nil
}
