package sender_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/salvopush/salvo/sender"
)

// rehearsalSpec is a valid rehearsal: silent, background APNs payload, data-only FCM.
func rehearsalSpec(ids []string) sender.CampaignSpec {
	return sender.CampaignSpec{Name: "rehearsal", Audience: sender.AudienceSource{UserIDs: ids}, Silent: true, Rehearsal: true,
		Message: sender.MessageSpec{APNs: &sender.APNsSpec{Payload: json.RawMessage(`{"aps":{"content-available":1},"r":"1"}`)},
			FCM: &sender.FCMSpec{Data: map[string]string{"rehearsal": "1"}}}}
}

func TestRehearsalValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		edit  func(*sender.CampaignSpec)
		field string // "" means valid
	}{
		// The base rehearsal is valid.
		{"valid", func(*sender.CampaignSpec) {}, ""},
		// A rehearsal must be silent.
		{"not silent", func(s *sender.CampaignSpec) { s.Silent = false }, "silent"},
		// An alert in the APNs payload would show.
		{"apns alert", func(s *sender.CampaignSpec) {
			s.Message.APNs.Payload = json.RawMessage(`{"aps":{"content-available":1,"alert":"hi"}}`)
		}, "message.apns.payload"},
		// A sound would play.
		{"apns sound", func(s *sender.CampaignSpec) {
			s.Message.APNs.Payload = json.RawMessage(`{"aps":{"content-available":1,"sound":"default"}}`)
		}, "message.apns.payload"},
		// A badge would change the icon.
		{"apns badge", func(s *sender.CampaignSpec) {
			s.Message.APNs.Payload = json.RawMessage(`{"aps":{"content-available":1,"badge":3}}`)
		}, "message.apns.payload"},
		// A silent push needs content-available 1.
		{"no content-available", func(s *sender.CampaignSpec) { s.Message.APNs.Payload = json.RawMessage(`{"aps":{}}`) }, "message.apns.payload"},
		// "aps" twice: a parser keeping the first copy would see the alert.
		{"aps twice", func(s *sender.CampaignSpec) {
			s.Message.APNs.Payload = json.RawMessage(`{"aps":{"alert":"hi"},"aps":{"content-available":1}}`)
		}, "message.apns.payload"},
		// An alert push type is refused even with a silent payload.
		{"alert push type", func(s *sender.CampaignSpec) { s.Message.APNs.PushType = "alert" }, "message.apns.push_type"},
		// An FCM title would show.
		{"fcm title", func(s *sender.CampaignSpec) { s.Message.FCM.Title = "hi" }, "message.fcm.title"},
		// So would an FCM body.
		{"fcm body", func(s *sender.CampaignSpec) { s.Message.FCM.Body = "hi" }, "message.fcm.body"},
		// A variant is checked like the base message.
		{"variant title", func(s *sender.CampaignSpec) {
			s.Variants = []sender.VariantSpec{{Name: "a", Percent: 100, Message: sender.MessageSpec{FCM: &sender.FCMSpec{Title: "x", Data: map[string]string{"k": "v"}}}}}
		}, "variants[0].message.fcm.title"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := rehearsalSpec([]string{"u1"})
			tc.edit(&s)
			err := s.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var fe *sender.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("Validate = %v, want an error naming %s", err, tc.field)
			}
		})
	}
}

func TestCheckSilentAPNsPayload(t *testing.T) {
	t.Parallel()
	tests := []struct {
		payload string
		silent  bool
	}{
		{`{"aps":{"content-available":1}}`, true},
		{`{"aps":{"content-available":1},"custom":{"alert":"not under aps: no display"}}`, true},
		{`{"aps":{"content-available":0}}`, false},
		{`{"aps":{"content-available":"1"}}`, false},
		{`{"aps":{"content-available":1,"alert":{"title":"x"}}}`, false},
		{`{"aps":{"content-available":1,"content-available":1}}`, false},
		{`{"aps":{"content-available":1}} {}`, false},
		{`[1]`, false},
		{`{}`, false},
		{`not json`, false},
	}
	for _, tc := range tests {
		err := sender.CheckSilentAPNsPayload([]byte(tc.payload))
		if (err == nil) != tc.silent {
			t.Errorf("CheckSilentAPNsPayload(%s) = %v, want silent %v", tc.payload, err, tc.silent)
		}
	}
}

// TestWorkerRefusesVisibleRehearsal: a rehearsal whose record was changed behind the API's
// back to show something is refused by the send worker itself at render time: its
// recipients are failed and dead-lettered, and nothing reaches the transport.
func TestWorkerRefusesVisibleRehearsal(t *testing.T) {
	t.Parallel()
	tr := newTransport(accept)
	r := newRig(t, tr, sender.RetryPolicy{})
	ctx := context.Background()
	if _, err := r.svc.Create(ctx, "c", rehearsalSpec(users(5))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "resolution", func() bool { return r.status(t, "c").Campaign.State == sender.StateResolved })
	// Behind the API's back: visible messages on both platforms, rehearsal still set.
	rec, err := r.records.Get(ctx, "campaign/c")
	if err != nil {
		t.Fatal(err)
	}
	var cr sender.CampaignRecord
	if err := json.Unmarshal(rec.Data, &cr); err != nil {
		t.Fatal(err)
	}
	cr.Spec.Silent = false
	cr.Spec.Message.APNs.Payload = json.RawMessage(`{"aps":{"alert":"visible"}}`)
	cr.Spec.Message.FCM.Title = "visible"
	data, _ := json.Marshal(cr)
	if _, err := r.records.CompareAndSwap(ctx, "campaign/c", rec.Version, data); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Prepare(ctx, "c", 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "prepare", func() bool { return r.status(t, "c").Prepared })
	if _, err := r.svc.Press(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	st := r.waitState(t, "c", sender.StateDoneWithFailures)
	if calls := tr.calls.Load(); calls != 0 {
		t.Fatalf("the transport was called %d times for a visible rehearsal", calls)
	}
	if res := st.Campaign.Result; res == nil || res.Failed != 10 || res.Accepted != 0 {
		t.Fatalf("result %+v, want all 10 recipients failed", st.Campaign.Result)
	}
	if n := r.deadLetters.Stats(); n.Visible+n.InFlight == 0 {
		t.Fatalf("no dead letter: %+v", n)
	}
}
