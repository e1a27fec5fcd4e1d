package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/salvopush/salvo/sender/memqueue"
	"github.com/salvopush/salvo/sender/prom"
)

// observeFlags say how a long-running command is watched: Prometheus metrics on a listener
// of their own, and the format of its structured logs.
type observeFlags struct {
	metricsAddr string
	logFormat   string
}

func (o *observeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics (empty: no metrics listener)")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json (one JSON object per line)")
}

// logger returns the command's logger, writing to w in the chosen format.
func (o *observeFlags) logger(w io.Writer) (*slog.Logger, error) {
	switch o.logFormat {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, usageError("--log-format: %q: want text or json", o.logFormat)
}

// serveMetrics serves m at /metrics on --metrics-addr until stop is called; with no address
// it serves nothing. It prints the URL to stdout.
func (o *observeFlags) serveMetrics(m *prom.Metrics, stdout io.Writer, log *slog.Logger) (stop func(), err error) {
	if o.metricsAddr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", o.metricsAddr)
	if err != nil {
		return nil, usageError("--metrics-addr: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener", "err", err)
		}
	}()
	fmt.Fprintf(stdout, "metrics on http://%s/metrics\n", ln.Addr())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx) // metrics only: nothing to report on a slow scrape cut short
		<-done
	}, nil
}

// memDepth reads an in-process queue's depth for prom.Metrics.WatchQueue.
func memDepth(q *memqueue.Queue) func(context.Context) (int64, int64, error) {
	return func(context.Context) (int64, int64, error) {
		st := q.Stats()
		return int64(st.Visible), int64(st.InFlight), nil
	}
}
