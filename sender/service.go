package sender

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ServiceConfig configures the campaign service.
type ServiceConfig struct {
	Registry Registry
	Objects  ObjectStore
	Records  RecordStore
	// Ranges is the FIFO queue GO puts range messages on.
	Ranges  Queue
	Resolve ResolveConfig
	// RangeCount is how many range messages one GO puts on the queue (default 50).
	RangeCount int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Service is the campaign API's logic: create, status, prepare and GO. It is safe for
// concurrent use and across processes sharing the same stores (GO is a compare-and-set).
type Service struct {
	cfg    ServiceConfig
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewService returns a service; Close stops its background resolutions.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.Registry == nil || cfg.Objects == nil || cfg.Records == nil || cfg.Ranges == nil {
		return nil, errors.New("sender: service needs Registry, Objects, Records and Ranges")
	}
	if cfg.RangeCount <= 0 {
		cfg.RangeCount = 50
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{cfg: cfg, ctx: ctx, cancel: cancel}, nil
}

// Close cancels background resolutions and waits for them.
func (s *Service) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// NewID returns a random 16-hex-digit ID with the given prefix.
func NewID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// Create validates spec, reads an object audience (so a bad line is reported now), stores
// the campaign and starts resolving it in the background. id may be empty for a new one.
func (s *Service) Create(ctx context.Context, id string, spec CampaignSpec) (*CampaignRecord, error) {
	if id == "" {
		id = NewID("c")
	}
	if !ValidCampaignID(id) {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, fieldErr("id", "%q: want 1-64 of [A-Za-z0-9_-]", id))
	}
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	users := spec.Audience.UserIDs
	if key := spec.Audience.Object; key != "" {
		format, err := AudienceFormatOf(key, spec.Audience.Format)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, fieldErr("audience.format", "%v", err))
		}
		data, err := s.cfg.Objects.Get(ctx, key)
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, fieldErr("audience.object", "%q not found", key))
		}
		if err != nil {
			return nil, fmt.Errorf("campaign: read audience: %w", err)
		}
		if users, err = ParseAudience(data, format); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, fieldErr("audience", "no user IDs"))
	}
	rec := &CampaignRecord{ID: id, Spec: spec, State: StateResolving, CreatedAt: s.cfg.Now().UTC()}
	rec.Spec.Audience.UserIDs = nil // the record stays small; the IDs go to the resolver
	rec.Resolution.UsersTotal = int64(len(users))
	if err := s.put(ctx, rec); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, fieldErr("id", "campaign %q exists", id))
		}
		return nil, err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.resolve(s.ctx, rec.ID, users)
	}()
	return rec, nil
}

// resolve runs one resolution and records progress and outcome.
func (s *Service) resolve(ctx context.Context, id string, users []string) {
	var prog ResolveProgress
	done := make(chan struct{})
	var tick sync.WaitGroup
	tick.Add(1)
	go func() { // progress into the record, twice a second
		defer tick.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = s.update(ctx, id, func(r *CampaignRecord) error {
					r.Resolution.UsersResolved = prog.UsersDone.Load()
					return nil
				})
			}
		}
	}()
	rec, err := s.get(ctx, id)
	var res *Resolved
	if err == nil {
		rv := Resolver{Registry: s.cfg.Registry, Objects: s.cfg.Objects, Config: s.cfg.Resolve}
		res, err = rv.Resolve(ctx, id, &rec.Spec, users, &prog)
	}
	close(done)
	tick.Wait()
	_ = s.update(context.WithoutCancel(ctx), id, func(r *CampaignRecord) error {
		now := s.cfg.Now().UTC()
		r.Resolution.FinishedAt = &now
		if err != nil {
			r.State, r.Error = StateFailed, err.Error()
			return nil
		}
		c := res.Manifest.Counts
		r.State = StateResolved
		r.Resolution = ResolutionStatus{UsersTotal: int64(c.Users + c.DuplicatesRemoved), UsersResolved: int64(c.Users),
			UnknownUsers: c.UnknownUsers, UnknownSample: res.UnknownSample, DuplicatesRemoved: c.DuplicatesRemoved,
			Recipients: res.Manifest.Recipients, IOS: c.IOS, Android: c.Android, ControlUsers: c.ControlUsers,
			ControlDevices: c.ControlDevices, ControlIOS: c.ControlIOS, ByVariant: c.ByVariant, FinishedAt: &now}
		return nil
	})
}

// Status is a campaign's record plus its workers' readiness.
type Status struct {
	Campaign *CampaignRecord `json:"campaign"`
	Ready    []Readiness     `json:"ready"`
	// Prepared is true when at least Prepare.Workers workers hold every recipient.
	Prepared bool `json:"prepared"`
}

// Status returns a campaign's state; an unknown ID wraps ErrNotFound.
func (s *Service) Status(ctx context.Context, id string) (*Status, error) {
	rec, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	st := &Status{Campaign: rec}
	recs, err := s.cfg.Records.List(ctx, ReadinessPrefix(id))
	if err != nil {
		return nil, fmt.Errorf("campaign %s: readiness: %w", id, err)
	}
	full := 0
	for _, r := range recs {
		var rd Readiness
		if json.Unmarshal(r.Data, &rd) == nil {
			st.Ready = append(st.Ready, rd)
			if uint32(rd.Recipients) == rec.Resolution.Recipients {
				full++
			}
		}
	}
	st.Prepared = rec.Prepare != nil && full >= rec.Prepare.Workers
	return st, nil
}

// Prepare asks send workers to preload the campaign; GO is allowed once workers of them
// report ready. Idempotent; it refuses (ErrNotReady) until resolution has finished.
func (s *Service) Prepare(ctx context.Context, id string, workers int) (*CampaignRecord, error) {
	if workers < 1 {
		workers = 1
	}
	var out *CampaignRecord
	err := s.update(ctx, id, func(r *CampaignRecord) error {
		switch r.State {
		case StateResolving:
			return fmt.Errorf("%w: campaign %s is still resolving (%d of %d users)", ErrNotReady, id, r.Resolution.UsersResolved, r.Resolution.UsersTotal)
		case StateFailed:
			return fmt.Errorf("%w: campaign %s failed to resolve: %s", ErrNotReady, id, r.Error)
		}
		if r.Prepare == nil || r.Prepare.Workers != workers {
			r.Prepare = &PrepareRequest{RequestedAt: s.cfg.Now().UTC(), Workers: workers}
		}
		out = r
		return nil
	})
	return out, err
}

// List returns every campaign record.
func (s *Service) List(ctx context.Context) ([]*CampaignRecord, error) {
	return ListCampaigns(ctx, s.cfg.Records)
}
