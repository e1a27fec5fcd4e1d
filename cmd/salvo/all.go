package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/salvopush/salvo/sender/diskregistry"
	"github.com/salvopush/salvo/sender/embedded"
)

// runAll runs the whole pipeline in one process (the embedded default): the campaign API,
// fan-out and send workers over in-process queues, a local object store and the on-disk
// registry. It serves until SIGINT/SIGTERM.
func runAll(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("all", stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "campaign API listen address")
	regDir := fs.String("registry", "", "on-disk device registry folder (from `salvo gen registry`)")
	data := fs.String("data", "salvo-data", "folder of the object store (resolved campaigns, feedback)")
	sendLoops := fs.Int("send-loops", 64, "send goroutines")
	fanoutLoops := fs.Int("fanout-loops", 2, "fan-out goroutines")
	var tf transportFlags
	tf.register(fs)
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
	if *sendLoops < 1 || *fanoutLoops < 1 {
		return usageError("--send-loops and --fanout-loops must be at least 1")
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
	log := slog.New(slog.NewTextHandler(stderr, nil))
	sys, err := embedded.Start(ctx, embedded.Config{Dir: *data, Registry: reg, Transports: transports,
		APIAddr: *addr, Send: *sendLoops, Fanout: *fanoutLoops, Log: log})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "salvo all: campaign API on %s\n", sys.URL())
	select {
	case <-ctx.Done():
	case err = <-sys.Errors():
	}
	if cerr := sys.Close(); err == nil {
		err = cerr
	}
	return err
}
