package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/salvopush/salvo/sender"
)

// runWorker runs a fan-out or send worker (or both) as its own process over the AWS
// backends. Send workers preload every campaign whose prepare was requested, report ready,
// publish heartbeats and their statistics (under --stats-prefix in S3), and push batches.
// It runs until SIGINT/SIGTERM; a worker killed outright loses nothing: its messages come
// back after the visibility timeout and its ledger leases expire.
func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("worker", stderr)
	role := fs.String("role", "", "fanout, send, or both (required)")
	id := fs.String("id", "", "worker ID (default: random)")
	sendLoops := fs.Int("send-loops", 64, "send goroutines")
	fanoutLoops := fs.Int("fanout-loops", 2, "fan-out goroutines")
	visibility := fs.Duration("visibility", 30*time.Second, "batch queue visibility timeout (a dead worker's batches come back after it)")
	lease := fs.Duration("lease", time.Minute, "ledger lease on a batch being sent (a dead worker's claims expire after it)")
	chunk := fs.Int("chunk", 50, "recipients per push round, each marked done in the ledger as soon as answered (bounds what a killed worker leaves unknown)")
	statsPrefix := fs.String("stats-prefix", "runs/", "S3 prefix for the worker's published send statistics")
	readyFile := fs.String("ready-file", "", "write the worker ID to this file once running")
	var tf transportFlags
	tf.register(fs)
	var a awsFlags
	a.register(fs)
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
	cfg := sender.WorkerConfig{ID: *id, Visibility: *visibility, Lease: *lease, StatsPrefix: *statsPrefix, Chunk: *chunk,
		Heartbeat: 2 * time.Second, Log: slog.New(slog.NewTextHandler(stderr, nil))}
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
	b, err := a.open(ctx, cfg.ID, *visibility)
	if err != nil {
		return err
	}
	cfg.Objects, cfg.Records, cfg.Ledger, cfg.Ranges, cfg.Batches = b.objects, b.records, b.ledger, b.ranges, b.batches
	if cfg.Send > 0 {
		transports, err := tf.open(ctx)
		if err != nil {
			return err
		}
		defer transports.Close()
		cfg.Transports = transports
	}
	w, err := sender.NewWorker(cfg)
	if err != nil {
		return usageError("%v", err)
	}
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
