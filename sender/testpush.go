package sender

import (
	"context"
	"errors"
	"fmt"
)

// TestPushRecord is one test push as the campaign record keeps it.
type TestPushRecord struct {
	Action
	// MessageVersion is the message version that was sent.
	MessageVersion int `json:"message_version"`
	// Sent counts pushes made (one per variant and device of a platform the variant has a
	// message for); Accepted those a provider accepted.
	Sent     int `json:"sent"`
	Accepted int `json:"accepted"`
}

// maxTestPushes bounds the test pushes a record keeps (the latest).
const maxTestPushes = 50

// TestPushResult is the answer to one push of a test push.
type TestPushResult struct {
	Variant  string `json:"variant"`
	Platform string `json:"platform"`
	// Token is the end of the device token, enough to tell the caller's devices apart.
	Token      string `json:"token"`
	CollapseID string `json:"collapse_id"`
	Outcome    string `json:"outcome"`
	Status     int    `json:"status,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// TestPushReport answers a test push.
type TestPushReport struct {
	Campaign       string           `json:"campaign"`
	MessageVersion int              `json:"message_version"`
	UserID         string           `json:"user_id"`
	Devices        int              `json:"devices"`
	Sent           int              `json:"sent"`
	Accepted       int              `json:"accepted"`
	Results        []TestPushResult `json:"results"`
}

// TestPush sends the campaign's rendered message, every variant of it, to the devices the
// registry holds for userID (the caller's own entry, from the auth file), on the service's
// transports. It never counts toward the campaign: nothing goes through the queues, the
// ledger or the send's figures, and every variant goes out under a collapse ID of its own
// ("test-<random>-<variant>", never the campaign ID), so that it neither replaces nor is
// replaced by the real notification on the device. Transient answers are reported, not
// retried. The record keeps who sent which message version and how many were accepted
// (approvers must have one accepted before approving), and the audit log says so.
//
// It answers ErrNotReady when the service has no transports, userID is empty (the auth file
// gives the caller none) or not in the registry, or the caller's devices are of platforms
// the campaign has no message for.
func (s *Service) TestPush(ctx context.Context, id, userID string) (*TestPushReport, error) {
	who := ActorOf(ctx)
	if len(s.cfg.Transports) == 0 {
		return nil, fmt.Errorf("%w: this server has no push transports for test pushes (start it with --mock-ready or the provider flags)", ErrNotReady)
	}
	if userID == "" {
		return nil, fmt.Errorf("%w: the auth file gives %s no user_id: there is no device to send a test push to", ErrNotReady, who)
	}
	rec, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	devs, err := s.cfg.Registry.Devices(ctx, []string{userID})
	if err != nil {
		return nil, fmt.Errorf("test push: registry: %w", err)
	}
	if len(devs) != 1 || len(devs[0]) == 0 {
		return nil, fmt.Errorf("%w: user_id %q of %s has no device in the registry", ErrNotReady, userID, who)
	}
	rep := &TestPushReport{Campaign: id, MessageVersion: rec.MessageVersion, UserID: userID, Devices: len(devs[0])}
	stem := NewID("test-")
	for v, name := range rec.Spec.VariantNames() {
		collapse := fmt.Sprintf("%s-%d", stem, v)
		for _, d := range devs[0] {
			if !rec.Spec.HasMessage(v, d.Platform) || d.Token == "" {
				continue
			}
			res := TestPushResult{Variant: name, Platform: d.Platform.String(), Token: tokenTail(d.Token), CollapseID: collapse}
			r, err := s.testPushOne(ctx, &rec.Spec, id, v, d, collapse)
			switch {
			case err != nil:
				res.Outcome, res.Reason = "error", err.Error()
			default:
				res.Outcome, res.Status, res.Reason = r.Outcome.String(), r.Status, r.Reason
				if r.Outcome == Accepted {
					rep.Accepted++
				}
			}
			rep.Sent++
			rep.Results = append(rep.Results, res)
		}
	}
	if rep.Sent == 0 {
		return nil, fmt.Errorf("%w: campaign %s has no message for the platforms of %s's devices", ErrNotReady, id, who)
	}
	err = s.update(ctx, id, func(r *CampaignRecord) error {
		at := s.cfg.Now().UTC()
		r.TestPushes = append(r.TestPushes, TestPushRecord{Action: Action{At: at, By: who, Action: "test-push", Detail: userID},
			MessageVersion: rep.MessageVersion, Sent: rep.Sent, Accepted: rep.Accepted})
		if n := len(r.TestPushes); n > maxTestPushes {
			r.TestPushes = r.TestPushes[n-maxTestPushes:]
		}
		r.audit(at, who, "test-push", fmt.Sprintf("message version %d: %d of %d accepted on %d devices of %s",
			rep.MessageVersion, rep.Accepted, rep.Sent, rep.Devices, userID))
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.cfg.Log.Info("test push", "campaign", id, "by", who, "user_id", userID, "sent", rep.Sent, "accepted", rep.Accepted)
	return rep, nil
}

// testPushOne renders variant v for device d under collapse and pushes it.
func (s *Service) testPushOne(ctx context.Context, spec *CampaignSpec, id string, v int, d Device, collapse string) (Result, error) {
	tr := s.cfg.Transports[d.Platform]
	if tr == nil {
		return Result{}, fmt.Errorf("no %s transport on this server", d.Platform)
	}
	b := &Batch{Campaign: collapse, Platform: d.Platform, Tokens: [][]byte{[]byte(d.Token)}, Results: make([]Result, 1)}
	var err error
	switch d.Platform {
	case PlatformIOS:
		if b.APNs, err = spec.RenderAPNs(id, v, d.App, s.cfg.Now()); err == nil {
			b.APNs.CollapseID = collapse
		}
	case PlatformAndroid:
		if b.FCM, err = spec.RenderFCM(id, v, d.App); err == nil {
			b.FCM.CollapseKey = collapse
		}
	default:
		err = errors.New("unknown platform")
	}
	if err != nil {
		return Result{}, fmt.Errorf("render: %w", err)
	}
	if err := tr.Send(ctx, b); err != nil {
		return Result{}, fmt.Errorf("push: %w", err)
	}
	return b.Results[0], nil
}

// tokenTail returns "..." and the last 8 characters of a device token.
func tokenTail(tok string) string {
	if len(tok) <= 8 {
		return tok
	}
	return "..." + tok[len(tok)-8:]
}
