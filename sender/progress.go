package sender

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Progress is where a campaign's sends stand: counts from the ledger (the truth) where the
// service has one, reasons and latencies from the figures the workers publish.
type Progress struct {
	Recipients int64 `json:"recipients"`
	Accepted   int64 `json:"accepted"`
	// Rejected counts recipients rejected for good; RejectedBy splits them by reason.
	Rejected   int64            `json:"rejected"`
	RejectedBy map[string]int64 `json:"rejected_by"`
	// Failed counts recipients given up on; they are dead-lettered until a redrive.
	// FailedBy splits them by reason.
	Failed   int64            `json:"failed"`
	FailedBy map[string]int64 `json:"failed_by"`
	// DeadLettered is Failed, named for the queue that holds them.
	DeadLettered int64 `json:"dead_lettered"`
	// Repeated counts accepted recipients the sender pushed again and saw accepted again
	// (LedgerCounts.Repeated); 0 when the service has no ledger.
	Repeated int64 `json:"repeated"`
	// Unsent were released without a push because the campaign was aborted.
	Unsent int64 `json:"unsent"`
	// InFlight are neither finished nor unsent: pending, being pushed or waiting to retry.
	InFlight int64 `json:"in_flight"`
	// Transient counts transient answers by reason (each was retried or failed).
	Transient map[string]int64 `json:"transient"`
	Retries   int64            `json:"retries"`
	// LatencyMs holds percentiles of the accepted notifications' latency from their press.
	LatencyMs LatencySoFar `json:"latency_ms"`
	// NoLatencySample counts acceptances the ledger has but no published histogram does
	// (a worker died before publishing them): the latencies describe the others.
	NoLatencySample int64 `json:"no_latency_sample"`
	// LastProgress is when a recipient was last accepted or rejected.
	LastProgress *time.Time `json:"last_progress,omitempty"`
	// Stall is set while work remains and nothing progressed for a while.
	Stall *Stall `json:"stall,omitempty"`
	// Source says where the counts come from: "ledger", or "workers" (their published
	// figures) when the service has no ledger.
	Source  string          `json:"source"`
	Workers []WorkerFigures `json:"workers"`
}

// LatencySoFar are latency percentiles in milliseconds.
type LatencySoFar struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// watched is what the service's watch remembers of a campaign between looks.
type watched struct {
	finished int64
	since    time.Time // when finished last changed
	stall    *Stall
}

// ledgerRead is a cached ledger count.
type ledgerRead struct {
	at     time.Time
	counts LedgerCounts
}

// ledgerCounts returns a campaign's ledger counts, read at most once per Watch.
func (s *Service) ledgerCounts(ctx context.Context, id string, fresh bool) (LedgerCounts, error) {
	now := s.cfg.Now()
	s.mu.Lock()
	c, ok := s.ledger[id]
	s.mu.Unlock()
	if ok && !fresh && now.Sub(c.at) < s.cfg.Watch {
		return c.counts, nil
	}
	counts, err := s.cfg.Ledger.Counts(ctx, id)
	if err != nil {
		return LedgerCounts{}, fmt.Errorf("campaign %s: ledger counts: %w", id, err)
	}
	s.mu.Lock()
	s.ledger[id] = ledgerRead{at: now, counts: counts}
	s.mu.Unlock()
	return counts, nil
}

// Figures merges the workers' published figures of every send of a campaign.
func (s *Service) Figures(ctx context.Context, rec *CampaignRecord) (*SendStats, []WorkerFigures, error) {
	var all *SendStats
	var workers []WorkerFigures
	for _, snd := range rec.Sends() {
		st, ws, err := CollectSendStats(ctx, s.cfg.Objects, rec.ID, snd.ID)
		if err != nil {
			return nil, nil, err
		}
		if all == nil {
			all = st // a fresh copy: taken, not merged into an empty one
		} else {
			all.Merge(st)
		}
		workers = append(workers, ws...)
	}
	if all == nil {
		all = NewSendStats()
	}
	return all, workers, nil
}

// progress puts together a campaign's Progress.
func (s *Service) progress(ctx context.Context, rec *CampaignRecord) (*Progress, error) {
	fig, workers, err := s.Figures(ctx, rec)
	if err != nil {
		return nil, err
	}
	p := &Progress{Recipients: int64(rec.Resolution.Recipients), Accepted: fig.Accepted, Rejected: fig.RejectedTotal(),
		RejectedBy: fig.Rejected, Failed: fig.FailedTotal(), FailedBy: fig.Failed, Unsent: fig.Unsent,
		Transient: fig.Transient, Retries: fig.Retries, Stall: fig.Stall, Source: "workers", Workers: workers}
	switch {
	case rec.Terminal() && rec.Result != nil:
		// Read from the ledger when the campaign ended: final, and never behind as a
		// cached read of the ledger can be for a moment.
		r := rec.Result
		p.Accepted, p.Rejected, p.Failed, p.Repeated, p.Source = r.Accepted, r.Rejected, r.Failed, r.Repeated, "ledger"
	case s.cfg.Ledger != nil:
		c, err := s.ledgerCounts(ctx, rec.ID, false)
		if err != nil {
			return nil, err
		}
		p.Accepted, p.Rejected, p.Failed, p.Repeated, p.Source = c.Accepted, c.Rejected, c.Failed, c.Repeated, "ledger"
	}
	if rec.Result != nil {
		p.Unsent = rec.Result.Unsent
	}
	p.DeadLettered = p.Failed
	p.InFlight = max(p.Recipients-p.Accepted-p.Rejected-p.Failed-p.Unsent, 0)
	if rec.Terminal() {
		p.InFlight = 0
	}
	p.NoLatencySample = max(p.Accepted-fig.Latency.TotalCount(), 0)
	if h := fig.Latency; h.TotalCount() > 0 {
		ms := func(q float64) float64 { return float64(h.ValueAtQuantile(q)) / 1000 }
		p.LatencyMs = LatencySoFar{P50: ms(50), P95: ms(95), P99: ms(99), Max: float64(h.Max()) / 1000}
	}
	if !fig.LastProgress.IsZero() {
		t := fig.LastProgress
		p.LastProgress = &t
	}
	s.mu.Lock()
	if w := s.watch[rec.ID]; w != nil && w.stall != nil && p.Stall == nil {
		st := *w.stall
		p.Stall = &st
	}
	s.mu.Unlock()
	if rec.Terminal() {
		p.Stall = nil
	}
	return p, nil
}

// watchLoop looks at the campaigns every Watch until ctx ends: it finishes the sends
// whose recipients are all accepted, rejected or failed, counts what an abort left unsent,
// and logs sends that stall.
func (s *Service) watchLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.Watch)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.WatchOnce(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Log.Warn("watch", "err", err)
		}
	}
}

// WatchOnce is one look of the watch (the watch calls it every Watch; tests call it
// directly).
func (s *Service) WatchOnce(ctx context.Context) error {
	recs, err := ListCampaigns(ctx, s.cfg.Records)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	live := map[string]bool{}
	for _, r := range recs {
		if r.State != StateSending && !(r.State == StateAborted && r.Result == nil) {
			continue
		}
		live[r.ID] = true
		c, err := s.ledgerCounts(ctx, r.ID, true)
		if err != nil {
			s.cfg.Log.Warn("watch: ledger", "campaign", r.ID, "err", err)
			continue
		}
		s.mu.Lock()
		w := s.watch[r.ID]
		if w == nil {
			w = &watched{finished: c.Finished(), since: now}
			s.watch[r.ID] = w
		}
		changed := c.Finished() != w.finished
		if changed {
			w.finished, w.since = c.Finished(), now
		}
		quiet := now.Sub(w.since)
		s.mu.Unlock()
		total := int64(r.Resolution.Recipients)
		switch {
		case r.State == StateSending && c.Finished() >= total:
			s.finish(ctx, r.ID, c, StateSending)
		case r.State == StateAborted && quiet >= 2*s.cfg.Watch:
			// The workers have let go (nothing finished for two looks): what is left is unsent.
			s.finish(ctx, r.ID, c, StateAborted)
		case r.State == StateSending:
			s.checkStall(ctx, r, w, quiet, changed, total-c.Finished())
		}
	}
	s.mu.Lock()
	for id := range s.watch {
		if !live[id] {
			delete(s.watch, id)
			delete(s.ledger, id)
		}
	}
	s.mu.Unlock()
	return nil
}

// finish moves a campaign from state from to its terminal state with its final counts.
func (s *Service) finish(ctx context.Context, id string, c LedgerCounts, from string) {
	var final *CampaignRecord
	err := s.update(ctx, id, func(r *CampaignRecord) error {
		if r.State != from || (from == StateAborted && r.Result != nil) {
			return errSkip // another replica got there first, or it changed meanwhile
		}
		now := s.cfg.Now().UTC()
		total := int64(r.Resolution.Recipients)
		r.Result = &Outcomes{FinishedAt: now, Recipients: total, Accepted: c.Accepted, Rejected: c.Rejected, Failed: c.Failed,
			Repeated: c.Repeated}
		if from == StateAborted {
			r.Result.Unsent = max(total-c.Finished(), 0)
		} else if c.Failed > 0 {
			r.State = StateDoneWithFailures
		} else {
			r.State = StateDone
		}
		r.audit(now, "system", "finish", fmt.Sprintf("%s: %d accepted, %d rejected, %d failed, %d unsent",
			r.State, r.Result.Accepted, r.Result.Rejected, r.Result.Failed, r.Result.Unsent))
		final = r
		return nil
	})
	if err != nil {
		if !errors.Is(err, errSkip) {
			s.cfg.Log.Warn("watch: finish", "campaign", id, "err", err)
		}
		return
	}
	res := final.Result
	log := s.cfg.Log.Info
	if final.State != StateDone {
		log = s.cfg.Log.Warn
	}
	log("campaign finished", "campaign", id, "state", final.State, "accepted", res.Accepted, "rejected", res.Rejected,
		"failed", res.Failed, "unsent", res.Unsent)
}

// errSkip leaves a record unchanged in update.
var errSkip = errors.New("skip")

// checkStall logs a send that has recipients left and made no progress for StallAfter,
// once, and when it moves again.
func (s *Service) checkStall(ctx context.Context, r *CampaignRecord, w *watched, quiet time.Duration, changed bool, left int64) {
	s.mu.Lock()
	stalled := w.stall != nil
	if changed && stalled {
		w.stall = nil
		s.mu.Unlock()
		s.cfg.Log.Info("send moving again", "campaign", r.ID)
		return
	}
	s.mu.Unlock()
	if stalled || quiet < s.cfg.StallAfter {
		return
	}
	cause := "no worker is finishing its batches (are send workers running and ready?)"
	if fig, _, err := s.Figures(ctx, r); err == nil && fig.Stall != nil {
		cause = fig.Stall.Cause
	}
	s.mu.Lock()
	w.stall = &Stall{Since: w.since, Cause: cause, Worker: "service"}
	s.mu.Unlock()
	s.cfg.Log.Warn("send stalled: recipients left and none finished", "campaign", r.ID, "left", left,
		"for", quiet.Round(time.Second), "cause", cause)
}
