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
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
	"github.com/salvopush/salvo/sender/auth"
	"github.com/salvopush/salvo/sender/localstore"
	"github.com/salvopush/salvo/sender/memledger"
	"github.com/salvopush/salvo/sender/memqueue"
)

// Config configures an embedded system.
type Config struct {
	// Dir holds the system's state: the object store (resolved campaigns, feedback files,
	// published figures) in Dir/objects, campaign records in Dir/records and the delivery
	// ledger's journal in Dir/ledger.journal; a resolution keeps its tokens in
	// Dir/resolving while it runs (sender.ResolveConfig.SpillDir). A system started again
	// on the same Dir finds its campaigns in their true state and resumes interrupted sends
	// by itself.
	Dir string
	// Ephemeral keeps records and the ledger in memory only (a benchmark that does not
	// measure durability); objects still go to Dir/objects.
	Ephemeral  bool
	Registry   sender.Registry
	Transports map[sender.Platform]sender.Transport
	// RegistryResident bounds the registry file's pages that a resolution's lookups keep
	// resident, for a registry that can bound them (diskregistry's LimitResident): default
	// 64 MiB, negative for no bound. The registry shares the process with the resolution's
	// tokens and the workers' preloaded campaigns; without a bound a resolution maps the
	// whole file.
	RegistryResident int64
	// APIAddr is where the campaign API listens (default 127.0.0.1:0, port chosen by the OS).
	APIAddr string
	// Users checks the API's bearer tokens; nil serves it without authentication.
	Users *auth.Users
	// Token is the bearer token Client sends (one of Users' tokens).
	Token string
	// Limits protect the API server (api.Limits defaults).
	Limits api.Limits
	// Routes, when set, returns routes the API serves beside its own (api.Config.Routes),
	// given the system's service: the campaign report of `salvo all`.
	Routes func(*sender.Service) []api.Route
	// Fanout and Send are the worker's goroutines per role (defaults 2 and 64).
	Fanout int
	Send   int
	// Workers is how many send workers (each with its own preloaded copy) run in the
	// process (default 1).
	Workers int
	// RangeCount, BatchIOS, BatchAndroid and Retry tune the pipeline (sender defaults);
	// Chunk is recipients per push, each recorded as soon as answered (default 50: a crash
	// leaves at most Send x Chunk recipients whose fate is unknown).
	RangeCount   int
	BatchIOS     int
	BatchAndroid int
	Chunk        int
	Retry        sender.RetryPolicy
	// Visibility is the queues' visibility timeout and Lease the ledger claims' (defaults 30s
	// and 2 minutes: every loop lives in this one process, so nobody needs to take over a
	// dead one's batches quickly, and long ones ride out a starved machine).
	Visibility time.Duration
	Lease      time.Duration
	// Drain is how long pushes in flight may finish at Close (sender default 10s).
	Drain time.Duration
	// FanoutQueues, when set, gives the worker that runs the fan-out its range and batch
	// queues instead of the system's own (which it receives): the redelivery scenario puts
	// each batch on the queue twice and skips a range's first delete there. Nil: as they are.
	FanoutQueues func(ranges, batches sender.Queue) (sender.Queue, sender.Queue)
	Log          *slog.Logger

	// The operator's workflow. Console, when set, is served under /console/ on the API's
	// listener (api.Config.Console). Test pushes go out on Transports;
	// ApproveWithoutTestPush is sender.ServiceConfig's.
	Console                http.Handler
	ApproveWithoutTestPush bool
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
	case c.Fanout < 0 || c.Send < 0 || c.Workers < 0 || c.Chunk < 0:
		return errors.New("embedded: Fanout, Send, Workers and Chunk must not be negative")
	}
	return nil
}

// System is a running embedded pipeline. Close stops it.
type System struct {
	Service     *sender.Service
	Workers     []*sender.Worker
	Objects     *localstore.Store
	Records     sender.RecordStore
	Ranges      *memqueue.Queue
	Batches     *memqueue.Queue
	DeadLetters *memqueue.Queue
	Ledger      *memledger.Ledger
	apiURL      string
	token       string

	srv       *http.Server
	cancel    context.CancelFunc
	workersWG sync.WaitGroup
	apiWG     sync.WaitGroup
	errs      chan error
}

// Start builds and starts the system: API server and workers run until Close. Sends that a
// previous run on the same Dir left unfinished are resumed.
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
	if cfg.Chunk == 0 {
		cfg.Chunk = 50
	}
	if cfg.Visibility == 0 {
		cfg.Visibility = 30 * time.Second
	}
	if cfg.Lease == 0 {
		cfg.Lease = 2 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.RegistryResident == 0 {
		cfg.RegistryResident = 64 << 20
	}
	if l, ok := cfg.Registry.(residentLimiter); ok {
		l.LimitResident(max(cfg.RegistryResident, 0))
	}
	s := &System{errs: make(chan error, cfg.Workers+1), token: cfg.Token}
	if err := s.open(cfg); err != nil {
		s.closeStores()
		return nil, err
	}
	// Tokens a resolution cut short by a crash spilled (no resolution runs yet).
	spillDir := filepath.Join(cfg.Dir, "resolving")
	if err := os.RemoveAll(spillDir); err != nil {
		s.closeStores()
		return nil, fmt.Errorf("embedded: %w", err)
	}
	var err error
	s.Service, err = sender.NewService(sender.ServiceConfig{Registry: cfg.Registry, Objects: s.Objects,
		Records: s.Records, Ranges: s.Ranges, Ledger: s.Ledger, DeadLetters: s.DeadLetters,
		RangeCount: cfg.RangeCount, Log: cfg.Log, AfterResolve: func() { giveBack(cfg.Registry, cfg.Log) },
		Resolve:    sender.ResolveConfig{SpillDir: spillDir},
		Transports: cfg.Transports, ApproveWithoutTestPush: cfg.ApproveWithoutTestPush})
	if err != nil {
		s.closeStores()
		return nil, fmt.Errorf("embedded: %w", err)
	}
	for i := 0; i < cfg.Workers; i++ {
		fanout := 0
		var ranges, batches sender.Queue = s.Ranges, s.Batches
		if i == 0 {
			fanout = cfg.Fanout
			if cfg.FanoutQueues != nil {
				ranges, batches = cfg.FanoutQueues(ranges, batches)
			}
		}
		w, err := sender.NewWorker(sender.WorkerConfig{ID: fmt.Sprintf("embedded-%d", i), Objects: s.Objects,
			Records: s.Records, Ledger: s.Ledger, Ranges: ranges, Batches: batches, DeadLetters: s.DeadLetters,
			Transports: cfg.Transports, Fanout: fanout, Send: cfg.Send, BatchIOS: cfg.BatchIOS,
			BatchAndroid: cfg.BatchAndroid, Chunk: cfg.Chunk, Retry: cfg.Retry, Visibility: cfg.Visibility, Lease: cfg.Lease,
			Drain: cfg.Drain, Log: cfg.Log.With("worker", i)})
		if err != nil {
			s.Service.Close()
			s.closeStores()
			return nil, fmt.Errorf("embedded: %w", err)
		}
		s.Workers = append(s.Workers, w)
	}
	ln, err := api.Listen(cfg.APIAddr, cfg.Limits)
	if err != nil {
		s.Service.Close()
		s.closeStores()
		return nil, fmt.Errorf("embedded: %w", err)
	}
	s.apiURL = "http://" + ln.Addr().String()
	var routes []api.Route
	if cfg.Routes != nil {
		routes = cfg.Routes(s.Service)
	}
	s.srv = api.NewServer(api.New(api.Config{Service: s.Service, Objects: s.Objects, Users: cfg.Users, Routes: routes, Console: cfg.Console}), cfg.Limits)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.apiWG.Add(1)
	go func() {
		defer s.apiWG.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errs <- fmt.Errorf("embedded: api: %w", err)
		}
	}()
	for _, w := range s.Workers {
		s.workersWG.Add(1)
		go func() {
			defer s.workersWG.Done()
			if err := w.Run(runCtx); err != nil {
				s.errs <- fmt.Errorf("embedded: worker %s: %w", w.ID(), err)
			}
		}()
	}
	if n, err := s.Service.Resume(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("embedded: resume: %w", err)
	} else if n > 0 {
		cfg.Log.Info("resumed interrupted sends", "sends", n)
	}
	return s, nil
}

// open opens the stores and queues.
func (s *System) open(cfg Config) error {
	var err error
	if s.Objects, err = localstore.Open(filepath.Join(cfg.Dir, "objects")); err != nil {
		return fmt.Errorf("embedded: %w", err)
	}
	if cfg.Ephemeral {
		s.Records, s.Ledger = localstore.NewRecords(), memledger.New()
	} else {
		if s.Records, err = localstore.OpenRecords(filepath.Join(cfg.Dir, "records")); err != nil {
			return fmt.Errorf("embedded: %w", err)
		}
		if s.Ledger, err = memledger.Open(filepath.Join(cfg.Dir, "ledger.journal")); err != nil {
			return fmt.Errorf("embedded: %w", err)
		}
	}
	if s.Ranges, err = memqueue.New(memqueue.Config{FIFO: true, VisibilityTimeout: cfg.Visibility}); err != nil {
		return fmt.Errorf("embedded: range queue: %w", err)
	}
	if s.Batches, err = memqueue.New(memqueue.Config{VisibilityTimeout: cfg.Visibility}); err != nil {
		return fmt.Errorf("embedded: batch queue: %w", err)
	}
	if s.DeadLetters, err = memqueue.New(memqueue.Config{}); err != nil {
		return fmt.Errorf("embedded: dead-letter queue: %w", err)
	}
	return nil
}

func (s *System) closeStores() {
	for _, q := range []*memqueue.Queue{s.Ranges, s.Batches, s.DeadLetters} {
		if q != nil {
			q.Close()
		}
	}
	if s.Ledger != nil {
		_ = s.Ledger.Close()
	}
}

// URL is the campaign API's base URL.
func (s *System) URL() string { return s.apiURL }

// Client returns a client of the campaign API, sending Config.Token.
func (s *System) Client() *api.Client { return &api.Client{URL: s.apiURL, Token: s.token} }

// Errors delivers errors from the API server and workers (buffered; may stay empty).
func (s *System) Errors() <-chan error { return s.errs }

// Stats merges the send statistics of every worker.
func (s *System) Stats() *sender.SendStats {
	if len(s.Workers) == 1 {
		// Already a copy of its own: merging it into an empty one would copy every latency
		// bucket again, which the bench's progress poll (20 times a second) paid for in the
		// sender's measured CPU.
		return s.Workers[0].Stats()
	}
	out := sender.NewSendStats()
	for _, w := range s.Workers {
		out.Merge(w.Stats())
	}
	return out
}

// Close stops the system in order: the API takes no new request, the workers take no new
// batch and drain what they push (up to Config.Drain), record it in the ledger and publish
// their figures, and the stores close. Unfinished sends are resumed by the next Start on
// the same Dir.
func (s *System) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	s.apiWG.Wait()
	s.cancel()
	s.workersWG.Wait()
	if cerr := s.Service.Close(); err == nil {
		err = cerr
	}
	s.closeStores()
	return err
}

// residentDropper is a registry whose pages can leave the resident set (diskregistry).
type residentDropper interface{ DropResident() error }

// residentLimiter is a registry that can bound the pages its lookups keep resident
// (diskregistry; 0 means no bound).
type residentLimiter interface{ LimitResident(bytes int64) }

// giveBack returns what a resolution left behind: the heap it freed (to the OS now, rather
// than by the runtime's background scavenger later) and the registry's mapped pages, no
// longer looked at. In a deployment the API server resolves in a process of its own and the
// registry is a database; here both share the process of the send workers, and without
// this the preload's arena would stack on top of the resolution's leftovers.
func giveBack(reg sender.Registry, log *slog.Logger) {
	debug.FreeOSMemory()
	if d, ok := reg.(residentDropper); ok {
		if err := d.DropResident(); err != nil {
			log.Warn("registry: drop resident pages", "err", err)
		}
	}
}
