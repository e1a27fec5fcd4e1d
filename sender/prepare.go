package sender

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// loaded is one campaign a worker holds.
type loaded struct {
	spec     CampaignSpec
	manifest Manifest
	pre      *Preloaded // nil on fan-out-only workers
	mu       sync.Mutex
	rendered map[int]*Batch // per segment index: a template batch with the message set
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
