package sender

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/pprof"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/salvopush/salvo/results"
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

// RetryPolicy is exponential backoff with full jitter, honouring Retry-After.
type RetryPolicy struct {
	Attempts int           // total tries per notification (default 6)
	Base     time.Duration // first backoff (default 100ms)
	Max      time.Duration // backoff cap (default 5s)
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts <= 0 {
		p.Attempts = 6
	}
	if p.Base <= 0 {
		p.Base = 100 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 5 * time.Second
	}
	return p
}

// Backoff returns the wait before try attempt+1 (attempt counts from 1), at least
// retryAfter.
func (p RetryPolicy) Backoff(attempt int, retryAfter time.Duration, r *rand.Rand) time.Duration {
	p = p.withDefaults()
	ceil := p.Base << min(attempt-1, 20)
	if ceil > p.Max || ceil <= 0 {
		ceil = p.Max
	}
	d := ceil/2 + time.Duration(r.Int64N(int64(ceil/2)+1))
	return max(d, retryAfter)
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

// BatchMessage is the body of a batch message: recipients [Start, Start+Count) of a
// campaign, all in one segment.
type BatchMessage struct {
	Campaign  string `json:"c"`
	Send      string `json:"send"`
	PressedAt int64  `json:"p"` // unix nanoseconds
	Start     uint32 `json:"s"`
	Count     uint32 `json:"n"`
}

// Worker runs fan-out and send loops. Create it with NewWorker and run it with Run.
type Worker struct {
	cfg WorkerConfig

	mu        sync.Mutex
	campaigns map[string]*loaded // preloaded campaigns (send) and manifests (fan-out)
	loading   map[string]chan struct{}
	stats     []*loopStats   // one per send loop
	latency   *latencyCounts // every send loop's latencies
	feedback  *feedbackLog
}

// loaded is one campaign a worker holds.
type loaded struct {
	spec     CampaignSpec
	manifest Manifest
	pre      *Preloaded // nil on fan-out-only workers
	mu       sync.Mutex
	rendered map[int]*Batch // per segment index: a template batch with the message set
}

// NewWorker checks cfg and returns a worker.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	w := &Worker{cfg: cfg, campaigns: map[string]*loaded{}, loading: map[string]chan struct{}{},
		latency: &latencyCounts{}}
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
			pprof.Do(gctx, pprof.Labels("salvo", "send"), func(ctx context.Context) { err = w.sendLoop(ctx, st) })
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
	out := &SendStats{Latency: w.latency.histogram(), Timeline: results.NewTimeline(0),
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
	w.latency.reset()
	for _, st := range w.stats {
		st.reset()
		st.mu.Unlock()
	}
}

// prepareLoop preloads every campaign whose prepare was requested and reports readiness.
func (w *Worker) prepareLoop(ctx context.Context) error {
	t := time.NewTicker(w.cfg.Poll)
	defer t.Stop()
	for {
		recs, err := ListCampaigns(ctx, w.cfg.Records)
		if err != nil && ctx.Err() == nil {
			w.cfg.Log.Warn("prepare: list campaigns", "err", err)
		}
		for _, r := range recs {
			if r.Prepare == nil || r.State == StateResolving || r.State == StateFailed {
				continue
			}
			w.mu.Lock()
			_, have := w.campaigns[r.ID]
			w.mu.Unlock()
			if have {
				continue
			}
			if _, err := w.campaign(ctx, r.ID); err != nil && ctx.Err() == nil {
				w.cfg.Log.Warn("prepare failed", "campaign", r.ID, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// campaign returns a loaded campaign, loading it once (concurrent callers wait for the one
// load). Send workers preload every token and report readiness; fan-out-only workers load
// the manifest.
func (w *Worker) campaign(ctx context.Context, id string) (*loaded, error) {
	for {
		w.mu.Lock()
		if c := w.campaigns[id]; c != nil {
			w.mu.Unlock()
			return c, nil
		}
		if ch, busy := w.loading[id]; busy {
			w.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		ch := make(chan struct{})
		w.loading[id] = ch
		w.mu.Unlock()
		c, err := w.load(ctx, id)
		w.mu.Lock()
		delete(w.loading, id)
		if err == nil {
			w.campaigns[id] = c
		}
		w.mu.Unlock()
		close(ch)
		return c, err
	}
}

func (w *Worker) load(ctx context.Context, id string) (*loaded, error) {
	start := time.Now()
	rec, err := GetCampaign(ctx, w.cfg.Records, id)
	if err != nil {
		return nil, err
	}
	c := &loaded{spec: rec.Spec, rendered: map[int]*Batch{}}
	if w.cfg.Send == 0 {
		raw, err := w.cfg.Objects.Get(ctx, ManifestKey(id))
		if err != nil {
			return nil, fmt.Errorf("campaign %s: manifest: %w", id, err)
		}
		if err := json.Unmarshal(raw, &c.manifest); err != nil {
			return nil, fmt.Errorf("campaign %s: manifest: %w", id, err)
		}
		return c, nil
	}
	if c.pre, err = Preload(ctx, w.cfg.Objects, id, 8); err != nil {
		return nil, err
	}
	c.manifest = c.pre.Manifest
	rd := Readiness{Worker: w.cfg.ID, Recipients: c.pre.Len(), ResidentBytes: c.pre.ResidentBytes(),
		LoadMillis: time.Since(start).Milliseconds(), ReadyAt: time.Now().UTC()}
	data, _ := json.Marshal(rd)
	key := ReadinessPrefix(id) + w.cfg.ID
	ver := int64(0)
	if old, err := w.cfg.Records.Get(ctx, key); err == nil {
		ver = old.Version
	}
	if _, err := w.cfg.Records.CompareAndSwap(ctx, key, ver, data); err != nil {
		return nil, fmt.Errorf("campaign %s: report ready: %w", id, err)
	}
	w.cfg.Log.Info("campaign ready", "campaign", id, "recipients", rd.Recipients, "bytes", rd.ResidentBytes, "ms", rd.LoadMillis)
	return c, nil
}

// fanoutLoop turns range messages into batch messages.
func (w *Worker) fanoutLoop(ctx context.Context) error {
	var out []OutMessage
	for ctx.Err() == nil {
		msgs, err := w.cfg.Ranges.Receive(ctx, 10, w.cfg.Wait)
		if err != nil {
			if ctx.Err() == nil {
				w.cfg.Log.Warn("fanout: receive", "err", err)
				sleepCtx(ctx, w.cfg.Poll)
			}
			continue
		}
		for _, m := range msgs {
			var rm RangeMessage
			if err := json.Unmarshal(m.Body, &rm); err != nil || rm.End < rm.Start {
				w.cfg.Log.Error("fanout: dropping malformed range message", "id", m.ID, "err", err)
				_ = w.cfg.Ranges.Delete(ctx, []string{m.Receipt})
				continue
			}
			c, err := w.campaign(ctx, rm.Campaign)
			if err != nil {
				w.cfg.Log.Warn("fanout: campaign", "campaign", rm.Campaign, "err", err)
				continue // the message comes back after its visibility timeout
			}
			out = w.cutBatches(out[:0], &c.manifest, rm)
			if err := w.cfg.Batches.Send(ctx, out); err != nil {
				w.cfg.Log.Warn("fanout: send batches", "err", err)
				continue // redelivered; the ledger makes repeated batches harmless
			}
			if err := w.cfg.Ranges.Delete(ctx, []string{m.Receipt}); err != nil {
				w.cfg.Log.Warn("fanout: delete range", "err", err)
			}
		}
	}
	return ctx.Err()
}

// cutBatches appends the batch messages of a range: its intersection with each segment, cut
// into batches of the platform's size.
func (w *Worker) cutBatches(out []OutMessage, m *Manifest, rm RangeMessage) []OutMessage {
	for _, seg := range m.Segments {
		lo, hi := max(rm.Start, seg.Start), min(rm.End, seg.Start+seg.Count)
		if lo >= hi {
			continue
		}
		size := uint32(w.cfg.BatchAndroid)
		if seg.Platform == PlatformIOS.String() {
			size = uint32(w.cfg.BatchIOS)
		}
		for s := lo; s < hi; s += size {
			n := min(size, hi-s)
			body, _ := json.Marshal(BatchMessage{Campaign: rm.Campaign, Send: rm.Send, PressedAt: rm.PressedAt, Start: s, Count: n})
			out = append(out, OutMessage{Body: body})
		}
	}
	return out
}

// sendLoop takes batch messages and pushes them.
func (w *Worker) sendLoop(ctx context.Context, st *loopStats) error {
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	var done []string
	b := &sendBuf{}
	for ctx.Err() == nil {
		msgs, err := w.cfg.Batches.Receive(ctx, 1, w.cfg.Wait)
		if err != nil {
			if ctx.Err() == nil {
				w.cfg.Log.Warn("send: receive", "err", err)
				sleepCtx(ctx, w.cfg.Poll)
			}
			continue
		}
		done = done[:0]
		for _, m := range msgs {
			if w.handleBatch(ctx, m, st, b, rng) {
				done = append(done, m.Receipt)
			}
		}
		if len(done) > 0 {
			if err := w.cfg.Batches.Delete(context.WithoutCancel(ctx), done); err != nil {
				w.cfg.Log.Warn("send: delete batches", "err", err)
			}
		}
	}
	return ctx.Err()
}

// sendBuf is reused across batches by one send loop.
type sendBuf struct {
	ids, retry, finished, invalid, claimed []uint32
	gaveUp                                 int // recipients of the current batch given up on
	batch                                  Batch
}

// handleBatch pushes one batch message and reports whether it may be deleted.
func (w *Worker) handleBatch(ctx context.Context, m Message, st *loopStats, b *sendBuf, rng *rand.Rand) bool {
	var bm BatchMessage
	if err := json.Unmarshal(m.Body, &bm); err != nil || bm.Count == 0 {
		w.cfg.Log.Error("send: dropping malformed batch message", "id", m.ID, "err", err)
		return true
	}
	c, err := w.campaign(ctx, bm.Campaign)
	if err != nil {
		if ctx.Err() == nil {
			w.cfg.Log.Warn("send: campaign", "campaign", bm.Campaign, "err", err)
		}
		return false
	}
	if bm.Start+bm.Count > uint32(c.pre.Len()) {
		w.cfg.Log.Error("send: batch outside the campaign", "campaign", bm.Campaign, "start", bm.Start, "n", bm.Count)
		return true
	}
	tmpl, err := c.template(bm.Start, time.Unix(0, bm.PressedAt))
	if err != nil {
		w.cfg.Log.Error("send: render", "campaign", bm.Campaign, "err", err)
		return false
	}
	tr := w.cfg.Transports[tmpl.Platform]
	if tr == nil {
		w.cfg.Log.Error("send: no transport", "platform", tmpl.Platform)
		return false
	}
	b.ids, err = w.cfg.Ledger.Claim(ctx, bm.Campaign, bm.Start, bm.Count, w.cfg.Lease, b.ids[:0])
	if err != nil {
		w.cfg.Log.Warn("send: claim", "err", err)
		return false
	}
	claimed := append(b.claimed[:0], b.ids...)
	b.claimed, b.gaveUp = claimed, 0
	chunk := len(claimed)
	if w.cfg.Chunk > 0 {
		chunk = w.cfg.Chunk
	}
	received := time.Now()
	for lo := 0; lo < len(claimed); lo += chunk {
		b.ids = append(b.ids[:0], claimed[lo:min(lo+chunk, len(claimed))]...)
		if !w.sendChunk(ctx, m, bm, tmpl, tr, c, st, b, rng, &received) {
			_ = w.cfg.Ledger.Release(context.WithoutCancel(ctx), bm.Campaign, claimed[lo:])
			return false
		}
	}
	if len(claimed) == int(bm.Count) && b.gaveUp == 0 {
		return true // every recipient of the batch is done
	}
	// Some recipients were not ours to send: another worker holds them (a second copy of
	// the batch in flight), or held them and died. Keep the message while any of those is
	// unfinished: it comes back after its visibility timeout, and by then a dead worker's
	// lease has run out and the recipients can be claimed again. Recipients this worker gave
	// up on (counted failed) do not keep it.
	left, err := w.cfg.Ledger.Remaining(ctx, bm.Campaign, bm.Start, bm.Count)
	if err != nil {
		w.cfg.Log.Warn("send: ledger remaining", "err", err)
		return false
	}
	return left <= b.gaveUp
}

// sendChunk pushes b.ids (claimed recipients of one batch) with retries, records outcomes and
// marks finished recipients done in the ledger. It reports false when the context ended
// before the chunk was finished (its unfinished recipients are then released by the caller).
func (w *Worker) sendChunk(ctx context.Context, m Message, bm BatchMessage, tmpl *Batch, tr Transport, c *loaded,
	st *loopStats, b *sendBuf, rng *rand.Rand, received *time.Time) bool {
	pressed := time.Unix(0, bm.PressedAt)
	for attempt := 1; len(b.ids) > 0; attempt++ {
		if time.Since(*received) > w.cfg.Visibility/2 {
			*received = time.Now()
			if err := w.cfg.Batches.ExtendVisibility(ctx, m.Receipt, w.cfg.Visibility); err != nil {
				w.cfg.Log.Warn("send: extend visibility", "err", err)
			}
		}
		bt := &b.batch
		toks, res := bt.Tokens[:0], bt.Results[:0]
		*bt = *tmpl
		bt.Tokens, bt.Results = toks, res
		for _, id := range b.ids {
			bt.Tokens = append(bt.Tokens, c.pre.Token(id))
			bt.Results = append(bt.Results, Result{})
		}
		if err := tr.Send(ctx, bt); err != nil {
			return false
		}
		var retryAfter time.Duration
		b.retry, b.finished, b.invalid = b.retry[:0], b.finished[:0], b.invalid[:0]
		st.mu.Lock()
		for i, r := range bt.Results {
			switch r.Outcome {
			case Accepted:
				st.accept(r.At.Sub(pressed))
				w.latency.record(r.At.Sub(pressed))
				b.finished = append(b.finished, b.ids[i])
			case Permanent:
				st.reject(r.At.Sub(pressed), r.Reason)
				b.finished = append(b.finished, b.ids[i])
				if r.InvalidToken {
					b.invalid = append(b.invalid, uint32(i))
				}
			default:
				st.transientResult(r.Reason)
				retryAfter = max(retryAfter, r.RetryAfter)
				b.retry = append(b.retry, b.ids[i])
			}
		}
		if len(b.retry) > 0 && attempt >= w.cfg.Retry.Attempts {
			st.failed += int64(len(b.retry))
		} else {
			st.retries += int64(len(b.retry))
		}
		st.mu.Unlock()
		for _, i := range b.invalid {
			w.feedback.add(bm.Campaign, tmpl.Platform, bt.Tokens[i], bt.Results[i].Reason)
		}
		if len(b.finished) > 0 {
			if err := w.cfg.Ledger.Done(context.WithoutCancel(ctx), bm.Campaign, b.finished); err != nil {
				w.cfg.Log.Warn("send: ledger done", "err", err)
			}
		}
		if len(b.retry) == 0 {
			break
		}
		if attempt >= w.cfg.Retry.Attempts {
			// Given up: counted failed above; give the claims back so that a later delivery
			// of the batch may try again.
			_ = w.cfg.Ledger.Release(context.WithoutCancel(ctx), bm.Campaign, b.retry)
			b.gaveUp += len(b.retry)
			break
		}
		b.ids, b.retry = append(b.ids[:0], b.retry...), b.ids
		if !sleepCtx(ctx, w.cfg.Retry.Backoff(attempt, retryAfter, rng)) {
			return false
		}
	}
	return true
}

// template returns the batch template (platform and rendered message) of the segment that
// holds recipient i.
func (c *loaded) template(i uint32, pressedAt time.Time) (*Batch, error) {
	segs := c.manifest.Segments
	idx := c.manifest.SegmentIndex(i)
	if idx < 0 {
		return nil, fmt.Errorf("recipient %d is in no segment", i)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.rendered[idx]; t != nil {
		return t, nil
	}
	seg := segs[idx]
	t := &Batch{Campaign: c.manifest.Campaign, Platform: seg.PlatformOf()}
	var err error
	switch t.Platform {
	case PlatformIOS:
		t.APNs, err = c.spec.RenderAPNs(c.manifest.Campaign, seg.Variant, seg.App, pressedAt)
	case PlatformAndroid:
		t.FCM, err = c.spec.RenderFCM(c.manifest.Campaign, seg.Variant, seg.App)
	default:
		err = fmt.Errorf("segment %d: unknown platform %q", idx, seg.Platform)
	}
	if err != nil {
		return nil, err
	}
	c.rendered[idx] = t
	return t, nil
}

// sleepCtx sleeps for d or until ctx is done; it reports whether the full sleep happened.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
