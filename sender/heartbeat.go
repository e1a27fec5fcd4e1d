package sender

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// heartbeatLoop keeps the worker's record (workers/<id>) fresh so that status can tell
// live workers from dead ones.
func (w *Worker) heartbeatLoop(ctx context.Context) error {
	t := time.NewTicker(w.cfg.Heartbeat)
	defer t.Stop()
	key := "workers/" + w.cfg.ID
	var ver int64
	for {
		st := w.Stats()
		hb := Heartbeat{Worker: w.cfg.ID, Fanout: w.cfg.Fanout, Send: w.cfg.Send, At: time.Now().UTC(),
			Accepted: st.Accepted, Done: st.Done()}
		data, _ := json.Marshal(hb)
		v, err := w.cfg.Records.CompareAndSwap(ctx, key, ver, data)
		if err != nil {
			if cur, gerr := w.cfg.Records.Get(ctx, key); gerr == nil {
				ver = cur.Version // someone restarted with our ID: take over the record
			} else if ctx.Err() == nil {
				w.cfg.Log.Warn("heartbeat", "err", err)
			}
		} else {
			ver = v
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Heartbeat is a worker's periodic liveness record.
type Heartbeat struct {
	Worker   string    `json:"worker"`
	Fanout   int       `json:"fanout"`
	Send     int       `json:"send"`
	At       time.Time `json:"at"`
	Accepted int64     `json:"accepted"`
	Done     int64     `json:"done"`
}

// WorkerStatus is a worker's last heartbeat and whether it is recent.
type WorkerStatus struct {
	Heartbeat
	// Alive is true when the heartbeat is younger than staleAfter.
	Alive bool `json:"alive"`
}

// staleAfter is how old a heartbeat may be before its worker counts as gone.
const staleAfter = 10 * time.Second

// Workers lists the workers that ever sent a heartbeat, with their liveness.
func (s *Service) Workers(ctx context.Context) ([]WorkerStatus, error) {
	recs, err := s.cfg.Records.List(ctx, "workers/")
	if err != nil {
		return nil, fmt.Errorf("workers: list: %w", err)
	}
	now := s.cfg.Now()
	out := make([]WorkerStatus, 0, len(recs))
	for _, r := range recs {
		var hb Heartbeat
		if err := json.Unmarshal(r.Data, &hb); err != nil {
			return nil, fmt.Errorf("workers: decode %s: %w", r.Key, err)
		}
		out = append(out, WorkerStatus{Heartbeat: hb, Alive: now.Sub(hb.At) < staleAfter})
	}
	return out, nil
}
