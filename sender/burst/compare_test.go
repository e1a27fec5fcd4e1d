package burst_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/apns"
	"github.com/salvopush/salvo/sender/burst"
	"github.com/salvopush/salvo/sender/fcm"
)

func startMock(t testing.TB, edit func(*mockpush.Config)) *mockpush.Server {
	t.Helper()
	cfg := mockpush.DefaultConfig()
	cfg.Dir = t.TempDir()
	if edit != nil {
		edit(&cfg)
	}
	srv, err := mockpush.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("mockpush.Start: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// transports opens the stock and the burst transport of platform against the mock, one
// connection each so that per-connection faults start over.
func transports(t *testing.T, r mockpush.Ready, platform sender.Platform) (stock, fast sender.Transport) {
	t.Helper()
	return transportsOf(t, r, r, platform, 1, 1)
}

// transportsOf opens the stock transport of platform against the mock of s and the burst one
// against that of b, each with conns connections and up to streams pushes in flight (the
// stock one's sender goroutines, the burst one's stream limit).
func transportsOf(t *testing.T, s, b mockpush.Ready, platform sender.Platform, conns, streams int) (stock, fast sender.Transport) {
	t.Helper()
	ctx := context.Background()
	var err error
	if platform == sender.PlatformIOS {
		stock, err = apns.New(apns.Config{URL: s.APNsURL, KeyFile: s.APNsKeyFile, KeyID: s.APNsKeyID, TeamID: s.APNsTeamID,
			CAFile: s.CAFile, Connections: conns, Concurrency: streams})
		if err == nil {
			fast, err = burst.NewAPNs(burst.APNsConfig{URL: b.APNsURL, KeyFile: b.APNsKeyFile, KeyID: b.APNsKeyID,
				TeamID: b.APNsTeamID, CAFile: b.CAFile, Connections: conns, MaxStreams: streams})
		}
	} else {
		stock, err = fcm.New(ctx, fcm.Config{Endpoint: s.FCMURL, ServiceAccountFile: s.FCMServiceAccountFile,
			ProjectID: s.FCMProjectID, CAFile: s.CAFile, Connections: conns, Concurrency: streams})
		if err == nil {
			fast, err = burst.NewFCM(ctx, burst.FCMConfig{Endpoint: b.FCMURL, ServiceAccountFile: b.FCMServiceAccountFile,
				ProjectID: b.FCMProjectID, CAFile: b.CAFile, Connections: conns, MaxStreams: streams})
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stock.Close(); fast.Close() })
	return stock, fast
}

func apnsToken(i int) []byte { return fmt.Appendf(nil, "%064x", i+1) }
func fcmToken(i int) []byte  { return fmt.Appendf(nil, "fcm-%0150d", i+1) }

func deadToken(p sender.Platform, i int) []byte {
	if p == sender.PlatformIOS {
		return fmt.Appendf(nil, "%s%056x", mockpush.UnregisteredMarker, i+1)
	}
	return fmt.Appendf(nil, "%s%0150d", mockpush.UnregisteredMarker, i+1)
}

func apnsMsg(r mockpush.Ready) *sender.APNsMessage {
	return &sender.APNsMessage{Topic: r.APNsTopic, PushType: "background", Priority: 5, CollapseID: "camp-1",
		Payload: []byte(`{"aps":{"content-available":1}}`)}
}

func fcmMsg(r mockpush.Ready) *sender.FCMMessage {
	return &sender.FCMMessage{Project: r.FCMProjectID, Data: map[string]string{"campaign": "camp-1"},
		CollapseKey: "camp-1", Priority: "high"}
}

func newBatch(r mockpush.Ready, p sender.Platform, tokens ...[]byte) *sender.Batch {
	b := &sender.Batch{Campaign: "camp-1", Platform: p, Tokens: tokens, Results: make([]sender.Result, len(tokens))}
	if p == sender.PlatformIOS {
		b.APNs = apnsMsg(r)
	} else {
		b.FCM = fcmMsg(r)
	}
	return b
}

func send(t *testing.T, tr sender.Transport, b *sender.Batch) []sender.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.Send(ctx, b); err != nil {
		t.Fatalf("Send: %v", err)
	}
	out := make([]sender.Result, len(b.Results))
	for i, r := range b.Results {
		r.At = time.Time{}
		out[i] = r
	}
	return out
}
