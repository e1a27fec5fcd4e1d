package sender

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

func campaignKey(id string) string { return "campaign/" + id }

// ReadinessPrefix is the record prefix of a campaign's readiness reports.
func ReadinessPrefix(id string) string { return "ready/" + id + "/" }

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
