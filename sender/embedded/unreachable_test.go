package embedded_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/salvopush/salvo/loadgen"
	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/burst"
	"github.com/salvopush/salvo/sender/diskregistry"
	"github.com/salvopush/salvo/sender/embedded"
)

// TestUnreachableProviderFailsAtDeadline: with both providers refusing connections from
// the press on, every recipient is tried until the delivery deadline, then recorded failed
// with the reason and dead-lettered; the campaign ends done_with_failures, not sending
// forever, and the stall is visible meanwhile.
func TestUnreachableProviderFailsAtDeadline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	spec := loadgen.RegistrySpec{Users: 3000, IOSShare: 0.5, Seed: 3}
	if _, err := loadgen.WriteRegistry(ctx, spec, filepath.Join(dir, "registry")); err != nil {
		t.Fatal(err)
	}
	reg, err := diskregistry.Open(filepath.Join(dir, "registry"))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	cfg := mockpush.DefaultConfig()
	cfg.Dir = filepath.Join(dir, "mock")
	mock, err := mockpush.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := mock.Ready()
	at, err := burst.NewAPNs(burst.APNsConfig{URL: r.APNsURL, KeyFile: r.APNsKeyFile, KeyID: r.APNsKeyID, TeamID: r.APNsTeamID, CAFile: r.CAFile, Connections: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer at.Close()
	ft, err := burst.NewFCM(ctx, burst.FCMConfig{Endpoint: r.FCMURL, ServiceAccountFile: r.FCMServiceAccountFile, ProjectID: r.FCMProjectID, CAFile: r.CAFile, Connections: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ft.Close()
	mock.Close() // nothing listens there any more: every dial is refused
	sys, err := embedded.Start(ctx, embedded.Config{Dir: filepath.Join(dir, "state"), Registry: reg, Send: 16,
		Transports: map[sender.Platform]sender.Transport{sender.PlatformIOS: at, sender.PlatformAndroid: ft},
		Retry:      sender.RetryPolicy{Base: 20 * time.Millisecond, Max: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	c := sys.Client()
	var users []string
	if err := reg.Each(ctx, func(u string, _ []sender.Device) error { users = append(users, u); return nil }); err != nil {
		t.Fatal(err)
	}
	s := sender.CampaignSpec{Name: "unreachable", Silent: true, DeliveryDeadlineSeconds: 3,
		Audience: sender.AudienceSource{UserIDs: users},
		Message:  sender.MessageSpec{APNs: &sender.APNsSpec{}, FCM: &sender.FCMSpec{Data: map[string]string{"k": "v"}}}}
	if _, err := c.Create(ctx, "u", s); err != nil {
		t.Fatal(err)
	}
	var st *sender.Status
	poll := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			if st, err = c.Status(ctx, "u"); err != nil {
				t.Fatal(err)
			}
			if cond() {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: state %s progress %+v", what, st.Campaign.State, st.Progress)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	poll("resolved", func() bool { return st.Campaign.State == sender.StateResolved })
	if err := c.Prepare(ctx, "u", 1); err != nil {
		t.Fatal(err)
	}
	poll("prepared", func() bool { return st.Prepared })
	if _, err := c.Press(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	poll("the end", func() bool { return st.Campaign.Terminal() })
	n := int64(st.Campaign.Resolution.Recipients)
	if st.Campaign.State != sender.StateDoneWithFailures || st.Campaign.Result.Failed != n || st.Campaign.Result.Accepted != 0 {
		t.Fatalf("ended %s with %+v, want done_with_failures with all %d failed", st.Campaign.State, st.Campaign.Result, n)
	}
	if st.Progress.DeadLettered != n {
		t.Fatalf("dead-lettered %d of %d", st.Progress.DeadLettered, n)
	}
}
