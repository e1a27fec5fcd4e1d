package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/salvopush/salvo/sender/console"
	"github.com/salvopush/salvo/sender/diskregistry"
	"github.com/salvopush/salvo/sender/embedded"
	"github.com/salvopush/salvo/sender/prom"
)

// runAll runs the whole pipeline in one process (the embedded default): the campaign API,
// fan-out and send workers over in-process queues, a local object store and the on-disk
// registry. It serves until SIGINT/SIGTERM.
func runAll(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("all", stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "campaign API listen address")
	regDir := fs.String("registry", "", "on-disk device registry folder (from `salvo gen registry`)")
	data := fs.String("data", "salvo-data", "folder of the system's state: objects, campaign records, the delivery ledger (a restart on it resumes interrupted sends)")
	chunk := fs.Int("chunk", 50, "recipients per push round, each recorded in the ledger as soon as answered (bounds what a crash leaves unknown: send loops x chunk)")
	readyFile := fs.String("ready-file", "", "write the API's URL to this file once listening")
	drain := fs.Duration("drain", 10*time.Second, "on SIGINT/SIGTERM: how long pushes in flight may take to finish and be recorded")
	sendLoops := fs.Int("send-loops", 64, "send goroutines")
	fanoutLoops := fs.Int("fanout-loops", 2, "fan-out goroutines")
	var tf transportFlags
	tf.register(fs)
	var af authFlags
	af.register(fs, "")
	var of observeFlags
	of.register(fs)
	var wf workflowFlags
	wf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: salvo all --registry DIR (--mock-ready FILE | provider flags) [flags]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *regDir == "" {
		return usageError("--registry is required")
	}
	if *sendLoops < 1 || *fanoutLoops < 1 || *chunk < 1 {
		return usageError("--send-loops, --fanout-loops and --chunk must be at least 1")
	}
	if af.tokenFile == "" {
		af.tokenFile = filepath.Join(*data, "api-token")
	}
	log, err := of.logger(stderr)
	if err != nil {
		return err
	}
	users, token, err := af.users(*addr, stdout)
	if err != nil {
		return err
	}
	reg, err := diskregistry.Open(*regDir)
	if err != nil {
		return usageError("--registry: %v", err)
	}
	defer reg.Close()
	transports, err := tf.open(ctx)
	if err != nil {
		return err
	}
	defer transports.Close()
	metrics := prom.New()
	sys, err := embedded.Start(ctx, embedded.Config{Dir: *data, Registry: reg, Transports: metrics.Transports(transports),
		APIAddr: *addr, Users: users, Token: token, Routes: reportRoutes, Send: *sendLoops, Fanout: *fanoutLoops, Chunk: *chunk, Drain: *drain, Log: log,
		// The operator's workflow: the console on the API's listener; test pushes on the transports.
		Console: console.Handler(), ApproveWithoutTestPush: wf.approveWithoutTestPush})
	if err != nil {
		return err
	}
	for _, w := range sys.Workers {
		metrics.WatchWorker(w)
	}
	metrics.WatchService(sys.Service, sys.Records)
	metrics.WatchQueue("ranges", memDepth(sys.Ranges))
	metrics.WatchQueue("batches", memDepth(sys.Batches))
	metrics.WatchQueue("dead_letters", memDepth(sys.DeadLetters))
	stopMetrics, err := of.serveMetrics(metrics, stdout, log)
	if err != nil {
		_ = sys.Close()
		return err
	}
	defer stopMetrics()
	if err := writeReady(*readyFile, sys.URL()); err != nil {
		_ = sys.Close()
		return err
	}
	fmt.Fprintf(stdout, "salvo all: campaign API on %s, console on %s/console/\n", sys.URL(), sys.URL())
	select {
	case <-ctx.Done():
		log.Info("stopping: no new batches; draining pushes in flight", "drain", *drain)
	case err = <-sys.Errors():
	}
	if cerr := sys.Close(); err == nil {
		err = cerr
	}
	log.Info("stopped; unfinished sends resume when salvo all starts again on the same --data", "data", *data)
	return err
}
