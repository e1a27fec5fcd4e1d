package sender

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/salvopush/salvo/sender/metrics"
)

// StatsSnapshot is one worker's statistics of one send on the wire: every worker publishes
// its figures per send to the object store (SendStatsKey), at least every second while the
// send runs and once more when it stops, and reports and status merge them.
type StatsSnapshot struct {
	Worker    string            `json:"worker"`
	Campaign  string            `json:"campaign"`
	Send      string            `json:"send"`
	At        time.Time         `json:"at"`
	Accepted  int64             `json:"accepted"`
	Rejected  map[string]int64  `json:"rejected"`
	Transient map[string]int64  `json:"transient"`
	Failed    map[string]int64  `json:"failed"`
	Retries   int64             `json:"retries"`
	Unsent    int64             `json:"unsent"`
	Latency   []byte            `json:"latency_hdr"` // HdrHistogram V2 compressed encoding (base64 text)
	Timeline  *metrics.Timeline `json:"timeline"`
	// LastProgress is when this worker last accepted or rejected a recipient of the send.
	LastProgress time.Time `json:"last_progress"`
	Stall        *Stall    `json:"stall,omitempty"`
	// Final is set on the snapshot a worker writes as it stops.
	Final bool `json:"final"`
}

// Snapshot encodes s as worker's figures for one send.
func (s *SendStats) Snapshot(worker, campaign, send string) (*StatsSnapshot, error) {
	enc, err := s.Latency.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return nil, fmt.Errorf("stats: encode histogram: %w", err)
	}
	return &StatsSnapshot{Worker: worker, Campaign: campaign, Send: send, At: time.Now().UTC(),
		Accepted: s.Accepted, Rejected: s.Rejected, Transient: s.Transient, Failed: s.Failed,
		Retries: s.Retries, Unsent: s.Unsent, Latency: enc, Timeline: s.Timeline,
		LastProgress: s.LastProgress, Stall: s.Stall}, nil
}

// Stats decodes a snapshot back into statistics.
func (sn *StatsSnapshot) Stats() (*SendStats, error) {
	h, err := hdrhistogram.Decode(sn.Latency)
	if err != nil {
		return nil, fmt.Errorf("stats %s: decode histogram: %w", sn.Worker, err)
	}
	if !metrics.IsLatencyLayout(h) {
		converted := metrics.NewLatencyHistogram()
		metrics.MergeLatency(converted, h)
		h = converted
	}
	st := sendStatsWith(h)
	st.Timeline.Merge(sn.Timeline)
	st.Accepted, st.Retries, st.Unsent, st.LastProgress = sn.Accepted, sn.Retries, sn.Unsent, sn.LastProgress
	addReasons(st.Rejected, sn.Rejected)
	addReasons(st.Transient, sn.Transient)
	addReasons(st.Failed, sn.Failed)
	if sn.Stall != nil {
		s := *sn.Stall
		st.Stall = &s
	}
	return st, nil
}

// SendStatsPrefix is where the workers' figures of one send live in the object store.
func SendStatsPrefix(campaign, send string) string { return "runs/" + campaign + "/" + send + "/" }

// SendStatsKey is where one worker publishes its figures of one send.
func SendStatsKey(campaign, send, worker string) string {
	return SendStatsPrefix(campaign, send) + worker + ".json"
}

// WorkerFigures is one worker's part of a send's figures.
type WorkerFigures struct {
	Worker   string    `json:"worker"`
	At       time.Time `json:"at"` // when it last published
	Accepted int64     `json:"accepted"`
	Final    bool      `json:"final"` // it stopped and published its last figures
}

// CollectSendStats reads and merges every worker's published figures of one send.
func CollectSendStats(ctx context.Context, store ObjectStore, campaign, send string) (*SendStats, []WorkerFigures, error) {
	prefix := SendStatsPrefix(campaign, send)
	keys, err := store.List(ctx, prefix)
	if err != nil {
		return nil, nil, fmt.Errorf("stats: list %s: %w", prefix, err)
	}
	var out *SendStats
	var workers []WorkerFigures
	for _, k := range keys {
		if strings.Contains(strings.TrimPrefix(k, prefix), "/") || !strings.HasSuffix(k, ".json") {
			continue
		}
		raw, err := store.Get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue // removed between List and Get
		}
		if err != nil {
			return nil, nil, fmt.Errorf("stats: get %s: %w", k, err)
		}
		var sn StatsSnapshot
		if err := json.Unmarshal(raw, &sn); err != nil {
			return nil, nil, fmt.Errorf("stats: decode %s: %w", k, err)
		}
		st, err := sn.Stats()
		if err != nil {
			return nil, nil, err
		}
		if out == nil {
			out = st // its own copy: taken, not merged into an empty one (a status poll's cost)
		} else {
			out.Merge(st)
		}
		workers = append(workers, WorkerFigures{Worker: sn.Worker, At: sn.At, Accepted: sn.Accepted, Final: sn.Final})
	}
	if out == nil {
		out = NewSendStats()
	}
	return out, workers, nil
}

// publish writes the figures of every send that changed since its last publication (all
// of them when final is set).
func (w *Worker) publish(ctx context.Context, final bool) error {
	var errs []error
	for _, r := range w.recorders() {
		r.mu.Lock()
		dirty := r.dirty
		r.dirty = false
		r.mu.Unlock()
		if !dirty && !final {
			continue
		}
		sn, err := r.snapshot().Snapshot(w.cfg.ID, r.campaign, r.send)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sn.Final = final
		data, err := json.Marshal(sn)
		if err != nil {
			errs = append(errs, fmt.Errorf("stats: encode: %w", err))
			continue
		}
		if err := w.cfg.Objects.Put(ctx, SendStatsKey(r.campaign, r.send, w.cfg.ID), data); err != nil {
			r.mu.Lock()
			r.dirty = true // try again next time
			r.mu.Unlock()
			errs = append(errs, fmt.Errorf("stats: publish %s/%s: %w", r.campaign, r.send, err))
		}
	}
	return errors.Join(errs...)
}

// restore seeds a send's recorder with what this worker published before it restarted, so
// that its counters continue instead of starting again from zero.
func (w *Worker) restore(ctx context.Context, r *sendRecorder) {
	raw, err := w.cfg.Objects.Get(ctx, SendStatsKey(r.campaign, r.send, w.cfg.ID))
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			w.cfg.Log.Warn("stats: restore", "campaign", r.campaign, "send", r.send, "err", err)
		}
		return
	}
	var sn StatsSnapshot
	if err := json.Unmarshal(raw, &sn); err != nil {
		w.cfg.Log.Warn("stats: restore: decode", "campaign", r.campaign, "send", r.send, "err", err)
		return
	}
	st, err := sn.Stats()
	if err != nil {
		w.cfg.Log.Warn("stats: restore", "campaign", r.campaign, "send", r.send, "err", err)
		return
	}
	st.Stall = nil
	r.seed(st)
	w.cfg.Log.Info("send figures restored", "campaign", r.campaign, "send", r.send, "accepted", st.Accepted)
}

// publishLoop publishes statistics every StatsEvery and checks for stalls every second
// until ctx ends (Run publishes the final figures after every loop has stopped).
func (w *Worker) publishLoop(ctx context.Context) error {
	pub := time.NewTicker(w.cfg.StatsEvery)
	defer pub.Stop()
	stall := time.NewTicker(time.Second)
	defer stall.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-stall.C:
			w.checkStalls(time.Now())
		case <-pub.C:
			if err := w.publish(ctx, false); err != nil && ctx.Err() == nil {
				w.cfg.Log.Warn("publish stats", "err", err)
			}
		}
	}
}

// checkStalls logs, once each, the sends that stopped making progress and those that
// resumed.
func (w *Worker) checkStalls(now time.Time) {
	for _, r := range w.recorders() {
		began, resumed := r.checkStall(now, w.cfg.StallAfter, w.cfg.ID)
		switch {
		case began != nil:
			w.cfg.Log.Warn("send stalled: work in flight and no recipient accepted or rejected",
				"campaign", r.campaign, "send", r.send, "for", now.Sub(began.Since).Round(time.Second), "cause", began.Cause)
		case resumed:
			w.cfg.Log.Info("send resumed", "campaign", r.campaign, "send", r.send)
		}
	}
}
