package sender

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"regexp"
	"strings"
	"time"
)

// Limits the providers enforce; a campaign that breaks one is refused at creation.
const (
	MaxAPNsPayload  = 4096 // bytes of the APNs JSON payload
	MaxFCMMessage   = 4096 // bytes of the FCM message's notification + data
	MaxCollapseID   = 64   // bytes of apns-collapse-id
	maxCampaignName = 200
	maxVariants     = 20
	// MaxTTL is the longest TTL a campaign may ask for: FCM keeps a message at most 28 days.
	MaxTTL = 28 * 24 * time.Hour
	// DefaultDeliveryDeadline is how long a send keeps trying transient failures when the
	// campaign does not say (and its TTL is longer or unset).
	DefaultDeliveryDeadline = 10 * time.Minute
	// MaxDeliveryDeadline bounds delivery_deadline_seconds.
	MaxDeliveryDeadline = 24 * time.Hour
	percentResolution   = 10000 // variant buckets: percentages with two decimals
)

// CampaignSpec is what a client posts to create a campaign.
type CampaignSpec struct {
	Name     string         `json:"name"`
	Audience AudienceSource `json:"audience"`
	// Message is sent to every recipient outside the control group when there are no
	// variants; with variants it is the base each variant's message overrides.
	Message MessageSpec `json:"message"`
	// Silent sends background pushes (APNs push type background, priority 5;
	// FCM data-only), as used for rehearsals against real phones.
	Silent bool `json:"silent,omitempty"`
	// TTLSeconds is how long the providers keep an undelivered notification; 0 = deliver
	// now or drop. At most 28 days.
	TTLSeconds int `json:"ttl_seconds,omitempty"`
	// DeliveryDeadlineSeconds is how long after the press a send keeps trying recipients
	// whose pushes failed transiently (429, 5xx, connection loss, an unreachable provider);
	// after it they are recorded failed and dead-lettered for a redrive. Default: the TTL
	// when set and shorter than 10 minutes, else 10 minutes; never more than the TTL.
	DeliveryDeadlineSeconds int `json:"delivery_deadline_seconds,omitempty"`
	// Variants split the audience for A/B tests; their percentages plus ControlPercent must
	// add up to 100. Assignment is deterministic per user.
	Variants []VariantSpec `json:"variants,omitempty"`
	// ControlPercent of the users receive nothing (a control group).
	ControlPercent float64 `json:"control_percent,omitempty"`

	// Rehearsal marks a game-day rehearsal against the real providers: nothing may show on a
	// screen. Creation refuses a rehearsal that is not Silent or whose messages would display
	// anything (CheckSilentAPNsPayload; FCM title or body), and every send worker checks the
	// rendered messages again on its own: a visible message of a rehearsal is failed and
	// dead-lettered, never pushed.
	Rehearsal bool `json:"rehearsal,omitempty"`

	// The operator's workflow (sender/approve.go, sender/schedule.go; docs/api.md).
	// ApprovalsRequired is how many approvers, none of them the creator, must approve the
	// campaign before GO (0 to MaxApprovals).
	ApprovalsRequired int `json:"approvals_required,omitempty"`
	// SendAt, when set, is when the service presses GO by itself (RFC 3339, in the future at
	// creation); the campaign is prepared ahead with PrepareWorkers send workers (default 1).
	SendAt         *time.Time `json:"send_at,omitempty"`
	PrepareWorkers int        `json:"prepare_workers,omitempty"`
}

// AudienceSource names the users of a campaign: inline IDs, or an object in the store.
type AudienceSource struct {
	UserIDs []string `json:"user_ids,omitempty"`
	// Object is the key of a CSV, NDJSON or JSON file in the object store.
	Object string `json:"object,omitempty"`
	// Format is "csv", "ndjson" or "json"; by default taken from the object's extension.
	Format string `json:"format,omitempty"`
}

// VariantSpec is one arm of an A/B test.
type VariantSpec struct {
	Name    string      `json:"name"`
	Percent float64     `json:"percent"`
	Message MessageSpec `json:"message"`
}

// MessageSpec is the content per platform. Empty fields of a variant inherit the base.
type MessageSpec struct {
	APNs *APNsSpec `json:"apns,omitempty"`
	FCM  *FCMSpec  `json:"fcm,omitempty"`
}

// APNsSpec is the APNs part of a message.
type APNsSpec struct {
	// Payload is the JSON payload ({"aps": {...}, ...}).
	Payload json.RawMessage `json:"payload,omitempty"`
	// PushType is "alert" (default) or "background"; Silent forces background.
	PushType string `json:"push_type,omitempty"`
	// Priority is 10 (default for alert) or 5 (forced for background).
	Priority int `json:"priority,omitempty"`
	// Topic overrides the device's app topic (bundle ID) from the registry.
	Topic string `json:"topic,omitempty"`
}

// FCMSpec is the FCM part of a message.
type FCMSpec struct {
	Title    string            `json:"title,omitempty"`
	Body     string            `json:"body,omitempty"`
	Data     map[string]string `json:"data,omitempty"`
	Priority string            `json:"priority,omitempty"` // "high" (default) or "normal"
}

var campaignIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidCampaignID reports whether id can name a campaign (it becomes the apns-collapse-id,
// the FCM collapse key and part of queue deduplication IDs).
func ValidCampaignID(id string) bool { return campaignIDPattern.MatchString(id) }

// FieldError is a validation error naming the offending field (or audience line).
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, a ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// Validate checks the spec and returns a *FieldError naming the first bad field.
func (s *CampaignSpec) Validate() error {
	if strings.TrimSpace(s.Name) == "" {
		return fieldErr("name", "required")
	}
	if len(s.Name) > maxCampaignName {
		return fieldErr("name", "longer than %d bytes", maxCampaignName)
	}
	a := s.Audience
	switch {
	case len(a.UserIDs) == 0 && a.Object == "":
		return fieldErr("audience", "give user_ids or object")
	case len(a.UserIDs) > 0 && a.Object != "":
		return fieldErr("audience", "give user_ids or object, not both")
	}
	if a.Format != "" {
		if _, err := parseAudienceFormat(a.Format); err != nil {
			return fieldErr("audience.format", "%v", err)
		}
	}
	for i, id := range a.UserIDs {
		if err := checkUserID(id); err != nil {
			return fieldErr(fmt.Sprintf("audience.user_ids[%d]", i), "%v", err)
		}
	}
	if s.TTLSeconds < 0 || time.Duration(s.TTLSeconds) > MaxTTL/time.Second {
		return fieldErr("ttl_seconds", "%d: want 0 to %d (28 days)", s.TTLSeconds, int(MaxTTL/time.Second))
	}
	if d := s.DeliveryDeadlineSeconds; d < 0 || time.Duration(d) > MaxDeliveryDeadline/time.Second {
		return fieldErr("delivery_deadline_seconds", "%d: want 0 (default) to %d (24 hours)", d, int(MaxDeliveryDeadline/time.Second))
	}
	if s.TTLSeconds > 0 && s.DeliveryDeadlineSeconds > s.TTLSeconds {
		return fieldErr("delivery_deadline_seconds", "%d is longer than ttl_seconds %d: a notification past its TTL is dropped by the provider anyway",
			s.DeliveryDeadlineSeconds, s.TTLSeconds)
	}
	if s.ControlPercent < 0 || s.ControlPercent > 100 || math.IsNaN(s.ControlPercent) {
		return fieldErr("control_percent", "must be between 0 and 100")
	}
	if err := s.Message.validate("message", s.Silent); err != nil {
		return err
	}
	if err := s.validateRehearsal(); err != nil {
		return err
	}
	if len(s.Variants) > maxVariants {
		return fieldErr("variants", "at most %d", maxVariants)
	}
	if len(s.Variants) > 0 {
		sum := s.ControlPercent
		seen := map[string]bool{}
		for i, v := range s.Variants {
			f := fmt.Sprintf("variants[%d]", i)
			if v.Name == "" || seen[v.Name] {
				return fieldErr(f+".name", "required and unique")
			}
			seen[v.Name] = true
			if v.Percent <= 0 || v.Percent > 100 || math.IsNaN(v.Percent) {
				return fieldErr(f+".percent", "must be above 0 and at most 100")
			}
			sum += v.Percent
			merged := s.Message.merge(v.Message)
			if err := merged.validate(f+".message", s.Silent); err != nil {
				return err
			}
		}
		if math.Abs(sum-100) > 1e-9 {
			return fieldErr("variants", "percentages plus control_percent add up to %g, want 100", sum)
		}
	}
	return s.validateWorkflow()
}

func (m MessageSpec) validate(field string, silent bool) error {
	if m.APNs == nil && m.FCM == nil {
		return fieldErr(field, "give apns and/or fcm")
	}
	if a := m.APNs; a != nil {
		if len(a.Payload) == 0 && !silent {
			return fieldErr(field+".apns.payload", "required")
		}
		if len(a.Payload) > 0 {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(a.Payload, &obj); err != nil {
				return fieldErr(field+".apns.payload", "not a JSON object: %v", err)
			}
		}
		if n := len(a.Payload); n > MaxAPNsPayload {
			return fieldErr(field+".apns.payload", "%d bytes exceeds the APNs limit of %d", n, MaxAPNsPayload)
		}
		switch a.PushType {
		case "", "alert", "background":
		default:
			return fieldErr(field+".apns.push_type", "%q: want alert or background", a.PushType)
		}
		if a.Priority != 0 && a.Priority != 5 && a.Priority != 10 {
			return fieldErr(field+".apns.priority", "%d: want 5 or 10", a.Priority)
		}
		if a.PushType == "background" && a.Priority == 10 {
			return fieldErr(field+".apns.priority", "background pushes need priority 5")
		}
	}
	if f := m.FCM; f != nil {
		switch f.Priority {
		case "", "high", "normal":
		default:
			return fieldErr(field+".fcm.priority", "%q: want high or normal", f.Priority)
		}
		if f.Title == "" && f.Body == "" && len(f.Data) == 0 {
			return fieldErr(field+".fcm", "give title/body or data")
		}
		if silent && len(f.Data) == 0 {
			return fieldErr(field+".fcm.data", "silent messages are data-only: give data")
		}
		size := len(f.Title) + len(f.Body)
		for k, v := range f.Data {
			size += len(k) + len(v)
		}
		if size > MaxFCMMessage {
			return fieldErr(field+".fcm", "%d bytes exceeds the FCM limit of %d", size, MaxFCMMessage)
		}
	}
	return nil
}

// validateRehearsal refuses a rehearsal that could display anything: it must be Silent, its
// APNs messages background pushes with a silent payload, its FCM messages data-only.
func (s *CampaignSpec) validateRehearsal() error {
	if !s.Rehearsal {
		return nil
	}
	if !s.Silent {
		return fieldErr("silent", "a rehearsal must be silent")
	}
	check := func(field string, m MessageSpec) error {
		if a := m.APNs; a != nil {
			if a.PushType != "" && a.PushType != "background" {
				return fieldErr(field+".apns.push_type", "%q: a rehearsal sends background pushes only", a.PushType)
			}
			if len(a.Payload) > 0 {
				if err := CheckSilentAPNsPayload(a.Payload); err != nil {
					return fieldErr(field+".apns.payload", "%v", err)
				}
			}
		}
		if f := m.FCM; f != nil {
			if f.Title != "" {
				return fieldErr(field+".fcm.title", "a rehearsal is data-only: no title")
			}
			if f.Body != "" {
				return fieldErr(field+".fcm.body", "a rehearsal is data-only: no body")
			}
		}
		return nil
	}
	if err := check("message", s.Message); err != nil {
		return err
	}
	for i, v := range s.Variants {
		if err := check(fmt.Sprintf("variants[%d].message", i), v.Message); err != nil {
			return err
		}
	}
	return nil
}

// CheckSilentAPNsPayload reports why an APNs payload would show something on a device, or
// nil when it is silent: a JSON object whose "aps" holds "content-available": 1 and no
// "alert", "sound" or "badge". A key given twice (in the payload or in "aps") is refused too,
// since a parser that keeps the first copy could read what this check did not. The error
// names the offending key (aps.alert, ...).
func CheckSilentAPNsPayload(payload []byte) error {
	top, err := uniqueKeys(payload)
	if err != nil {
		return err
	}
	raw, ok := top["aps"]
	if !ok {
		return errors.New("aps: required, with content-available 1")
	}
	aps, err := uniqueKeys(raw)
	if err != nil {
		return fmt.Errorf("aps: %w", err)
	}
	for _, k := range []string{"alert", "sound", "badge"} {
		if _, ok := aps[k]; ok {
			return fmt.Errorf("aps.%s: a silent push shows nothing", k)
		}
	}
	if ca := aps["content-available"]; string(ca) != "1" {
		return errors.New("aps.content-available: must be 1")
	}
	return nil
}

// uniqueKeys decodes a JSON object into its members, refusing anything else and keys given
// twice. Values are compacted.
func uniqueKeys(data []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("not a JSON object: %w", err)
		}
		k, _ := t.(string) // an object's tokens alternate key, value: keys are strings
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%s: given twice", k)
		}
		var c bytes.Buffer
		if err := json.Compact(&c, v); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = c.Bytes()
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("not a JSON object: data after it")
	}
	return out, nil
}

// DeliveryDeadline is how long after the press transient failures are tried again.
func (s *CampaignSpec) DeliveryDeadline() time.Duration {
	if s.DeliveryDeadlineSeconds > 0 {
		return time.Duration(s.DeliveryDeadlineSeconds) * time.Second
	}
	if ttl := time.Duration(s.TTLSeconds) * time.Second; ttl > 0 && ttl < DefaultDeliveryDeadline {
		return ttl
	}
	return DefaultDeliveryDeadline
}

// HasMessage reports whether variant v (Control: none) has a message for platform p.
func (s *CampaignSpec) HasMessage(v int, p Platform) bool {
	if v == Control {
		return false
	}
	m := s.variantMessage(v)
	switch p {
	case PlatformIOS:
		return m.APNs != nil
	case PlatformAndroid:
		return m.FCM != nil
	}
	return false
}

// MissingPlatforms names the platforms some variant has no message for: their devices are
// left out of the campaign at resolution (and counted).
func (s *CampaignSpec) MissingPlatforms() []string {
	var out []string
	for _, p := range []Platform{PlatformIOS, PlatformAndroid} {
		for v := range s.VariantNames() {
			if !s.HasMessage(v, p) {
				out = append(out, p.String())
				break
			}
		}
	}
	return out
}

// merge returns base with the parts v sets replaced.
func (m MessageSpec) merge(v MessageSpec) MessageSpec {
	if v.APNs != nil {
		m.APNs = v.APNs
	}
	if v.FCM != nil {
		m.FCM = v.FCM
	}
	return m
}

// Control is the variant index of the control group: its recipients get nothing.
const Control = -1

// Assign returns the variant index of a user (0..len(Variants)-1), or Control. It is
// deterministic: the same campaign and user always give the same answer.
func (s *CampaignSpec) Assign(campaignID, userID string) int {
	h := fnv.New64a()
	h.Write([]byte(campaignID))
	h.Write([]byte{0})
	h.Write([]byte(userID))
	bucket := float64(h.Sum64()%percentResolution) / (percentResolution / 100)
	if bucket < s.ControlPercent {
		return Control
	}
	if len(s.Variants) == 0 {
		return 0
	}
	acc := s.ControlPercent
	for i, v := range s.Variants {
		acc += v.Percent
		if bucket < acc {
			return i
		}
	}
	return len(s.Variants) - 1
}

// VariantNames returns the variant names by index ("default" without variants).
func (s *CampaignSpec) VariantNames() []string {
	if len(s.Variants) == 0 {
		return []string{"default"}
	}
	names := make([]string, len(s.Variants))
	for i, v := range s.Variants {
		names[i] = v.Name
	}
	return names
}
