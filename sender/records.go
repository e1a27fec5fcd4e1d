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
	return decodeUnder(ctx, records, "campaign/", "campaigns", func(r *CampaignRecord, v int64) { r.version = v })
}

// decodeUnder decodes, in key order, every JSON record directly under prefix (not those
// further down, such as "campaign/x/..."), handing each its version through setVersion.
// what names the records in errors.
func decodeUnder[T any](ctx context.Context, records RecordStore, prefix, what string, setVersion func(*T, int64)) ([]*T, error) {
	recs, err := records.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("%s: list: %w", what, err)
	}
	out := make([]*T, 0, len(recs))
	for _, r := range recs {
		if strings.Contains(strings.TrimPrefix(r.Key, prefix), "/") {
			continue
		}
		v := new(T)
		if err := json.Unmarshal(r.Data, v); err != nil {
			return nil, fmt.Errorf("%s: decode %s: %w", what, r.Key, err)
		}
		setVersion(v, r.Version)
		out = append(out, v)
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

// Campaign states. A campaign moves resolving -> resolved -> sending -> one of the terminal
// states; a redrive takes a finished campaign back to sending. failed also ends a
// campaign whose audience could not be resolved.
const (
	StateResolving        = "resolving"          // accepted; resolution runs in the background
	StateResolved         = "resolved"           // shards and manifest written; prepare may start
	StateSending          = "sending"            // GO was pressed (exactly once)
	StateDone             = "done"               // every recipient accepted or rejected for good
	StateDoneWithFailures = "done_with_failures" // finished, some recipients given up on (dead-lettered)
	StateAborted          = "aborted"            // stopped by a person; what was not sent is counted
	StateFailed           = "failed"             // could not run (resolution failed); Error says why
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
	// Send is the GO press's send; Redrives are the sends of later redrives, in order.
	Send     *SendInfo  `json:"send,omitempty"`
	Redrives []SendInfo `json:"redrives,omitempty"`
	// Aborted says who stopped the campaign, when and why.
	Aborted *Action `json:"aborted,omitempty"`
	// Result holds the final counts, set when the campaign reaches a terminal state.
	Result *Outcomes `json:"result,omitempty"`
	// Audit lists every action taken on the campaign, oldest first.
	Audit []Action `json:"audit,omitempty"`

	// The operator's workflow (sender/approve.go, sender/schedule.go).
	// CreatedBy is who created the campaign (for a recurring rule's occurrence: the rule's
	// creator); they may not approve it.
	CreatedBy string `json:"created_by,omitempty"`
	// MessageVersion counts edits of the message (0: as created). Approvals, test pushes and
	// workers' readiness reports hold for the version they saw.
	MessageVersion int `json:"message_version,omitempty"`
	// Approvals of the current message version, oldest first; an edit voids them.
	Approvals []Action `json:"approvals,omitempty"`
	// Rejection, when set, blocks GO until the message is edited.
	Rejection *Action `json:"rejection,omitempty"`
	// TestPushes are the latest test pushes sent to their callers' own devices.
	TestPushes []TestPushRecord `json:"test_pushes,omitempty"`
	// Schedule is set for a campaign that is pressed at a time (SendAt) rather than by hand.
	Schedule *ScheduleStatus `json:"schedule,omitempty"`

	version int64
}

// Terminal reports whether the campaign has ended (done, done_with_failures, aborted or
// failed).
func (r *CampaignRecord) Terminal() bool {
	switch r.State {
	case StateDone, StateDoneWithFailures, StateAborted, StateFailed:
		return true
	}
	return false
}

// Sends returns the campaign's sends: the GO press's and every redrive's, in order.
func (r *CampaignRecord) Sends() []SendInfo {
	var out []SendInfo
	if r.Send != nil {
		out = append(out, *r.Send)
	}
	return append(out, r.Redrives...)
}

// Action is one entry of a campaign's audit log.
type Action struct {
	At     time.Time `json:"at"`
	By     string    `json:"by"`     // the user (from the auth file) or "system"
	Action string    `json:"action"` // create, prepare, go, abort, redrive, finish, ...
	Detail string    `json:"detail,omitempty"`
}

// Outcomes are a finished campaign's counts, from the ledger.
type Outcomes struct {
	FinishedAt time.Time `json:"finished_at"`
	Recipients int64     `json:"recipients"`
	Accepted   int64     `json:"accepted"`
	Rejected   int64     `json:"rejected"`
	// Failed were given up on and are on the dead-letter queue until a redrive.
	Failed int64 `json:"failed"`
	// Unsent were never pushed (the campaign was aborted first).
	Unsent int64 `json:"unsent"`
	// Repeated counts accepted recipients pushed again and accepted again, as far as the
	// ledger saw (LedgerCounts.Repeated) when the campaign finished.
	Repeated int64 `json:"repeated"`
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
	// NoMessage counts devices left out by platform because the user's variant has no
	// message for it; NoMessageSample names some of those users.
	NoMessage       map[string]int `json:"no_message,omitempty"`
	NoMessageSample []string       `json:"no_message_sample,omitempty"`
	FinishedAt      *time.Time     `json:"finished_at,omitempty"`
}

// PrepareRequest asks workers to preload the campaign.
type PrepareRequest struct {
	RequestedAt time.Time `json:"requested_at"`
	// Workers is how many send workers must report ready before GO is allowed.
	Workers int `json:"workers"`
}

// SendInfo is one send of a campaign: set once by the GO press that wins, or by a redrive.
type SendInfo struct {
	ID        string    `json:"id"`
	PressedAt time.Time `json:"pressed_at"`
	// Deadline is when the send stops trying transient failures again.
	Deadline time.Time `json:"deadline"`
	Ranges   int       `json:"ranges"`
	// Enqueued is true once every range message is on the queue.
	Enqueued bool `json:"enqueued"`
	// Redrive is 0 for the GO press's send and n for the n-th redrive.
	Redrive int `json:"redrive,omitempty"`
}

// Readiness is what a send worker reports once it holds a campaign in memory.
type Readiness struct {
	Worker        string    `json:"worker"`
	Recipients    int       `json:"recipients"`
	ResidentBytes int64     `json:"resident_bytes"`
	LoadMillis    int64     `json:"load_ms"`
	ReadyAt       time.Time `json:"ready_at"`
	// MessageVersion is the campaign's message version the worker holds: a worker that
	// holds an older one is not ready for GO until it has followed the edit.
	MessageVersion int `json:"message_version,omitempty"`
}

// readyFor reports whether rd holds every recipient of rec and its current message.
func readyFor(rec *CampaignRecord, rd Readiness) bool {
	return uint32(rd.Recipients) == rec.Resolution.Recipients && rd.MessageVersion == rec.MessageVersion
}

// Errors a caller can branch on (the API maps them to status codes).
var (
	ErrNotReady = errors.New("not ready")     // 409: GO before prepare is complete, prepare before resolution
	ErrInvalid  = errors.New("invalid input") // 400
	ErrFinished = errors.New("finished")      // 409: the campaign has ended (or has nothing to redrive)
)

// AudienceKey is where a campaign's inline user IDs are kept (a JSON array), so that a
// resolution cut short by a restart can run again.
func AudienceKey(campaign string) string { return "campaigns/" + campaign + "/audience.json" }

// maxAudit bounds a record's audit log; older entries beyond it are dropped (the first,
// create, is kept).
const maxAudit = 200

// audit appends an action to the record's audit log.
func (r *CampaignRecord) audit(at time.Time, by, action, detail string) {
	r.Audit = append(r.Audit, Action{At: at.UTC(), By: by, Action: action, Detail: detail})
	if len(r.Audit) > maxAudit {
		r.Audit = append(r.Audit[:1], r.Audit[len(r.Audit)-maxAudit+1:]...)
	}
}

type actorKey struct{}

// WithActor returns ctx carrying the name of who acts (the authenticated user), which the
// service writes into campaigns' audit logs.
func WithActor(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, actorKey{}, name)
}

// ActorOf returns the name WithActor put in ctx, or "anonymous".
func ActorOf(ctx context.Context) string {
	if v, ok := ctx.Value(actorKey{}).(string); ok && v != "" {
		return v
	}
	return "anonymous"
}
