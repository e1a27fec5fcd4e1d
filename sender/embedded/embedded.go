// Package embedded runs the whole sender pipeline in one process with no Docker and no cloud
// account: the campaign API, fan-out and send workers over in-process queues
// (sender/memqueue), a local object store (sender/localstore), in-memory records and an
// in-memory delivery ledger (sender/memledger). It is what `salvo all` and `salvo bench` run.
//
// Usage:
//
//	sys, err := embedded.Start(ctx, embedded.Config{Dir: dir, Registry: reg, Transports: tr})
//	defer sys.Close()
//	c := sys.Client() // the campaign API over HTTP
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
	"github.com/salvopush/salvo/sender/localstore"
	"github.com/salvopush/salvo/sender/memledger"
	"github.com/salvopush/salvo/sender/memqueue"
)

// Config configures an embedded system.
type Config struct {
	// Dir holds the object store (resolved campaigns, feedback files).
	Dir        string
	Registry   sender.Registry
	Transports map[sender.Platform]sender.Transport
	// APIAddr is where the campaign API listens (default 127.0.0.1:0, port chosen by the OS).
	APIAddr string
	// Fanout and Send are the worker's goroutines per role (defaults 2 and 64).
	Fanout int
	Send   int
	// Workers is how many send workers (each with its own preloaded copy) run in the
	// process (default 1).
	Workers int
	// RangeCount, BatchIOS, BatchAndroid and Retry tune the pipeline (sender defaults).
	RangeCount   int
	BatchIOS     int
	BatchAndroid int
	Retry        sender.RetryPolicy
	// Visibility is the batch queue's visibility timeout (default 30s).
	Visibility time.Duration
	Log        *slog.Logger
}

// Validate names the first bad field.
func (c *Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("embedded: Dir is required")
	case c.Registry == nil:
		return errors.New("embedded: Registry is required")
	case len(c.Transports) == 0:
		return errors.New("embedded: Transports is required")
	case c.Fanout < 0 || c.Send < 0 || c.Workers < 0:
		return errors.New("embedded: Fanout, Send and Workers must not be negative")
	}
	return nil
}

// System is a running embedded pipeline. Close stops it.
type System struct {
	Service *sender.Service
	Workers []*sender.Worker
	Objects sender.ObjectStore
	Records sender.RecordStore
	Ranges  *memqueue.Queue
	Batches *memqueue.Queue
	Ledger  *memledger.Ledger
	apiURL  string

	srv    *http.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errs   chan error
}

// Start builds and starts the system: API server and workers run until Close.
func Start(ctx context.Context, cfg Config) (*System, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.APIAddr == "" {
		cfg.APIAddr = "127.0.0.1:0"
	}
	if cfg.Fanout == 0 {
		cfg.Fanout = 2
	}
	if cfg.Send == 0 {
		cfg.Send = 64
	}
	if cfg.Workers == 0 {
		cfg.Workers = 1
	}
	if cfg.Visibility == 0 {
		cfg.Visibility = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	objects, err := localstore.Open(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	ranges, err := memqueue.New(memqueue.Config{FIFO: true, VisibilityTimeout: cfg.Visibility})
	if err != nil {
		return nil, fmt.Errorf("embedded: range queue: %w", err)
	}
	batches, err := memqueue.New(memqueue.Config{VisibilityTimeout: cfg.Visibility})
	if err != nil {
		return nil, fmt.Errorf("embedded: batch queue: %w", err)
	}
	s := &System{Objects: objects, Records: localstore.NewRecords(), Ranges: ranges, Batches: batches,
		Ledger: memledger.New(), errs: make(chan error, cfg.Workers+1)}
	s.Service, err = sender.NewService(sender.ServiceConfig{Registry: cfg.Registry, Objects: objects,
		Records: s.Records, Ranges: ranges, RangeCount: cfg.RangeCount})
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	for i := 0; i < cfg.Workers; i++ {
		fanout := 0
		if i == 0 {
			fanout = cfg.Fanout
		}
		w, err := sender.NewWorker(sender.WorkerConfig{ID: fmt.Sprintf("embedded-%d", i), Objects: objects,
			Records: s.Records, Ledger: s.Ledger, Ranges: ranges, Batches: batches, Transports: cfg.Transports,
			Fanout: fanout, Send: cfg.Send, BatchIOS: cfg.BatchIOS, BatchAndroid: cfg.BatchAndroid,
			Retry: cfg.Retry, Visibility: cfg.Visibility, Log: cfg.Log})
		if err != nil {
			return nil, fmt.Errorf("embedded: %w", err)
		}
		s.Workers = append(s.Workers, w)
	}
	ln, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		s.Service.Close()
		return nil, fmt.Errorf("embedded: listen %s: %w", cfg.APIAddr, err)
	}
	s.apiURL = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: api.New(s.Service, objects), ReadHeaderTimeout: 10 * time.Second}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errs <- fmt.Errorf("embedded: api: %w", err)
		}
	}()
	for _, w := range s.Workers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := w.Run(runCtx); err != nil {
				s.errs <- fmt.Errorf("embedded: worker %s: %w", w.ID(), err)
			}
		}()
	}
	return s, nil
}

// URL is the campaign API's base URL.
func (s *System) URL() string { return s.apiURL }

// Client returns a client of the campaign API.
func (s *System) Client() *api.Client { return &api.Client{URL: s.apiURL} }

// Errors delivers errors from the API server and workers (buffered; may stay empty).
func (s *System) Errors() <-chan error { return s.errs }

// Stats merges the send statistics of every worker.
func (s *System) Stats() *sender.SendStats {
	out := sender.NewSendStats()
	for _, w := range s.Workers {
		out.Merge(w.Stats())
	}
	return out
}

// Close stops the API server and the workers, flushes feedback and waits for everything.
func (s *System) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	s.cancel()
	s.wg.Wait()
	s.Ranges.Close()
	s.Batches.Close()
	if cerr := s.Service.Close(); err == nil {
		err = cerr
	}
	return err
}
