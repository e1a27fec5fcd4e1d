package sender

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// loaded is one campaign a worker holds.
type loaded struct {
	spec CampaignSpec
	// version is the message version spec holds (CampaignRecord.MessageVersion).
	version  int
	manifest Manifest
	pre      *Preloaded // nil on fan-out-only workers
	// aborted is set when the campaign's record says aborted: loops push nothing more of it.
	aborted  atomic.Bool
	mu       sync.Mutex
	rendered map[int]*Batch // per segment index: a template batch with the message set
}

// prepareLoop follows the campaign records every Poll: it preloads the campaigns whose
// prepare was requested and that are not finished, reports readiness, passes an abort on to
// the loops, and drops the campaigns that are finished.
func (w *Worker) prepareLoop(ctx context.Context) error {
	t := time.NewTicker(w.cfg.Poll)
	defer t.Stop()
	for {
		recs, err := ListCampaigns(ctx, w.cfg.Records)
		if err != nil && ctx.Err() == nil {
			w.cfg.Log.Warn("prepare: list campaigns", "err", err)
		}
		for _, r := range recs {
			w.mu.Lock()
			c, have := w.campaigns[r.ID]
			if have && r.State == StateAborted {
				c.aborted.Store(true)
			}
			if have && r.Terminal() {
				delete(w.campaigns, r.ID) // loops still holding it finish with their pointer
				w.cfg.Log.Info("campaign finished; released its preloaded recipients", "campaign", r.ID, "state", r.State)
			}
			w.mu.Unlock()
			if have && !r.Terminal() && r.Send == nil && c.pre != nil && r.MessageVersion != c.messageVersion() {
				w.followEdit(ctx, c, r)
			}
			if have || r.Prepare == nil || r.State == StateResolving || r.Terminal() {
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
	c := &loaded{spec: rec.Spec, version: rec.MessageVersion, rendered: map[int]*Batch{}}
	c.aborted.Store(rec.State == StateAborted)
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
		LoadMillis: time.Since(start).Milliseconds(), ReadyAt: time.Now().UTC(), MessageVersion: c.version}
	if err := w.reportReady(ctx, id, rd); err != nil {
		return nil, err
	}
	w.cfg.Log.Info("campaign ready", "campaign", id, "recipients", rd.Recipients, "bytes", rd.ResidentBytes, "ms", rd.LoadMillis)
	return c, nil
}

// reportReady writes the worker's readiness record of a campaign.
func (w *Worker) reportReady(ctx context.Context, id string, rd Readiness) error {
	data, _ := json.Marshal(rd)
	key := ReadinessPrefix(id) + w.cfg.ID
	ver := int64(0)
	if old, err := w.cfg.Records.Get(ctx, key); err == nil {
		ver = old.Version
	}
	if _, err := w.cfg.Records.CompareAndSwap(ctx, key, ver, data); err != nil {
		return fmt.Errorf("campaign %s: report ready: %w", id, err)
	}
	return nil
}

// messageVersion returns the message version the loaded campaign renders.
func (c *loaded) messageVersion() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version
}

// followEdit takes a message edited before GO: the campaign renders the new message (the
// tokens stay as loaded; an edit cannot change who gets what), and the worker reports
// ready again naming the new version, which GO waits for.
func (w *Worker) followEdit(ctx context.Context, c *loaded, r *CampaignRecord) {
	c.mu.Lock()
	c.spec, c.version, c.rendered = r.Spec, r.MessageVersion, map[int]*Batch{}
	c.mu.Unlock()
	rd := Readiness{Worker: w.cfg.ID, Recipients: c.pre.Len(), ResidentBytes: c.pre.ResidentBytes(),
		ReadyAt: time.Now().UTC(), MessageVersion: r.MessageVersion}
	if err := w.reportReady(ctx, r.ID, rd); err != nil {
		c.mu.Lock()
		c.version = -1 // not reported: the next look follows the edit again
		c.mu.Unlock()
		w.cfg.Log.Warn("prepare: report the edited message", "campaign", r.ID, "err", err)
		return
	}
	w.cfg.Log.Info("campaign message edited; ready with the new version", "campaign", r.ID, "version", r.MessageVersion)
}
