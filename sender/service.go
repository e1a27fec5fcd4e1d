package sender

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Campaign states.
const (
	StateResolving = "resolving" // accepted; resolution runs in the background
	StateResolved  = "resolved"  // shards and manifest written; prepare may start
	StateFailed    = "failed"    // resolution failed; Error says why
	StateSending   = "sending"   // GO was pressed (exactly once)
)

// CampaignRecord is the stored state of a campaign. It changes only by compare-and-set.
type CampaignRecord struct {
	ID         string           `json:"id"`
	Spec       CampaignSpec     `json:"spec"`
	State      string           `json:"state"`
	CreatedAt  time.Time        `json:"created_at"`
	Error      string           `json:"error,omitempty"`
	Resolution ResolutionStatus `json:"resolution"`
	Prepare    *PrepareRequest  `json:"prepare,omitempty"`
	Send       *SendInfo        `json:"send,omitempty"`
	version    int64
}

// ResolutionStatus reports a resolution's progress and outcome.
type ResolutionStatus struct {
	UsersTotal        int64          `json:"users_total"`
	UsersResolved     int64          `json:"users_resolved"`
	UnknownUsers      int            `json:"unknown_users"`
	UnknownSample     []string       `json:"unknown_sample,omitempty"`
	DuplicatesRemoved int            `json:"duplicates_removed"`
	Recipients        uint32         `json:"recipients"`
	IOS               int            `json:"ios"`
	Android           int            `json:"android"`
	ControlUsers      int            `json:"control_users"`
	ControlDevices    int            `json:"control_devices"`
	ControlIOS        int            `json:"control_ios"`
	ByVariant         map[string]int `json:"by_variant,omitempty"`
	FinishedAt        *time.Time     `json:"finished_at,omitempty"`
}

// PrepareRequest asks workers to preload the campaign.
type PrepareRequest struct {
	RequestedAt time.Time `json:"requested_at"`
	// Workers is how many send workers must report ready before GO is allowed.
	Workers int `json:"workers"`
}

// SendInfo is set once, by the one GO press that wins.
type SendInfo struct {
	ID        string    `json:"id"`
	PressedAt time.Time `json:"pressed_at"`
	Ranges    int       `json:"ranges"`
	// Enqueued is true once every range message is on the queue.
	Enqueued bool `json:"enqueued"`
}

// Readiness is what a send worker reports once it holds a campaign in memory.
type Readiness struct {
	Worker        string    `json:"worker"`
	Recipients    int       `json:"recipients"`
	ResidentBytes int64     `json:"resident_bytes"`
	LoadMillis    int64     `json:"load_ms"`
	ReadyAt       time.Time `json:"ready_at"`
}

// Errors a caller can branch on (the API maps them to status codes).
var (
	ErrNotReady = errors.New("not ready")     // 409: GO before prepare is complete, prepare before resolution
	ErrInvalid  = errors.New("invalid input") // 400
)

func campaignKey(id string) string { return "campaign/" + id }

// ReadinessPrefix is the record prefix of a campaign's readiness reports.
func ReadinessPrefix(id string) string { return "ready/" + id + "/" }

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
		res, err = Resolve(ctx, s.cfg.Registry, s.cfg.Objects, id, &rec.Spec, users, s.cfg.Resolve, &prog)
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

// PressResult answers a GO press.
type PressResult struct {
	SendID    string    `json:"send_id"`
	PressedAt time.Time `json:"pressed_at"`
	// AlreadyPressed is true for every press but the one that started the send.
	AlreadyPressed bool `json:"already_pressed"`
}

// RangeMessage is the body of a range message on the FIFO queue.
type RangeMessage struct {
	Campaign  string `json:"c"`
	Send      string `json:"send"`
	PressedAt int64  `json:"p"` // unix nanoseconds
	Start     uint32 `json:"s"`
	End       uint32 `json:"e"`
}

// Press is the GO button. Exactly one press moves the campaign to sending (a compare-and-set
// on its record) and puts its range messages on the FIFO queue, each with a deduplication ID
// built from campaign and range, so the queue drops repeats too. Every other press, at the
// same moment or later, from this process or another, gets the same send ID with
// AlreadyPressed set. GO before prepare is complete is refused with ErrNotReady.
func (s *Service) Press(ctx context.Context, id string) (*PressResult, error) {
	st, err := s.Status(ctx, id)
	if err != nil {
		return nil, err
	}
	if snd := st.Campaign.Send; snd != nil {
		if !snd.Enqueued && s.cfg.Now().Sub(snd.PressedAt) > reenqueueAfter {
			// The winning press did not finish enqueueing (its process died): finish it.
			// Deduplication IDs make this a no-op for ranges already on the queue.
			if err := s.enqueueRanges(ctx, id, st.Campaign.Resolution.Recipients, snd); err != nil {
				return nil, err
			}
		}
		return &PressResult{SendID: snd.ID, PressedAt: snd.PressedAt, AlreadyPressed: true}, nil
	}
	if !st.Prepared {
		return nil, fmt.Errorf("%w: campaign %s is not prepared: %s", ErrNotReady, id, prepareSummary(st))
	}
	now := s.cfg.Now().UTC()
	mine := &SendInfo{ID: NewID("s"), PressedAt: now, Ranges: rangeCount(st.Campaign.Resolution.Recipients, s.cfg.RangeCount)}
	var won *SendInfo
	err = s.update(ctx, id, func(r *CampaignRecord) error {
		if r.Send != nil {
			won = r.Send
			return nil
		}
		r.State, r.Send, won = StateSending, mine, mine
		return nil
	})
	if err != nil {
		return nil, err
	}
	if won != mine {
		return &PressResult{SendID: won.ID, PressedAt: won.PressedAt, AlreadyPressed: true}, nil
	}
	if err := s.enqueueRanges(ctx, id, st.Campaign.Resolution.Recipients, mine); err != nil {
		return nil, err
	}
	return &PressResult{SendID: mine.ID, PressedAt: mine.PressedAt}, nil
}

// reenqueueAfter is how long a press waits for the winner to finish enqueueing before it
// finishes the job itself.
const reenqueueAfter = 10 * time.Second

func prepareSummary(st *Status) string {
	if st.Campaign.State != StateResolved {
		return "state " + st.Campaign.State
	}
	if st.Campaign.Prepare == nil {
		return "prepare was not requested"
	}
	var full int
	for _, r := range st.Ready {
		if uint32(r.Recipients) == st.Campaign.Resolution.Recipients {
			full++
		}
	}
	return fmt.Sprintf("%d of %d workers ready", full, st.Campaign.Prepare.Workers)
}

func rangeCount(recipients uint32, want int) int {
	if recipients == 0 {
		return 0
	}
	return int(min(uint32(want), recipients))
}

// enqueueRanges puts the send's range messages on the FIFO queue. Deduplication IDs are
// campaign + range index, so a retry (or a second caller) within the queue's window is a
// no-op.
func (s *Service) enqueueRanges(ctx context.Context, id string, recipients uint32, snd *SendInfo) error {
	msgs := make([]OutMessage, 0, snd.Ranges)
	for i := 0; i < snd.Ranges; i++ {
		start := uint32(uint64(recipients) * uint64(i) / uint64(snd.Ranges))
		end := uint32(uint64(recipients) * uint64(i+1) / uint64(snd.Ranges))
		body, _ := json.Marshal(RangeMessage{Campaign: id, Send: snd.ID, PressedAt: snd.PressedAt.UnixNano(), Start: start, End: end})
		msgs = append(msgs, OutMessage{Body: body, GroupID: fmt.Sprintf("%s-r%d", id, i), DedupID: fmt.Sprintf("%s-r%d", id, i)})
	}
	if err := s.cfg.Ranges.Send(ctx, msgs); err != nil {
		return fmt.Errorf("campaign %s: enqueue ranges: %w", id, err)
	}
	return s.update(context.WithoutCancel(ctx), id, func(r *CampaignRecord) error {
		if r.Send != nil && r.Send.ID == snd.ID {
			r.Send.Enqueued = true
		}
		return nil
	})
}

func (s *Service) get(ctx context.Context, id string) (*CampaignRecord, error) {
	return GetCampaign(ctx, s.cfg.Records, id)
}

// GetCampaign reads a campaign record; an unknown ID wraps ErrNotFound.
func GetCampaign(ctx context.Context, records RecordStore, id string) (*CampaignRecord, error) {
	r, err := records.Get(ctx, campaignKey(id))
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("campaign %q: %w", id, ErrNotFound)
		}
		return nil, fmt.Errorf("campaign %s: %w", id, err)
	}
	var rec CampaignRecord
	if err := json.Unmarshal(r.Data, &rec); err != nil {
		return nil, fmt.Errorf("campaign %s: decode: %w", id, err)
	}
	rec.version = r.Version
	return &rec, nil
}

// ListCampaigns returns every campaign record.
func ListCampaigns(ctx context.Context, records RecordStore) ([]*CampaignRecord, error) {
	recs, err := records.List(ctx, "campaign/")
	if err != nil {
		return nil, fmt.Errorf("campaigns: list: %w", err)
	}
	out := make([]*CampaignRecord, 0, len(recs))
	for _, r := range recs {
		if strings.Contains(strings.TrimPrefix(r.Key, "campaign/"), "/") {
			continue
		}
		var rec CampaignRecord
		if err := json.Unmarshal(r.Data, &rec); err != nil {
			return nil, fmt.Errorf("campaigns: decode %s: %w", r.Key, err)
		}
		rec.version = r.Version
		out = append(out, &rec)
	}
	return out, nil
}

func (s *Service) put(ctx context.Context, rec *CampaignRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("campaign %s: encode: %w", rec.ID, err)
	}
	v, err := s.cfg.Records.CompareAndSwap(ctx, campaignKey(rec.ID), rec.version, data)
	if err != nil {
		return fmt.Errorf("campaign %s: %w", rec.ID, err)
	}
	rec.version = v
	return nil
}

// update applies fn to the current record under compare-and-set, retrying on conflict.
func (s *Service) update(ctx context.Context, id string, fn func(*CampaignRecord) error) error {
	for attempt := 0; ; attempt++ {
		rec, err := s.get(ctx, id)
		if err != nil {
			return err
		}
		if err := fn(rec); err != nil {
			return err
		}
		err = s.put(ctx, rec)
		if !errors.Is(err, ErrConflict) {
			return err
		}
		if attempt > 100 {
			return fmt.Errorf("campaign %s: too many concurrent updates: %w", id, err)
		}
	}
}

// List returns every campaign record.
func (s *Service) List(ctx context.Context) ([]*CampaignRecord, error) {
	return ListCampaigns(ctx, s.cfg.Records)
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
