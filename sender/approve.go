package sender

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// MaxApprovals bounds CampaignSpec.ApprovalsRequired.
const MaxApprovals = 10

// ErrForbidden is returned when the caller may not take an action on this campaign even
// though their role allows it in general: the creator approving their own campaign (the API
// answers 403).
var ErrForbidden = errors.New("forbidden")

// validateWorkflow checks the spec's approval and schedule fields (the time itself is
// checked against the clock at creation).
func (s *CampaignSpec) validateWorkflow() error {
	if s.ApprovalsRequired < 0 || s.ApprovalsRequired > MaxApprovals {
		return fieldErr("approvals_required", "%d: want 0 to %d", s.ApprovalsRequired, MaxApprovals)
	}
	if s.PrepareWorkers < 0 || s.PrepareWorkers > 10000 {
		return fieldErr("prepare_workers", "%d: want 0 (one) to 10000", s.PrepareWorkers)
	}
	return nil
}

// ApprovalStatus summarises where a campaign's approvals stand.
type ApprovalStatus struct {
	Required int `json:"required"`
	// Approved counts approvals of the current message version.
	Approved int `json:"approved"`
	// Missing is how many more approvals GO needs (0 when none).
	Missing int `json:"missing"`
	// By names the approvers of the current message version.
	By []string `json:"by,omitempty"`
	// Rejected is set when an approver rejected the campaign: GO is refused until the
	// message is edited.
	Rejected *Action `json:"rejected,omitempty"`
}

// ApprovalStatus returns where the campaign's approvals stand.
func (r *CampaignRecord) ApprovalStatus() ApprovalStatus {
	a := ApprovalStatus{Required: r.Spec.ApprovalsRequired, Approved: len(r.Approvals), Rejected: r.Rejection}
	for _, x := range r.Approvals {
		a.By = append(a.By, x.By)
	}
	a.Missing = max(a.Required-a.Approved, 0)
	return a
}

// approvedForGO returns nil when the campaign has every approval it needs and no
// rejection, else an error wrapping ErrNotReady that says what is missing.
func (r *CampaignRecord) approvedForGO() error {
	a := r.ApprovalStatus()
	if a.Rejected != nil {
		return fmt.Errorf("%w: campaign %s was rejected by %s (%s); edit the message to ask for approval again",
			ErrNotReady, r.ID, a.Rejected.By, a.Rejected.Detail)
	}
	if a.Missing > 0 {
		return fmt.Errorf("%w: campaign %s is missing %d of its %d approvals (%d given)", ErrNotReady, r.ID, a.Missing, a.Required, a.Approved)
	}
	return nil
}

// openForReview refuses actions on a campaign that was pressed or has ended.
func (r *CampaignRecord) openForReview() error {
	if r.Terminal() {
		return fmt.Errorf("%w: campaign %s is %s", ErrFinished, r.ID, r.State)
	}
	if r.Send != nil {
		return fmt.Errorf("%w: campaign %s was pressed at %s", ErrFinished, r.ID, r.Send.PressedAt.Format("2006-01-02T15:04:05Z07:00"))
	}
	return nil
}

// Approve records the caller's (ActorOf(ctx)) approval of the campaign's current message.
// The creator may not approve their own campaign (ErrForbidden); a rejected campaign must
// be edited first (ErrNotReady); unless ServiceConfig.ApproveWithoutTestPush is set, the
// approver must first have sent themselves a test push of the current message that a
// provider accepted (ErrNotReady). Approving twice is a no-op. A campaign pressed or ended
// is refused with ErrFinished.
func (s *Service) Approve(ctx context.Context, id string) (*CampaignRecord, error) {
	who := ActorOf(ctx)
	var out *CampaignRecord
	err := s.update(ctx, id, func(r *CampaignRecord) error {
		if err := r.openForReview(); err != nil {
			return err
		}
		if who == r.CreatedBy {
			return fmt.Errorf("%w: %s created campaign %s and may not approve it", ErrForbidden, who, id)
		}
		if r.Rejection != nil {
			return r.approvedForGO()
		}
		if slices.ContainsFunc(r.Approvals, func(a Action) bool { return a.By == who }) {
			out = r
			return errSkip // approved already
		}
		if !s.cfg.ApproveWithoutTestPush && !r.testedBy(who) {
			return fmt.Errorf("%w: %s has not sent themselves a test push of campaign %s's current message (version %d) that a provider accepted; POST /v1/campaigns/%s/test-push first",
				ErrNotReady, who, id, r.MessageVersion, id)
		}
		now := s.cfg.Now().UTC()
		r.Approvals = append(r.Approvals, Action{At: now, By: who, Action: "approve", Detail: fmt.Sprintf("message version %d", r.MessageVersion)})
		r.audit(now, who, "approve", fmt.Sprintf("%d of %d approvals", len(r.Approvals), r.Spec.ApprovalsRequired))
		out = r
		return nil
	})
	if errors.Is(err, errSkip) {
		err = nil
	}
	if err == nil {
		s.cfg.Log.Info("campaign approved", "campaign", id, "by", who, "approvals", len(out.Approvals), "required", out.Spec.ApprovalsRequired)
	}
	return out, err
}

// testedBy reports whether who sent themselves a test push of the current message that a
// provider accepted.
func (r *CampaignRecord) testedBy(who string) bool {
	return slices.ContainsFunc(r.TestPushes, func(t TestPushRecord) bool {
		return t.By == who && t.MessageVersion == r.MessageVersion && t.Accepted > 0
	})
}

// Reject records the caller's rejection with its reason: GO is refused until the message is
// edited, which clears it. A campaign pressed or ended is refused with ErrFinished.
func (s *Service) Reject(ctx context.Context, id, reason string) (*CampaignRecord, error) {
	who := ActorOf(ctx)
	if strings.TrimSpace(reason) == "" {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, fieldErr("reason", "required: say what must change"))
	}
	var out *CampaignRecord
	err := s.update(ctx, id, func(r *CampaignRecord) error {
		if err := r.openForReview(); err != nil {
			return err
		}
		now := s.cfg.Now().UTC()
		r.Rejection = &Action{At: now, By: who, Action: "reject", Detail: reason}
		r.audit(now, who, "reject", reason)
		out = r
		return nil
	})
	if err == nil {
		s.cfg.Log.Warn("campaign rejected", "campaign", id, "by", who, "reason", reason)
	}
	return out, err
}

// MessageEdit replaces a campaign's message before GO: the base message, and the messages
// of the variants it names (the others keep theirs). Names, percentages, the control group
// and which platforms each variant covers cannot change (they decided the resolution).
type MessageEdit struct {
	Message MessageSpec `json:"message"`
	// Variants maps a variant's name to its new message.
	Variants map[string]MessageSpec `json:"variants,omitempty"`
}

// EditMessage replaces the campaign's message, validated as at creation. An edit that
// changes anything voids the approvals and any rejection (the new message needs review),
// and send workers that hold the campaign follow it before GO is allowed again (their
// readiness names the message version). A campaign pressed or ended is refused with
// ErrFinished; an edit that would change which platforms a variant covers with ErrInvalid.
func (s *Service) EditMessage(ctx context.Context, id string, edit MessageEdit) (*CampaignRecord, error) {
	who := ActorOf(ctx)
	var out *CampaignRecord
	err := s.update(ctx, id, func(r *CampaignRecord) error {
		if err := r.openForReview(); err != nil {
			return err
		}
		spec := r.Spec
		spec.Message = edit.Message
		spec.Variants = slices.Clone(r.Spec.Variants)
		for name, m := range edit.Variants {
			i := slices.IndexFunc(spec.Variants, func(v VariantSpec) bool { return v.Name == name })
			if i < 0 {
				return fmt.Errorf("%w: %w", ErrInvalid, fieldErr("variants."+name, "campaign %s has no variant %q", id, name))
			}
			spec.Variants[i].Message = m
		}
		spec.SendAt = nil // checked against the clock at creation only
		if err := spec.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		spec.SendAt = r.Spec.SendAt
		for v, name := range r.Spec.VariantNames() {
			for _, p := range []Platform{PlatformIOS, PlatformAndroid} {
				if r.Spec.HasMessage(v, p) != spec.HasMessage(v, p) {
					return fmt.Errorf("%w: %w", ErrInvalid, fieldErr("message",
						"the edit changes whether variant %q has a %s message; the audience was resolved for the old platforms: create a new campaign", name, p))
				}
			}
		}
		if sameMessages(&r.Spec, &spec) {
			out = r
			return errSkip
		}
		now := s.cfg.Now().UTC()
		r.Spec = spec
		r.MessageVersion++
		detail := fmt.Sprintf("message version %d", r.MessageVersion)
		if n := len(r.Approvals); n > 0 {
			detail += fmt.Sprintf("; voided %d approvals", n)
		}
		if r.Rejection != nil {
			detail += "; cleared the rejection by " + r.Rejection.By
		}
		r.Approvals, r.Rejection = nil, nil
		r.audit(now, who, "edit-message", detail)
		out = r
		return nil
	})
	if errors.Is(err, errSkip) {
		err = nil
	}
	return out, err
}

// sameMessages reports whether two specs carry the same messages.
func sameMessages(a, b *CampaignSpec) bool {
	for v := range a.VariantNames() {
		x, _ := json.Marshal(a.variantMessage(v))
		y, _ := json.Marshal(b.variantMessage(v))
		if !bytes.Equal(x, y) {
			return false
		}
	}
	x, _ := json.Marshal(a.Message)
	y, _ := json.Marshal(b.Message)
	return bytes.Equal(x, y)
}
