package sender

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// ServiceConfig configures the campaign service.
type ServiceConfig struct {
	Registry Registry
	Objects  ObjectStore
	Records  RecordStore
	// Ranges is the FIFO queue GO puts range messages on.
	Ranges Queue
	// Ledger, when set, is where the service reads a send's true counts, finishes
	// campaigns (done, done_with_failures), counts an abort's unsent recipients and makes a
	// redrive's failed recipients pending again. Without it campaigns stay in sending.
	Ledger Ledger
	// DeadLetters, when set, is drained of a campaign's dead letters by a redrive.
	DeadLetters Queue
	Resolve     ResolveConfig
	// RangeCount is how many range messages one GO puts on the queue (default 50).
	RangeCount int
	// Watch is how often the service looks at the sends in flight to finish them and to
	// notice stalls (default 1s); NoWatch turns it off, and the scheduler with it.
	Watch   time.Duration
	NoWatch bool
	// StallAfter is how long a send may go without progress while recipients remain before
	// it is logged and shown as stalled (default 15s).
	StallAfter time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// AfterResolve, when set, runs once each resolution has ended (resolved or failed),
	// before the campaign's record says so: the embedded system gives the resolution's
	// leftovers back to the OS there, before the preload builds its arena.
	AfterResolve func()
	Log          *slog.Logger

	// The operator's workflow (sender/approve.go, sender/testpush.go, sender/schedule.go).
	// Transports, when set, carry test pushes only (a campaign's sends go through workers).
	Transports map[Platform]Transport
	// ApproveWithoutTestPush lets approvers approve without first sending themselves a test
	// push of the current message.
	ApproveWithoutTestPush bool
	// ScheduleAhead is how long before its time a scheduled campaign is prepared, and a
	// recurring rule's occurrence created (default 10m). ScheduleGrace is how long after its
	// time a scheduled campaign that could not be pressed (not approved, not prepared) is
	// still pressed once it can be, before it is marked missed (default 5m).
	// ScheduleRefresh is how often the scheduler reads the campaigns and rules again besides
	// waking at the times it knows of (default 5s). NoWatch turns the scheduler off too.
	ScheduleAhead   time.Duration
	ScheduleGrace   time.Duration
	ScheduleRefresh time.Duration
}

// Service is the campaign API's logic: create, status, prepare, GO, abort and redrive, and
// the watch that finishes sends. It is safe for concurrent use and across processes sharing
// the same stores (every change is a compare-and-set on the campaign record).
type Service struct {
	cfg    ServiceConfig
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	watch  map[string]*watched // sends in flight, by campaign
	ledger map[string]ledgerRead
	kick   chan struct{} // wakes the scheduler (a scheduled campaign was created)
}

// NewService returns a service and starts its watch; Close stops it and its background
// resolutions.
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
	if cfg.Watch <= 0 {
		cfg.Watch = time.Second
	}
	if cfg.StallAfter <= 0 {
		cfg.StallAfter = 15 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	cfg.scheduleDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, ctx: ctx, cancel: cancel, watch: map[string]*watched{}, ledger: map[string]ledgerRead{},
		kick: make(chan struct{}, 1)}
	if cfg.Ledger != nil && !cfg.NoWatch {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.watchLoop(ctx)
		}()
	}
	if !cfg.NoWatch {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.scheduleLoop(ctx)
		}()
	}
	return s, nil
}

// Close stops the watch and background resolutions and waits for them. A resolution cut
// short stays resolving; Resume starts it again.
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
// Inline user IDs are kept as an object (AudienceKey) so that a resolution cut short by a
// restart can run again. A spec with SendAt is scheduled (sender/schedule.go): SendAt must
// be in the future.
func (s *Service) Create(ctx context.Context, id string, spec CampaignSpec) (*CampaignRecord, error) {
	if err := s.checkSendAt(spec.SendAt); err != nil {
		return nil, err
	}
	return s.create(ctx, id, spec, origin{createdBy: ActorOf(ctx)})
}

// create is Create for a campaign of the given origin (a person, or a recurring rule).
func (s *Service) create(ctx context.Context, id string, spec CampaignSpec, from origin) (*CampaignRecord, error) {
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
	if _, err := GetCampaign(ctx, s.cfg.Records, id); err == nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, fieldErr("id", "campaign %q exists", id))
	}
	rec := &CampaignRecord{ID: id, Spec: spec, State: StateResolving, CreatedAt: s.cfg.Now().UTC()}
	if len(spec.Audience.UserIDs) > 0 {
		data, err := json.Marshal(spec.Audience.UserIDs)
		if err != nil {
			return nil, fmt.Errorf("campaign %s: keep audience: %w", id, err)
		}
		if err := s.cfg.Objects.Put(ctx, AudienceKey(id), data); err != nil {
			return nil, fmt.Errorf("campaign %s: keep audience: %w", id, err)
		}
		rec.Spec.Audience = AudienceSource{Object: AudienceKey(id), Format: "json"}
	}
	rec.Resolution.UsersTotal = int64(len(users))
	rec.audit(s.cfg.Now(), ActorOf(ctx), "create", from.apply(rec))
	if err := s.put(ctx, rec); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, fieldErr("id", "campaign %q exists", id))
		}
		return nil, err
	}
	if rec.Schedule != nil {
		s.kickScheduler()
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
	if err != nil && ctx.Err() != nil {
		return // cut short by Close: the campaign stays resolving and Resume runs it again
	}
	if s.cfg.AfterResolve != nil {
		s.cfg.AfterResolve()
	}
	_ = s.update(context.WithoutCancel(ctx), id, func(r *CampaignRecord) error {
		now := s.cfg.Now().UTC()
		r.Resolution.FinishedAt = &now
		if r.Terminal() {
			return errSkip // aborted (or its schedule cancelled) while it resolved: it stays so
		}
		if err != nil {
			r.State, r.Error = StateFailed, err.Error()
			s.cfg.Log.Error("campaign failed to resolve", "campaign", id, "err", err)
			return nil
		}
		c := res.Manifest.Counts
		r.State = StateResolved
		r.Resolution = ResolutionStatus{UsersTotal: int64(c.Users + c.DuplicatesRemoved), UsersResolved: int64(c.Users),
			UnknownUsers: c.UnknownUsers, UnknownSample: res.UnknownSample, DuplicatesRemoved: c.DuplicatesRemoved,
			Recipients: res.Manifest.Recipients, IOS: c.IOS, Android: c.Android, ControlUsers: c.ControlUsers,
			ControlDevices: c.ControlDevices, ControlIOS: c.ControlIOS, ByVariant: c.ByVariant, FinishedAt: &now,
			NoMessageSample: c.NoMessageSample}
		if c.NoMessageIOS+c.NoMessageAndroid > 0 {
			r.Resolution.NoMessage = map[string]int{}
			if c.NoMessageIOS > 0 {
				r.Resolution.NoMessage[PlatformIOS.String()] = c.NoMessageIOS
			}
			if c.NoMessageAndroid > 0 {
				r.Resolution.NoMessage[PlatformAndroid.String()] = c.NoMessageAndroid
			}
		}
		return nil
	})
}

// Status is a campaign's record plus its workers' readiness and, once GO was pressed, the
// progress of its sends.
type Status struct {
	Campaign *CampaignRecord `json:"campaign"`
	Ready    []Readiness     `json:"ready"`
	// Prepared is true when at least Prepare.Workers workers hold every recipient.
	Prepared bool `json:"prepared"`
	// Progress is set once GO was pressed.
	Progress *Progress `json:"progress,omitempty"`
	// Approval says how many approvals GO still needs, and any rejection.
	Approval ApprovalStatus `json:"approval"`
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
	dead, err := s.deadWorkers(ctx)
	if err != nil {
		return nil, err
	}
	full := 0
	for _, r := range recs {
		var rd Readiness
		if json.Unmarshal(r.Data, &rd) == nil && !dead[rd.Worker] { // a dead worker holds nothing
			st.Ready = append(st.Ready, rd)
			if readyFor(rec, rd) {
				full++
			}
		}
	}
	st.Prepared = rec.Prepare != nil && full >= rec.Prepare.Workers
	st.Approval = rec.ApprovalStatus()
	if rec.Send != nil {
		if st.Progress, err = s.progress(ctx, rec); err != nil {
			return nil, err
		}
	}
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
		if r.Terminal() {
			return fmt.Errorf("%w: campaign %s is %s", ErrFinished, id, r.State)
		}
		if r.Prepare == nil || r.Prepare.Workers != workers {
			r.Prepare = &PrepareRequest{RequestedAt: s.cfg.Now().UTC(), Workers: workers}
			r.audit(s.cfg.Now(), ActorOf(ctx), "prepare", fmt.Sprintf("%d workers", workers))
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
