package sender

import (
	"fmt"
	"time"
)

// template returns the batch template (platform and rendered message) of the segment that
// holds recipient i.
func (c *loaded) template(i uint32, pressedAt time.Time) (*Batch, error) {
	segs := c.manifest.Segments
	idx := c.manifest.SegmentIndex(i)
	if idx < 0 {
		return nil, fmt.Errorf("recipient %d is in no segment", i)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.rendered[idx]; t != nil {
		return t, nil
	}
	seg := segs[idx]
	t := &Batch{Campaign: c.manifest.Campaign, Platform: seg.Platform}
	var err error
	switch t.Platform {
	case PlatformIOS:
		t.APNs, err = c.spec.RenderAPNs(c.manifest.Campaign, seg.Variant, seg.App, pressedAt)
	case PlatformAndroid:
		t.FCM, err = c.spec.RenderFCM(c.manifest.Campaign, seg.Variant, seg.App)
	default:
		err = fmt.Errorf("segment %d: unknown platform %v", idx, seg.Platform)
	}
	if err != nil {
		return nil, err
	}
	c.rendered[idx] = t
	return t, nil
}

// variantMessage returns the message of variant i.
func (s *CampaignSpec) variantMessage(i int) MessageSpec {
	if len(s.Variants) == 0 {
		return s.Message
	}
	return s.Message.merge(s.Variants[i].Message)
}

// silentAPNsPayload is the payload of a silent push when the campaign gives none.
var silentAPNsPayload = []byte(`{"aps":{"content-available":1}}`)

// RenderAPNs builds the APNs request of variant for devices of app topic. The collapse ID
// is the campaign ID, so a duplicate delivery replaces rather than stacks on the device.
func (s *CampaignSpec) RenderAPNs(campaignID string, variant int, topic string, pressedAt time.Time) (*APNsMessage, error) {
	m := s.variantMessage(variant).APNs
	if m == nil {
		return nil, fmt.Errorf("campaign %s: variant %d has no apns message", campaignID, variant)
	}
	out := &APNsMessage{Topic: topic, PushType: "alert", Priority: 10, CollapseID: campaignID, Payload: m.Payload}
	if m.Topic != "" {
		out.Topic = m.Topic
	}
	if m.PushType != "" {
		out.PushType = m.PushType
	}
	if m.Priority != 0 {
		out.Priority = m.Priority
	}
	if s.Silent {
		out.PushType, out.Priority = "background", 5
		if len(out.Payload) == 0 {
			out.Payload = silentAPNsPayload
		}
	}
	if out.PushType == "background" {
		out.Priority = 5
	}
	if s.TTLSeconds > 0 {
		out.Expiration = pressedAt.Add(time.Duration(s.TTLSeconds) * time.Second)
	}
	if err := s.checkRehearsalAPNs(out); err != nil {
		return nil, fmt.Errorf("campaign %s: %w", campaignID, err)
	}
	return out, nil
}

// checkRehearsalAPNs is the send worker's own check of a rehearsal's rendered APNs message,
// whatever the API let through: a background push at priority 5 with a silent payload.
func (s *CampaignSpec) checkRehearsalAPNs(m *APNsMessage) error {
	if !s.Rehearsal {
		return nil
	}
	if m.PushType != "background" || m.Priority != 5 {
		return fmt.Errorf("rehearsal: refusing a visible push: apns push type %q, priority %d (want background, 5)", m.PushType, m.Priority)
	}
	if err := CheckSilentAPNsPayload(m.Payload); err != nil {
		return fmt.Errorf("rehearsal: refusing a visible push: apns payload: %w", err)
	}
	return nil
}

// RenderFCM builds the FCM message of variant for devices of project.
func (s *CampaignSpec) RenderFCM(campaignID string, variant int, project string) (*FCMMessage, error) {
	m := s.variantMessage(variant).FCM
	if m == nil {
		return nil, fmt.Errorf("campaign %s: variant %d has no fcm message", campaignID, variant)
	}
	out := &FCMMessage{Project: project, Title: m.Title, Body: m.Body, Data: m.Data,
		CollapseKey: campaignID, Priority: "high"}
	if m.Priority != "" {
		out.Priority = m.Priority
	}
	if s.Silent {
		out.Title, out.Body, out.Priority = "", "", "normal"
	}
	if s.TTLSeconds > 0 {
		out.TTL = time.Duration(s.TTLSeconds) * time.Second
	}
	if s.Rehearsal && (out.Title != "" || out.Body != "") {
		// The send worker's own check of a rehearsal, whatever the API let through.
		return nil, fmt.Errorf("campaign %s: rehearsal: refusing a visible push: fcm message has a title or body", campaignID)
	}
	return out, nil
}
