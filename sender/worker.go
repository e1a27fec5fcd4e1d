package sender

import (
	"context"
	"errors"
	"log/slog"
	"runtime/pprof"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/salvopush/salvo/sender/metrics"
)

// WorkerConfig configures one worker process (a fan-out worker, a send worker, or both).
type WorkerConfig struct {
	// ID names the worker in readiness records and run results (default: random).
	ID      string
	Objects ObjectStore
	Records RecordStore
	Ledger  Ledger
	// Ranges is the FIFO queue of range messages (needed for fan-out).
	Ranges Queue
	// Batches is the queue of batch messages (fan-out writes, send reads).
	Batches Queue
	// Transports by platform (needed for send).
	Transports map[Platform]Transport
	// Fanout and Send are how many goroutines run each loop; 0 turns the role off.
	Fanout int
	Send   int
	// BatchIOS and BatchAndroid are recipients per batch message (default 500 and 250).
	BatchIOS     int
	BatchAndroid int
	// Retry bounds retries of transient results.
	Retry RetryPolicy
	// Chunk, when above 0, cuts each batch into pushes of at most Chunk recipients, each
	// marked done in the ledger as soon as it is answered: a worker that dies then leaves at
	// most Chunk recipients per send loop whose fate is unknown (default 0: the whole batch).
	Chunk int
	// Visibility is the batch queue's visibility timeout; the worker extends a batch it is
	// still working on when half of it has passed (default 30s).
	Visibility time.Duration
	// Lease is how long a ledger claim lasts (default 2 minutes).
	Lease time.Duration
	// Poll is how often the worker looks for campaigns to prepare (default 200ms).
	Poll time.Duration
	// Wait is the long-polling wait of queue receives (default 1s).
	Wait time.Duration
	// StatsPrefix, when set, is the object-store prefix the worker publishes its send
	// statistics under (<prefix><id>.json) every StatsEvery (default 1s) and at exit.
	StatsPrefix string
	StatsEvery  time.Duration
	// Heartbeat, when above 0, is how often the worker refreshes its record workers/<id>.
	Heartbeat time.Duration
	Log       *slog.Logger
}

// Validate names the first bad field.
func (c *WorkerConfig) Validate() error {
	switch {
	case c.Objects == nil:
		return errors.New("worker: Objects is required")
	case c.Records == nil:
		return errors.New("worker: Records is required")
	case c.Fanout < 0 || c.Send < 0:
		return errors.New("worker: Fanout and Send must not be negative")
	case c.Fanout == 0 && c.Send == 0:
		return errors.New("worker: Fanout or Send must be above 0")
	case c.Fanout > 0 && (c.Ranges == nil || c.Batches == nil):
		return errors.New("worker: fan-out needs Ranges and Batches")
	case c.Send > 0 && (c.Batches == nil || c.Ledger == nil || len(c.Transports) == 0):
		return errors.New("worker: send needs Batches, Ledger and Transports")
	}
	return nil
}

func (c WorkerConfig) withDefaults() WorkerConfig {
	if c.ID == "" {
		c.ID = NewID("w")
	}
	if c.BatchIOS <= 0 {
		c.BatchIOS = 500
	}
	if c.BatchAndroid <= 0 {
		c.BatchAndroid = 250
	}
	c.Retry = c.Retry.withDefaults()
	if c.Visibility <= 0 {
		c.Visibility = 30 * time.Second
	}
	if c.Lease <= 0 {
		c.Lease = 2 * time.Minute
	}
	if c.Poll <= 0 {
		c.Poll = 200 * time.Millisecond
	}
	if c.Wait <= 0 {
		c.Wait = time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.StatsEvery <= 0 {
		c.StatsEvery = time.Second
	}
	return c
}

// Worker runs fan-out and send loops. Create it with NewWorker and run it with Run.
type Worker struct {
	cfg WorkerConfig

	mu        sync.Mutex
	campaigns map[string]*loaded // preloaded campaigns (send) and manifests (fan-out)
	loading   map[string]chan struct{}
	stats     []*loopStats     // one per send loop
	latency   *metrics.Latency // every send loop's latencies
	feedback  *feedbackLog
}

// NewWorker checks cfg and returns a worker.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	w := &Worker{cfg: cfg, campaigns: map[string]*loaded{}, loading: map[string]chan struct{}{},
		latency: &metrics.Latency{}}
	w.feedback = &feedbackLog{store: cfg.Objects, worker: cfg.ID}
	for i := 0; i < cfg.Send; i++ {
		w.stats = append(w.stats, newLoopStats())
	}
	return w, nil
}

// ID returns the worker's ID.
func (w *Worker) ID() string { return w.cfg.ID }

// Run runs the worker's loops until ctx is cancelled, then flushes the invalid-token
// feedback. It returns nil on cancellation.
func (w *Worker) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	if w.cfg.Send > 0 {
		g.Go(func() error { return w.prepareLoop(gctx) })
	}
	// pprof labels tell the loops apart in CPU profiles (go tool pprof -tagfocus salvo=send).
	for i := 0; i < w.cfg.Fanout; i++ {
		g.Go(func() (err error) {
			pprof.Do(gctx, pprof.Labels("salvo", "fanout"), func(ctx context.Context) { err = w.fanoutLoop(ctx) })
			return err
		})
	}
	if w.cfg.StatsPrefix != "" && w.cfg.Send > 0 {
		g.Go(func() error { return w.publishLoop(gctx) })
	}
	if w.cfg.Heartbeat > 0 {
		g.Go(func() error { return w.heartbeatLoop(gctx) })
	}
	for i := 0; i < w.cfg.Send; i++ {
		st := w.stats[i]
		g.Go(func() (err error) {
			pprof.Do(gctx, pprof.Labels("salvo", "send"), func(ctx context.Context) { err = newSender(w, st).run(ctx) })
			return err
		})
	}
	err := g.Wait()
	if ferr := w.feedback.flush(context.WithoutCancel(ctx)); ferr != nil && err == nil {
		err = ferr
	}
	if perr := w.PublishStats(context.WithoutCancel(ctx)); perr != nil && err == nil {
		err = perr
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// Stats returns the merged statistics of the worker's send loops so far: one consistent
// cut (every loop is held still while its figures and the shared latencies are read, so
// the histogram counts exactly the accepted notifications).
func (w *Worker) Stats() *SendStats {
	for _, st := range w.stats {
		st.mu.Lock()
	}
	out := &SendStats{Latency: w.latency.Histogram(), Timeline: metrics.NewTimeline(0),
		Rejected: map[string]int64{}, Transient: map[string]int64{}}
	for _, st := range w.stats {
		st.addTo(out)
		st.mu.Unlock()
	}
	return out
}

// ResetStats clears the send statistics (between runs of a benchmark).
func (w *Worker) ResetStats() {
	for _, st := range w.stats {
		st.mu.Lock()
	}
	w.latency.Reset()
	for _, st := range w.stats {
		st.reset()
		st.mu.Unlock()
	}
}
