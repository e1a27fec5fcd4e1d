package transport_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/apns"
	"github.com/salvopush/salvo/sender/burst"
	"github.com/salvopush/salvo/sender/fcm"
	"github.com/salvopush/salvo/sender/transport"
)

func TestParseKind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    transport.Kind
		wantErr bool
	}{
		{"", transport.Burst, false},      // not chosen: the default, burst
		{"burst", transport.Burst, false}, // the production path
		{"stock", transport.Stock, false}, // the reference
		{"Stock", "", true},               // names are exact
		{"apns2", "", true},               // not a kind
	}
	for _, tc := range tests {
		got, err := transport.ParseKind(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ParseKind(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
	if transport.Default != transport.Burst || transport.Kinds()[0] != transport.Default {
		t.Errorf("Default %q, Kinds %q: want burst first", transport.Default, transport.Kinds())
	}
}

// TestOpen builds each kind against the mock servers, checks that the kind chose the
// package, and sends one notification per platform through each.
func TestOpen(t *testing.T) {
	t.Parallel()
	_, r := startMock(t)
	base := transport.Config{
		APNs:        transport.APNs{URL: r.APNsURL, KeyFile: r.APNsKeyFile, KeyID: r.APNsKeyID, TeamID: r.APNsTeamID},
		FCM:         transport.FCM{Endpoint: r.FCMURL, ServiceAccountFile: r.FCMServiceAccountFile, ProjectID: r.FCMProjectID},
		CAFile:      r.CAFile,
		Connections: 1,
		Concurrency: 4,
	}
	tests := []struct {
		kind            transport.Kind
		wantIOS, wantAn string // the concrete types Open must build
	}{
		{"", fmt.Sprintf("%T", &burst.APNs{}), fmt.Sprintf("%T", &burst.FCM{})},              // default: burst
		{transport.Burst, fmt.Sprintf("%T", &burst.APNs{}), fmt.Sprintf("%T", &burst.FCM{})}, // burst
		{transport.Stock, fmt.Sprintf("%T", &apns.Transport{}), fmt.Sprintf("%T", &fcm.Transport{})},
	}
	for i, tc := range tests {
		c := base
		c.Kind = tc.kind
		set, err := transport.Open(t.Context(), c)
		if err != nil {
			t.Fatalf("Open(%q): %v", tc.kind, err)
		}
		if got := fmt.Sprintf("%T", set[sender.PlatformIOS]); got != tc.wantIOS {
			t.Errorf("kind %q: iOS transport %s, want %s", tc.kind, got, tc.wantIOS)
		}
		if got := fmt.Sprintf("%T", set[sender.PlatformAndroid]); got != tc.wantAn {
			t.Errorf("kind %q: Android transport %s, want %s", tc.kind, got, tc.wantAn)
		}
		for _, p := range []sender.Platform{sender.PlatformIOS, sender.PlatformAndroid} {
			b := &sender.Batch{Campaign: fmt.Sprintf("c%d", i), Platform: p, Results: make([]sender.Result, 1)}
			if p == sender.PlatformIOS {
				b.Tokens = [][]byte{fmt.Appendf(nil, "%064x", i+1)}
				b.APNs = &sender.APNsMessage{Topic: r.APNsTopic, PushType: "background", Priority: 5,
					CollapseID: b.Campaign, Payload: []byte(`{"aps":{"content-available":1}}`)}
			} else {
				b.Tokens = [][]byte{fmt.Appendf(nil, "fcm-%0150d", i+1)}
				b.FCM = &sender.FCMMessage{Project: r.FCMProjectID, Data: map[string]string{"campaign": b.Campaign},
					CollapseKey: b.Campaign}
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			err := set[p].Send(ctx, b)
			cancel()
			if err != nil || b.Results[0].Outcome != sender.Accepted {
				t.Errorf("kind %q, %v: Send = %v, result %+v", tc.kind, p, err, b.Results[0])
			}
		}
		if err := set.Close(); err != nil {
			t.Errorf("kind %q: Close: %v", tc.kind, err)
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cfg   transport.Config
		check func(error) bool
	}{
		// neither provider named
		{"no provider", transport.Config{}, func(err error) bool { return errors.Is(err, transport.ErrNoProvider) }},
		// an unknown kind, before any file is read
		{"bad kind", transport.Config{Kind: "fast", APNs: transport.APNs{KeyFile: "k.p8"}},
			func(err error) bool { return err != nil && !errors.Is(err, transport.ErrNoProvider) }},
		// a key file that does not exist
		{"missing key", transport.Config{APNs: transport.APNs{URL: "https://127.0.0.1:1", KeyFile: t.TempDir() + "/none.p8",
			KeyID: "K", TeamID: "T"}}, func(err error) bool { return err != nil }},
	}
	for _, tc := range tests {
		set, err := transport.Open(t.Context(), tc.cfg)
		if !tc.check(err) || set != nil {
			t.Errorf("%s: Open = %v, %v", tc.name, set, err)
		}
	}
}

// TestValidateOnly: with FCM.ValidateOnly, both kinds send dry runs: answered 200, counted by
// the mock as validate_only and never as received (delivered).
func TestValidateOnly(t *testing.T) {
	t.Parallel()
	srv, r := startMock(t)
	for i, kind := range transport.Kinds() {
		set, err := transport.Open(t.Context(), transport.Config{Kind: kind, CAFile: r.CAFile, Connections: 1, Concurrency: 2,
			FCM: transport.FCM{Endpoint: r.FCMURL, ServiceAccountFile: r.FCMServiceAccountFile, ProjectID: r.FCMProjectID, ValidateOnly: true}})
		if err != nil {
			t.Fatalf("Open(%q): %v", kind, err)
		}
		b := &sender.Batch{Campaign: "dry", Platform: sender.PlatformAndroid, Results: make([]sender.Result, 2),
			Tokens: [][]byte{fmt.Appendf(nil, "fcm-%0150d", 2*i), fmt.Appendf(nil, "fcm-%0150d", 2*i+1)},
			FCM:    &sender.FCMMessage{Project: r.FCMProjectID, Data: map[string]string{"rehearsal": "1"}, CollapseKey: "dry"}}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		err = set[sender.PlatformAndroid].Send(ctx, b)
		cancel()
		_ = set.Close()
		for _, res := range b.Results {
			if err != nil || res.Outcome != sender.Accepted {
				t.Errorf("kind %q: Send = %v, result %+v", kind, err, res)
			}
		}
	}
	st := srv.Stats().FCM
	if want := int64(2 * len(transport.Kinds())); st.ValidateOnly != want || st.Received != 0 {
		t.Fatalf("mock: validate_only %d, received %d; want %d and 0", st.ValidateOnly, st.Received, want)
	}
}

// startMock starts the mock APNs and FCM with their defaults for one test.
func startMock(t *testing.T) (*mockpush.Server, mockpush.Ready) {
	t.Helper()
	cfg := mockpush.DefaultConfig()
	cfg.Dir = t.TempDir()
	srv, err := mockpush.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, srv.Ready()
}
