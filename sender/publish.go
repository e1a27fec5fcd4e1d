package sender

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/salvopush/salvo/sender/metrics"
)

// StatsSnapshot is a worker's send statistics on the wire: workers in separate processes
// publish theirs to the object store, and a report merges them.
type StatsSnapshot struct {
	Worker    string            `json:"worker"`
	At        time.Time         `json:"at"`
	Accepted  int64             `json:"accepted"`
	Rejected  map[string]int64  `json:"rejected"`
	Transient map[string]int64  `json:"transient"`
	Failed    int64             `json:"failed"`
	Retries   int64             `json:"retries"`
	Latency   []byte            `json:"latency_hdr"` // HdrHistogram V2 compressed encoding (base64 text)
	Timeline  *metrics.Timeline `json:"timeline"`
}

// Snapshot encodes s.
func (s *SendStats) Snapshot(worker string) (*StatsSnapshot, error) {
	enc, err := s.Latency.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return nil, fmt.Errorf("stats: encode histogram: %w", err)
	}
	return &StatsSnapshot{Worker: worker, At: time.Now().UTC(), Accepted: s.Accepted, Rejected: s.Rejected,
		Transient: s.Transient, Failed: s.Failed, Retries: s.Retries, Latency: enc, Timeline: s.Timeline}, nil
}

// Stats decodes a snapshot back into statistics.
func (sn *StatsSnapshot) Stats() (*SendStats, error) {
	h, err := hdrhistogram.Decode(sn.Latency)
	if err != nil {
		return nil, fmt.Errorf("stats %s: decode histogram: %w", sn.Worker, err)
	}
	st := NewSendStats()
	st.Latency.Merge(h)
	if sn.Timeline != nil {
		st.Timeline.Merge(sn.Timeline)
	}
	st.Accepted, st.Failed, st.Retries = sn.Accepted, sn.Failed, sn.Retries
	for k, v := range sn.Rejected {
		st.Rejected[k] = v
	}
	for k, v := range sn.Transient {
		st.Transient[k] = v
	}
	return st, nil
}

// StatsKey is where a worker publishes its statistics under prefix.
func StatsKey(prefix, worker string) string { return prefix + worker + ".json" }

// PublishStats writes the worker's merged statistics to the object store under its
// StatsPrefix (a no-op when it has none).
func (w *Worker) PublishStats(ctx context.Context) error {
	if w.cfg.StatsPrefix == "" || w.cfg.Send == 0 {
		return nil
	}
	sn, err := w.Stats().Snapshot(w.cfg.ID)
	if err != nil {
		return err
	}
	data, err := json.Marshal(sn)
	if err != nil {
		return fmt.Errorf("stats: encode: %w", err)
	}
	if err := w.cfg.Objects.Put(ctx, StatsKey(w.cfg.StatsPrefix, w.cfg.ID), data); err != nil {
		return fmt.Errorf("stats: publish: %w", err)
	}
	return nil
}

// CollectStats reads and merges every worker's published statistics under prefix.
func CollectStats(ctx context.Context, store ObjectStore, prefix string) (*SendStats, []string, error) {
	keys, err := store.List(ctx, prefix)
	if err != nil {
		return nil, nil, fmt.Errorf("stats: list %s: %w", prefix, err)
	}
	out := NewSendStats()
	var workers []string
	for _, k := range keys {
		raw, err := store.Get(ctx, k)
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
		out.Merge(st)
		workers = append(workers, sn.Worker)
	}
	return out, workers, nil
}

// publishLoop publishes statistics every StatsEvery until ctx ends (Run publishes the last
// one after every loop has stopped).
func (w *Worker) publishLoop(ctx context.Context) error {
	t := time.NewTicker(w.cfg.StatsEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := w.PublishStats(ctx); err != nil && ctx.Err() == nil {
				w.cfg.Log.Warn("publish stats", "err", err)
			}
		}
	}
}
