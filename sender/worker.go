package sender

import (
	"context"
	"errors"
	"log/slog"
	"runtime/pprof"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// WorkerConfig configures one worker process (a fan-out worker, a send worker, or both).
type WorkerConfig struct {
	// ID names the worker in readiness records, ledger claims and published figures
	// (default: random). A worker restarted with the same ID continues its figures.
	ID      string
	Objects ObjectStore
	Records RecordStore
	Ledger  Ledger
	// Ranges is the FIFO queue of range messages (needed for fan-out).
	Ranges Queue
	// Batches is the queue of batch messages (fan-out writes, send reads).
	Batches Queue
	// DeadLetters receives the batch messages whose recipients were given up on (the
	// delivery deadline passed, or they can never be rendered); needed for send.
	DeadLetters Queue
	// Transports by platform (needed for send).
	Transports map[Platform]Transport
	// Fanout and Send are how many goroutines run each loop; 0 turns the role off.
	Fanout int
	Send   int
	// BatchIOS and BatchAndroid are recipients per batch message (default 500 and 250).
	BatchIOS     int
	BatchAndroid int
	// Retry shapes the backoff between tries of transient results; tries go on until the
	// send's delivery deadline.
	Retry RetryPolicy
	// Chunk, when above 0, cuts each batch into pushes of at most Chunk recipients, each
	// recorded in the ledger as soon as it is answered: a worker that dies then leaves at
	// most Chunk recipients per send loop whose fate is unknown (default 0: the whole batch).
	Chunk int
	// Visibility is the queues' visibility timeout: a message a worker holds comes back to
	// others that long after the worker stops extending it (default 6s).
	Visibility time.Duration
	// Lease is how long a ledger claim lasts unless renewed (default 6s).
	Lease time.Duration
	// Renew is how often a worker renews the leases and visibility of the batch it works on
	// (default a third of the shorter of Lease and Visibility). Short leases renewed by a live
	// holder let others take over a dead worker's recipients within seconds.
	Renew time.Duration
	// Poll is how often the worker looks at the campaign records (prepare, abort, finish;
	// default 200ms).
	Poll time.Duration
	// Wait is the long-polling wait of queue receives (default 1s).
	Wait time.Duration
	// StatsEvery is how often the worker publishes its figures of each send (default 1s).
	StatsEvery time.Duration
	// StallAfter is how long a send may have work in flight with nothing accepted or
	// rejected before it is reported stalled (default 10s).
	StallAfter time.Duration
	// Drain is how long pushes in flight may take to finish once the worker is asked to
	// stop (default 10s); it takes no new batch meanwhile.
	Drain time.Duration
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
	case c.Send > 0 && (c.Batches == nil || c.Ledger == nil || c.DeadLetters == nil || len(c.Transports) == 0):
		return errors.New("worker: send needs Batches, DeadLetters, Ledger and Transports")
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
		c.Visibility = 6 * time.Second
	}
	if c.Lease <= 0 {
		c.Lease = 6 * time.Second
	}
	if c.Renew <= 0 {
		c.Renew = min(c.Lease, c.Visibility) / 3
	}
	if c.StallAfter <= 0 {
		c.StallAfter = 10 * time.Second
	}
	if c.Drain <= 0 {
		c.Drain = 10 * time.Second
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
	sends     map[string]*sendRecorder // figures per campaign/send
	feedback  *feedbackLog

	keptMu sync.Mutex
	kept   map[*sendJob]kept // batches the send loops hold, renewed by the keeper
}

// NewWorker checks cfg and returns a worker.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	w := &Worker{cfg: cfg, campaigns: map[string]*loaded{}, loading: map[string]chan struct{}{},
		sends: map[string]*sendRecorder{}, kept: map[*sendJob]kept{}}
	w.feedback = &feedbackLog{store: cfg.Objects, worker: cfg.ID}
	return w, nil
}

// ID returns the worker's ID.
func (w *Worker) ID() string { return w.cfg.ID }

// Run runs the worker's loops until ctx is cancelled, then drains: the loops take no new
// message, pushes in flight get up to Drain to finish and be recorded, and the worker
// flushes the invalid-token feedback and publishes its final figures. It returns nil on
// cancellation.
func (w *Worker) Run(ctx context.Context) error {
	// work outlives ctx by the drain: pushes in flight and their ledger records use it.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-stopped:
			return
		case <-ctx.Done():
		}
		t := time.NewTimer(w.cfg.Drain)
		defer t.Stop()
		select {
		case <-stopped:
		case <-t.C:
			w.cfg.Log.Warn("drain: pushes still in flight after the drain time; stopping them", "drain", w.cfg.Drain)
			cancelWork()
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	if w.cfg.Send > 0 {
		g.Go(func() error { return w.prepareLoop(gctx) })
		g.Go(func() error { return w.publishLoop(gctx) })
	}
	var keeper sync.WaitGroup
	if w.cfg.Send > 0 {
		keeper.Add(1)
		go func() {
			defer keeper.Done()
			_ = w.keeper(work)
		}()
	}
	// pprof labels tell the loops apart in CPU profiles (go tool pprof -tagfocus salvo=send).
	for i := 0; i < w.cfg.Fanout; i++ {
		g.Go(func() (err error) {
			pprof.Do(gctx, pprof.Labels("salvo", "fanout"), func(ctx context.Context) { err = w.fanoutLoop(ctx, work) })
			return err
		})
	}
	if w.cfg.Heartbeat > 0 {
		g.Go(func() error { return w.heartbeatLoop(gctx) })
	}
	for i := 0; i < w.cfg.Send; i++ {
		g.Go(func() (err error) {
			pprof.Do(gctx, pprof.Labels("salvo", "send"), func(ctx context.Context) { err = newSender(w, i).run(ctx, work) })
			return err
		})
	}
	err := g.Wait()
	cancelWork()
	keeper.Wait()
	// The last writes get a bounded time of their own: a store that is gone must not keep
	// the worker from exiting (what they would have written is published figures and
	// feedback rows, not the ledger, which every push already recorded).
	final, cancelFinal := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.Drain)
	defer cancelFinal()
	if ferr := w.feedback.flush(final); ferr != nil && err == nil {
		err = ferr
	}
	if w.cfg.Send > 0 {
		if perr := w.publish(final, true); perr != nil && err == nil {
			err = perr
		}
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// recorder returns the figures of one send, restoring what this worker published of it
// before a restart the first time it is asked for.
func (w *Worker) recorder(ctx context.Context, campaign, send string) *sendRecorder {
	key := campaign + "/" + send
	w.mu.Lock()
	r := w.sends[key]
	if r != nil {
		w.mu.Unlock()
		return r
	}
	r = newSendRecorder(campaign, send)
	w.sends[key] = r
	w.mu.Unlock()
	w.restore(ctx, r) // additive: loops may record meanwhile
	return r
}

// recorders returns every send's recorder.
func (w *Worker) recorders() []*sendRecorder {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*sendRecorder, 0, len(w.sends))
	for _, r := range w.sends {
		out = append(out, r)
	}
	return out
}

// Stats returns this worker's figures so far, merged over every send.
func (w *Worker) Stats() *SendStats {
	rs := w.recorders()
	if len(rs) == 1 {
		return rs[0].snapshot()
	}
	out := NewSendStats()
	for _, r := range rs {
		out.Merge(r.snapshot())
	}
	return out
}

// SendStats returns this worker's figures of one send (empty if it has none).
func (w *Worker) SendStats(campaign, send string) *SendStats {
	w.mu.Lock()
	r := w.sends[campaign+"/"+send]
	w.mu.Unlock()
	if r == nil {
		return NewSendStats()
	}
	return r.snapshot()
}

// ResetStats forgets every send's figures (between runs of a benchmark).
func (w *Worker) ResetStats() {
	w.mu.Lock()
	w.sends = map[string]*sendRecorder{}
	w.mu.Unlock()
}
