package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
	"github.com/salvopush/salvo/sender/console"
	"github.com/salvopush/salvo/sender/prom"
	"github.com/salvopush/salvo/sender/transport"
)

// runServe runs the campaign API as its own process over the AWS backends (SQS, S3,
// DynamoDB). Several API processes may serve the same deployment: GO stays exactly-once
// across them. It serves until SIGINT/SIGTERM.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	ranges := fs.Int("ranges", 50, "range messages per GO")
	readyFile := fs.String("ready-file", "", "write the API's URL to this file once listening")
	maxConns := fs.Int("max-conns", 1024, "most client connections open at once")
	var a awsFlags
	a.register(fs)
	var af authFlags
	af.register(fs, "salvo-api-token")
	var of observeFlags
	of.register(fs)
	var wf workflowFlags
	wf.register(fs)
	var tf transportFlags // test pushes only: campaigns are sent by the workers
	tf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: salvo serve [--addr ADDR] [AWS flags] [--mock-ready FILE | provider flags, for test pushes]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *ranges < 1 {
		return usageError("--ranges: must be at least 1")
	}
	log, err := of.logger(stderr)
	if err != nil {
		return err
	}
	users, _, err := af.users(*addr, stdout)
	if err != nil {
		return err
	}
	b, err := a.open(ctx, 0)
	if err != nil {
		return err
	}
	// The operator's workflow: transports for test pushes when provider flags are given.
	var testPushes transport.Set
	if tf.given() {
		if testPushes, err = tf.open(ctx); err != nil {
			return err
		}
		defer testPushes.Close()
	} else {
		log.Info("no provider flags: test pushes are refused (give --mock-ready or the provider flags)")
	}
	svc, err := sender.NewService(sender.ServiceConfig{Registry: b.registry, Objects: b.objects, Records: b.records,
		Ranges: b.ranges, Ledger: b.ledger, DeadLetters: b.deadLetters, RangeCount: *ranges, Log: log,
		Transports: testPushes, ApproveWithoutTestPush: wf.approveWithoutTestPush})
	if err != nil {
		return err
	}
	defer svc.Close()
	metrics := prom.New()
	metrics.WatchService(svc, b.records)
	metrics.WatchQueue("ranges", b.ranges.Depth)
	metrics.WatchQueue("batches", b.batches.Depth)
	metrics.WatchQueue("dead_letters", b.deadLetters.Depth)
	stopMetrics, err := of.serveMetrics(metrics, stdout, log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	lim := api.Limits{MaxConns: *maxConns}
	ln, err := api.Listen(*addr, lim)
	if err != nil {
		return usageError("--addr: %v", err)
	}
	url := "http://" + ln.Addr().String()
	if err := writeReady(*readyFile, url); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "salvo serve: campaign API on %s, console on %s/console/\n", url, url)
	return serveUntilDone(ctx, ln, api.NewServer(api.New(api.Config{Service: svc, Objects: b.objects, Users: users,
		Routes: reportRoutes(svc), Console: console.Handler()}), lim))
}

// serveUntilDone serves srv on ln until ctx ends, then shuts down gracefully.
func serveUntilDone(ctx context.Context, ln net.Listener, srv *http.Server) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
