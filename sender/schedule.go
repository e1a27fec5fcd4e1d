package sender

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/salvopush/salvo/sender/cron"
)

// Schedule states of a campaign with a send time.
const (
	ScheduleWaiting   = "waiting"   // its time has not come, or it is due and not yet pressable
	SchedulePressed   = "pressed"   // GO was pressed (by the scheduler or by hand)
	ScheduleMissed    = "missed"    // it could not be pressed within ScheduleGrace of its time
	ScheduleCancelled = "cancelled" // cancelled before its time: the campaign is aborted
)

// ScheduleStatus is where a scheduled campaign stands.
type ScheduleStatus struct {
	SendAt time.Time `json:"send_at"`
	State  string    `json:"state"`
	// Note says why a campaign whose time has come is not pressed yet (approvals missing,
	// workers not ready...).
	Note string `json:"note,omitempty"`
	// Rule names the recurring rule whose occurrence this campaign is.
	Rule string `json:"rule,omitempty"`
}

// origin is where a campaign comes from: a person, or an occurrence of a recurring rule.
type origin struct {
	createdBy string
	rule      string
}

// apply sets the record's workflow fields from its origin and spec, and returns the create
// action's audit detail.
func (o origin) apply(r *CampaignRecord) string {
	r.CreatedBy = o.createdBy
	if r.Spec.SendAt == nil {
		return ""
	}
	at := r.Spec.SendAt.UTC()
	r.Spec.SendAt = &at
	r.Schedule = &ScheduleStatus{SendAt: at, State: ScheduleWaiting, Rule: o.rule}
	if o.rule != "" {
		return fmt.Sprintf("occurrence of rule %s (by %s), send at %s", o.rule, o.createdBy, at.Format(time.RFC3339))
	}
	return "send at " + at.Format(time.RFC3339)
}

// maxScheduleAhead bounds how far ahead a send may be scheduled.
const maxScheduleAhead = 366 * 24 * time.Hour

// checkSendAt refuses a send time that has passed or is more than a year away.
func (s *Service) checkSendAt(at *time.Time) error {
	if at == nil {
		return nil
	}
	now := s.cfg.Now()
	switch {
	case !at.After(now):
		return fmt.Errorf("%w: %w", ErrInvalid, fieldErr("send_at", "%s has passed (now %s)", at.Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
	case at.Sub(now) > maxScheduleAhead:
		return fmt.Errorf("%w: %w", ErrInvalid, fieldErr("send_at", "%s is more than a year away", at.Format(time.RFC3339)))
	}
	return nil
}

func (c *ServiceConfig) scheduleDefaults() {
	if c.ScheduleAhead <= 0 {
		c.ScheduleAhead = 10 * time.Minute
	}
	if c.ScheduleGrace <= 0 {
		c.ScheduleGrace = 5 * time.Minute
	}
	if c.ScheduleRefresh <= 0 {
		c.ScheduleRefresh = 5 * time.Second
	}
}

// kickScheduler wakes the scheduler loop to read the campaigns now.
func (s *Service) kickScheduler() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// dueRetry is how soon the scheduler tries again to press a campaign whose time has come
// but that cannot be pressed yet, or to prepare one that is still resolving.
const dueRetry = 250 * time.Millisecond

// scheduleLoop runs ScheduleOnce at the times it names (a campaign's send time, its prepare
// time), at least every ScheduleRefresh, and when a scheduled campaign is created here.
func (s *Service) scheduleLoop(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
		next, err := s.ScheduleOnce(ctx)
		if err != nil && ctx.Err() == nil {
			s.cfg.Log.Warn("scheduler", "err", err)
		}
		wait := s.cfg.ScheduleRefresh
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(s.cfg.Now()), 0))
		}
		t.Reset(wait)
	}
}

// ScheduleOnce is one look of the scheduler (the loop calls it; tests call it with their
// own clock). It prepares scheduled campaigns ScheduleAhead before their time, presses the
// ones whose time has come with the same compare-and-set as GO (so that of several API
// processes exactly one press starts the send), marks missed the ones that could not be
// pressed within ScheduleGrace, and creates the occurrences of recurring rules that fall
// within ScheduleAhead. It returns the earliest time it wants to look again (zero: none
// known).
func (s *Service) ScheduleOnce(ctx context.Context) (time.Time, error) {
	sctx := WithActor(ctx, "scheduler")
	now := s.cfg.Now()
	var next time.Time
	soon := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	recs, err := ListCampaigns(ctx, s.cfg.Records)
	if err != nil {
		return time.Time{}, err
	}
	exists := make(map[string]bool, len(recs))
	for _, r := range recs {
		exists[r.ID] = true
		sc := r.Schedule
		if sc == nil || sc.State != ScheduleWaiting || r.Terminal() || r.Send != nil {
			continue
		}
		if r.Prepare == nil {
			prepareAt := sc.SendAt.Add(-s.cfg.ScheduleAhead)
			switch {
			case now.Before(prepareAt):
				soon(prepareAt)
			case r.State == StateResolved:
				if _, err := s.Prepare(sctx, r.ID, max(r.Spec.PrepareWorkers, 1)); err != nil {
					s.cfg.Log.Warn("scheduler: prepare", "campaign", r.ID, "err", err)
				}
			default:
				soon(now.Add(dueRetry)) // still resolving
			}
		}
		switch {
		case now.Before(sc.SendAt):
			soon(sc.SendAt)
		case now.Sub(sc.SendAt) > s.cfg.ScheduleGrace:
			s.scheduleMissed(sctx, r.ID)
		default:
			s.pressDue(sctx, r, now)
			soon(now.Add(dueRetry))
		}
	}
	rules, err := s.ListRules(ctx)
	if err != nil {
		return next, err
	}
	for _, rl := range rules {
		if t := s.occurrences(sctx, rl, now, exists); !t.IsZero() {
			soon(t)
		}
	}
	return next, nil
}

// pressDue presses a scheduled campaign whose time has come; when it cannot be pressed yet
// the record's schedule note says why.
func (s *Service) pressDue(ctx context.Context, r *CampaignRecord, now time.Time) {
	res, err := s.Press(ctx, r.ID)
	switch {
	case err == nil && !res.AlreadyPressed:
		s.cfg.Log.Info("scheduled GO", "campaign", r.ID, "send", res.SendID, "send_at", r.Schedule.SendAt,
			"late", res.PressedAt.Sub(r.Schedule.SendAt))
	case err == nil:
	case errors.Is(err, ErrNotReady):
		note := "due, not pressed yet: " + err.Error()
		if r.Schedule.Note != note {
			s.cfg.Log.Warn("scheduled campaign due but not pressable", "campaign", r.ID, "why", err)
			_ = s.update(ctx, r.ID, func(x *CampaignRecord) error {
				if x.Schedule == nil || x.Schedule.State != ScheduleWaiting || x.Schedule.Note == note {
					return errSkip
				}
				x.Schedule.Note = note
				return nil
			})
		}
	default:
		s.cfg.Log.Warn("scheduler: press", "campaign", r.ID, "err", err)
	}
}

// scheduleMissed marks a scheduled campaign missed: its time is more than ScheduleGrace
// past and it could not be pressed. It stays as it is otherwise (an operator may press GO
// by hand, or abort it).
func (s *Service) scheduleMissed(ctx context.Context, id string) {
	err := s.update(ctx, id, func(r *CampaignRecord) error {
		if r.Schedule == nil || r.Schedule.State != ScheduleWaiting || r.Send != nil {
			return errSkip
		}
		r.Schedule.State = ScheduleMissed
		r.audit(s.cfg.Now(), ActorOf(ctx), "schedule-missed", fmt.Sprintf("not pressable within %s of %s: %s",
			s.cfg.ScheduleGrace, r.Schedule.SendAt.Format(time.RFC3339), r.Schedule.Note))
		return nil
	})
	if err == nil {
		s.cfg.Log.Error("scheduled campaign missed its time", "campaign", id)
	}
}

// Cancel cancels a scheduled campaign before its time: its schedule is cancelled and the
// campaign aborted (nothing is sent). Cancel and the scheduler's press are compare-and-sets
// on the same record, so exactly one of them wins. A campaign without a schedule, or
// already pressed or ended, is refused with ErrFinished.
func (s *Service) Cancel(ctx context.Context, id, reason string) (*CampaignRecord, error) {
	var out *CampaignRecord
	err := s.update(ctx, id, func(r *CampaignRecord) error {
		if r.Schedule == nil {
			return fmt.Errorf("%w: campaign %s has no send time to cancel; abort it instead", ErrFinished, id)
		}
		if err := r.openForReview(); err != nil {
			return err
		}
		r.Schedule.State, r.Schedule.Note = ScheduleCancelled, ""
		detail := "schedule cancelled"
		if reason != "" {
			detail += ": " + reason
		}
		r.stop(s.cfg.Now(), ActorOf(ctx), "cancel", detail)
		out = r
		return nil
	})
	if err == nil {
		s.cfg.Log.Warn("scheduled campaign cancelled", "campaign", id, "by", ActorOf(ctx), "reason", reason)
	}
	return out, err
}

// RuleSpec is what a client posts to create a recurring rule: a cron expression, its time
// zone, and the campaign each occurrence creates (its audience is read again, and resolved
// against the registry again, for every occurrence).
type RuleSpec struct {
	// ID names the rule ([A-Za-z0-9_-], at most 48 bytes); its occurrences are the campaigns
	// "<id>-<yyyymmddThhmm>" (UTC), so that each occurrence is created once however many API
	// processes run the scheduler.
	ID string `json:"id"`
	// Cron is a five-field expression (sender/cron), in TimeZone (an IANA name; default UTC).
	Cron     string `json:"cron"`
	TimeZone string `json:"time_zone,omitempty"`
	// Campaign is the spec of every occurrence; send_at is set by the rule.
	Campaign CampaignSpec `json:"campaign"`
}

// Rule is a stored recurring rule.
type Rule struct {
	RuleSpec
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	// Cancelled, when set, says who stopped the rule: it creates no more occurrences.
	Cancelled *Action `json:"cancelled,omitempty"`
	// LastCampaign is the latest occurrence created; LastError why the latest attempt to
	// create one failed (an audience object missing, say), cleared by the next success.
	LastCampaign string `json:"last_campaign,omitempty"`
	LastError    string `json:"last_error,omitempty"`
	// Next is the next occurrence (computed when read, not stored).
	Next *time.Time `json:"next,omitempty"`
}

// maxRuleID bounds a rule's ID so that its occurrences' IDs fit the 64 bytes of a campaign
// ID.
const maxRuleID = 48

func ruleKey(id string) string { return "rule/" + id }

// OccurrenceID is the campaign ID of rule's occurrence at t.
func OccurrenceID(rule string, t time.Time) string {
	return rule + "-" + t.UTC().Format("20060102T1504")
}

// parse returns the rule's schedule and location; the error names the field.
func (rs *RuleSpec) parse() (*cron.Schedule, *time.Location, error) {
	sched, err := cron.Parse(rs.Cron)
	if err != nil {
		return nil, nil, fieldErr("cron", "%v", err)
	}
	loc := time.UTC
	if rs.TimeZone != "" {
		if loc, err = time.LoadLocation(rs.TimeZone); err != nil {
			return nil, nil, fieldErr("time_zone", "%q: %v", rs.TimeZone, err)
		}
	}
	return sched, loc, nil
}

// validate checks a rule spec; the error names the field.
func (rs *RuleSpec) validate(now time.Time) error {
	if !ValidCampaignID(rs.ID) || len(rs.ID) > maxRuleID {
		return fieldErr("id", "%q: want 1-%d of [A-Za-z0-9_-]", rs.ID, maxRuleID)
	}
	sched, loc, err := rs.parse()
	if err != nil {
		return err
	}
	if sched.Next(now.In(loc)).IsZero() {
		return fieldErr("cron", "%q never occurs", rs.Cron)
	}
	if rs.Campaign.SendAt != nil {
		return fieldErr("campaign.send_at", "set by the rule for each occurrence; leave it out")
	}
	if len(rs.Campaign.Name) > maxCampaignName-len(" 2006-01-02 15:04 UTC") {
		return fieldErr("campaign.name", "longer than %d bytes (each occurrence adds its time)", maxCampaignName-len(" 2006-01-02 15:04 UTC"))
	}
	if err := rs.Campaign.Validate(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return fieldErr("campaign."+fe.Field, "%s", fe.Msg)
		}
		return err
	}
	if key := rs.Campaign.Audience.Object; key != "" {
		if _, err := AudienceFormatOf(key, rs.Campaign.Audience.Format); err != nil {
			return fieldErr("campaign.audience.format", "%v", err)
		}
	}
	return nil
}

// CreateRule stores a recurring rule; the scheduler creates its occurrences from the next
// one on (never one before the rule existed). A rule ID in use is refused (ErrInvalid).
func (s *Service) CreateRule(ctx context.Context, spec RuleSpec) (*Rule, error) {
	now := s.cfg.Now()
	if err := spec.validate(now); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	rl := &Rule{RuleSpec: spec, CreatedAt: now.UTC(), CreatedBy: ActorOf(ctx)}
	data, err := json.Marshal(rl)
	if err != nil {
		return nil, fmt.Errorf("rule %s: encode: %w", spec.ID, err)
	}
	if _, err := s.cfg.Records.CompareAndSwap(ctx, ruleKey(spec.ID), 0, data); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, fieldErr("id", "rule %q exists", spec.ID))
		}
		return nil, fmt.Errorf("rule %s: %w", spec.ID, err)
	}
	s.cfg.Log.Info("recurring rule created", "rule", spec.ID, "cron", spec.Cron, "time_zone", spec.TimeZone, "by", rl.CreatedBy)
	rl.setNext(now)
	s.kickScheduler()
	return rl, nil
}

// setNext fills Next with the rule's next occurrence after now.
func (rl *Rule) setNext(now time.Time) {
	rl.Next = nil
	if rl.Cancelled != nil {
		return
	}
	if sched, loc, err := rl.parse(); err == nil {
		if t := sched.Next(now.In(loc)); !t.IsZero() {
			t = t.UTC()
			rl.Next = &t
		}
	}
}

// ListRules returns every recurring rule, cancelled ones included, with its next
// occurrence.
func (s *Service) ListRules(ctx context.Context) ([]*Rule, error) {
	now := s.cfg.Now()
	return decodeUnder(ctx, s.cfg.Records, "rule/", "rules", func(rl *Rule, _ int64) { rl.setNext(now) })
}

// updateRule applies fn to the stored rule under compare-and-set, retrying on conflict; an
// unknown rule wraps ErrNotFound.
func (s *Service) updateRule(ctx context.Context, id string, fn func(*Rule) error) (*Rule, error) {
	for attempt := 0; ; attempt++ {
		r, err := s.cfg.Records.Get(ctx, ruleKey(id))
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("rule %q: %w", id, ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("rule %s: %w", id, err)
		}
		var rl Rule
		if err := json.Unmarshal(r.Data, &rl); err != nil {
			return nil, fmt.Errorf("rule %s: decode: %w", id, err)
		}
		if err := fn(&rl); err != nil {
			return nil, err
		}
		data, err := json.Marshal(&rl)
		if err != nil {
			return nil, fmt.Errorf("rule %s: encode: %w", id, err)
		}
		_, err = s.cfg.Records.CompareAndSwap(ctx, ruleKey(id), r.Version, data)
		if err == nil {
			rl.setNext(s.cfg.Now())
			return &rl, nil
		}
		if !errors.Is(err, ErrConflict) || attempt > 100 {
			return nil, fmt.Errorf("rule %s: %w", id, err)
		}
	}
}

// CancelRule stops a recurring rule: it creates no more occurrences. Occurrences already
// created keep their schedule (cancel them one by one). Cancelling twice is a no-op.
func (s *Service) CancelRule(ctx context.Context, id, reason string) (*Rule, error) {
	rl, err := s.updateRule(ctx, id, func(rl *Rule) error {
		if rl.Cancelled != nil {
			return errSkip
		}
		rl.Cancelled = &Action{At: s.cfg.Now().UTC(), By: ActorOf(ctx), Action: "cancel", Detail: reason}
		return nil
	})
	if errors.Is(err, errSkip) {
		return s.rule(ctx, id)
	}
	if err == nil {
		s.cfg.Log.Info("recurring rule cancelled", "rule", id, "by", ActorOf(ctx), "reason", reason)
	}
	return rl, err
}

// rule reads one rule.
func (s *Service) rule(ctx context.Context, id string) (*Rule, error) {
	rules, err := s.ListRules(ctx)
	if err != nil {
		return nil, err
	}
	for _, rl := range rules {
		if rl.ID == id {
			return rl, nil
		}
	}
	return nil, fmt.Errorf("rule %q: %w", id, ErrNotFound)
}

// maxOccurrencesPerLook bounds the occurrences one look of the scheduler creates per rule.
const maxOccurrencesPerLook = 10

// occurrences creates the campaigns of rl's occurrences from ScheduleGrace ago (never
// before the rule was created) to ScheduleAhead from now that exist not yet, and returns
// when the next one is due to be created. Their IDs are deterministic, and a campaign is
// created by a compare-and-set that only one process wins, so that every occurrence is
// created exactly once.
func (s *Service) occurrences(ctx context.Context, rl *Rule, now time.Time, exists map[string]bool) time.Time {
	if rl.Cancelled != nil {
		return time.Time{}
	}
	sched, loc, err := rl.parse()
	if err != nil {
		return time.Time{}
	}
	from := now.Add(-s.cfg.ScheduleGrace)
	if rl.CreatedAt.After(from) {
		from = rl.CreatedAt
	}
	created := 0
	for t := sched.Next(from.In(loc)); !t.IsZero(); t = sched.Next(t) {
		if t.Sub(now) > s.cfg.ScheduleAhead {
			return t.Add(-s.cfg.ScheduleAhead)
		}
		id := OccurrenceID(rl.ID, t)
		if exists[id] {
			continue
		}
		if created == maxOccurrencesPerLook {
			return now.Add(dueRetry)
		}
		created++
		s.occur(ctx, rl, t, id)
	}
	return time.Time{}
}

// occur creates the campaign of rl's occurrence at t, reading its audience now.
func (s *Service) occur(ctx context.Context, rl *Rule, t time.Time, id string) {
	spec := rl.Campaign
	at := t.UTC()
	spec.SendAt = &at
	spec.Name = rl.Campaign.Name + " " + t.Format("2006-01-02 15:04 MST")
	_, err := s.create(ctx, id, spec, origin{createdBy: rl.CreatedBy, rule: rl.ID})
	var fe *FieldError
	if errors.As(err, &fe) && fe.Field == "id" && strings.HasSuffix(fe.Msg, "exists") {
		return // another process created it first
	}
	msg := ""
	if err != nil {
		msg = fmt.Sprintf("occurrence %s: %v", at.Format(time.RFC3339), err)
		s.cfg.Log.Error("recurring rule: occurrence not created", "rule", rl.ID, "campaign", id, "err", err)
	} else {
		s.cfg.Log.Info("recurring rule: occurrence created", "rule", rl.ID, "campaign", id, "send_at", at)
	}
	_, _ = s.updateRule(ctx, rl.ID, func(x *Rule) error {
		if x.LastError == msg && (err != nil || x.LastCampaign == id) {
			return errSkip
		}
		x.LastError = msg
		if err == nil {
			x.LastCampaign = id
		}
		return nil
	})
}
