package burst_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/burst"
)

// TestSameResultsAsStock sends the same batch through the stock and the burst transport for
// every response class the mocks produce and requires identical results.
func TestSameResultsAsStock(t *testing.T) {
	errFault := func(reason string, retry int) mockpush.PlatformFaults {
		return mockpush.PlatformFaults{Errors: []mockpush.ErrorFault{{Reason: reason, Rate: 1, RetryAfterSeconds: retry}}}
	}
	outage := mockpush.PlatformFaults{Outage: mockpush.Outage{DurationMS: 600000, RetryAfterSeconds: 2}}
	tests := []struct {
		name     string
		platform sender.Platform
		faults   mockpush.PlatformFaults
		// connFault: per-connection faults (GOAWAY, resets) whose victims depend on timing;
		// compare the outcome counts instead of each result.
		connFault bool
		badToken  bool
	}{
		// Accepted and unregistered tokens, no faults.
		{name: "apns accepted+unregistered", platform: sender.PlatformIOS},
		{name: "fcm accepted+unregistered", platform: sender.PlatformAndroid},
		// A malformed device token: BadDeviceToken (APNs), INVALID_ARGUMENT (FCM).
		{name: "apns bad token", platform: sender.PlatformIOS, badToken: true},
		{name: "fcm bad token", platform: sender.PlatformAndroid, badToken: true},
		// 429 with Retry-After.
		{name: "apns 429", platform: sender.PlatformIOS, faults: errFault("TooManyRequests", 7)},
		{name: "fcm 429", platform: sender.PlatformAndroid, faults: errFault("QUOTA_EXCEEDED", 7)},
		// 500 and 503.
		{name: "apns 500", platform: sender.PlatformIOS, faults: errFault("InternalServerError", 0)},
		{name: "apns 503", platform: sender.PlatformIOS, faults: errFault("ServiceUnavailable", 3)},
		{name: "apns shutdown", platform: sender.PlatformIOS, faults: errFault("Shutdown", 0)},
		{name: "fcm 500", platform: sender.PlatformAndroid, faults: errFault("INTERNAL", 0)},
		{name: "fcm 503", platform: sender.PlatformAndroid, faults: errFault("UNAVAILABLE", 3)},
		// Outage windows.
		{name: "apns outage", platform: sender.PlatformIOS, faults: outage},
		{name: "fcm outage", platform: sender.PlatformAndroid, faults: outage},
		// Stream-limit modes of APNs: one stream until accepted, drop to 1 after a reject.
		{name: "apns stream limits", platform: sender.PlatformIOS,
			faults: mockpush.PlatformFaults{OneStreamUntilAccepted: true, DropStreamsOnReject: true}},
		// GOAWAY every few streams: what the server did not process is sent again.
		{name: "apns goaway", platform: sender.PlatformIOS, faults: mockpush.PlatformFaults{GoAwayAfterStreams: 3}, connFault: true},
		{name: "fcm goaway", platform: sender.PlatformAndroid, faults: mockpush.PlatformFaults{GoAwayAfterStreams: 3}, connFault: true},
		// TCP resets.
		{name: "apns reset", platform: sender.PlatformIOS, faults: mockpush.PlatformFaults{ResetAfterStreams: 4}, connFault: true},
		{name: "fcm reset", platform: sender.PlatformAndroid, faults: mockpush.PlatformFaults{ResetAfterStreams: 4}, connFault: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := startMock(t, nil)
			r := srv.Ready()
			f := mockpush.Faults{Seed: 1}
			if tc.platform == sender.PlatformIOS {
				f.APNs = tc.faults
			} else {
				f.FCM = tc.faults
			}
			tokens := func(base int) [][]byte {
				var out [][]byte
				for i := range 10 {
					switch {
					case tc.badToken && i%3 == 0 && tc.platform == sender.PlatformIOS:
						out = append(out, []byte("not-hex"))
					case tc.badToken && i%3 == 0:
						out = append(out, []byte("short"))
					case i%4 == 1:
						out = append(out, deadToken(tc.platform, base+i))
					case tc.platform == sender.PlatformIOS:
						out = append(out, apnsToken(base+i))
					default:
						out = append(out, fcmToken(base+i))
					}
				}
				return out
			}
			var got [2][]sender.Result
			for k := range 2 {
				if err := srv.SetFaults(f); err != nil {
					t.Fatal(err)
				}
				stock, fast := transports(t, r, tc.platform)
				tr := []sender.Transport{stock, fast}[k]
				if !tc.connFault {
					got[k] = send(t, tr, newBatch(r, tc.platform, tokens(100*k)...))
					continue
				}
				// Which streams a GOAWAY or a reset hits depends on timing: send the transient
				// ones again, as the send path does, and compare where each token ends.
				var transient int
				got[k], transient = sendUntilFinal(t, tr, r, tc.platform, tokens(100*k))
				for i, res := range got[k] {
					if res.Outcome != sender.Accepted && !res.InvalidToken {
						t.Errorf("transport %d token %d ended %+v, want accepted or an invalid token", k, i, res)
					}
				}
				t.Logf("transport %d: %d transient tries", k, transient)
			}
			if tc.connFault {
				// Each transport's 10 tokens, 7 valid: all accepted, once, as the mock counts.
				st := srv.Stats().APNs
				if tc.platform == sender.PlatformAndroid {
					st = srv.Stats().FCM
				}
				if st.Unique != 14 || st.Duplicates != 0 {
					t.Errorf("the mock counts %d unique and %d duplicates, want 14 and 0", st.Unique, st.Duplicates)
				}
			}
			for i := range got[0] {
				if got[0][i] != got[1][i] {
					t.Errorf("token %d: stock %+v, burst %+v", i, got[0][i], got[1][i])
				}
			}
		})
	}
}

// TestGoHTTP2Server runs the APNs transport against net/http's own HTTP/2 server: HPACK with
// Huffman and dynamic-table answers, SETTINGS, flow control for a large body, and many
// concurrent streams.
func TestGoHTTP2Server(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		tok := strings.TrimPrefix(r.URL.Path, "/3/device/")
		w.Header().Set("apns-id", "8E2DB5B4-2A0E-4C8D-9C6E-0D5B0F1E6A11")
		switch {
		case r.ProtoMajor != 2 || !strings.HasPrefix(r.Header.Get("authorization"), "bearer "):
			w.WriteHeader(403)
			io.WriteString(w, `{"reason":"MissingProviderToken"}`)
		case len(body) != 70000 && len(body) != 2:
			w.WriteHeader(400)
			io.WriteString(w, `{"reason":"PayloadEmpty"}`)
		case strings.HasPrefix(tok, "dead"):
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(410)
			io.WriteString(w, `{"reason":"Unregistered","timestamp":1700000000000}`)
		default:
			w.WriteHeader(200)
		}
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	kf := filepath.Join(dir, "key.p8")
	os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	// A generous push timeout: the test is about the protocol, and 300 pushes of 70 kB under
	// -race on a loaded machine can take longer than the default 10 s.
	tr, err := burst.NewAPNs(burst.APNsConfig{URL: srv.URL, KeyFile: kf, KeyID: "K", TeamID: "T", CAFile: ca,
		Connections: 2, Timeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for _, size := range []int{2, 70000} { // 70000 exceeds the initial 65535 windows
		var tokens [][]byte
		for i := range 300 {
			if i%10 == 0 {
				tokens = append(tokens, []byte("dead"+strings.Repeat("a", 60)))
			} else {
				tokens = append(tokens, apnsToken(i))
			}
		}
		b := &sender.Batch{Platform: sender.PlatformIOS, Tokens: tokens, Results: make([]sender.Result, len(tokens)),
			APNs: &sender.APNsMessage{Topic: "t", Payload: []byte("{}" + strings.Repeat(" ", size-2))}}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		if err := tr.Send(ctx, b); err != nil {
			t.Fatal(err)
		}
		cancel()
		for i, res := range b.Results {
			want := sender.Result{Outcome: sender.Accepted, Status: 200}
			if i%10 == 0 {
				want = sender.Result{Outcome: sender.Permanent, Status: 410, Reason: "Unregistered", InvalidToken: true}
			}
			res.At = time.Time{}
			if res != want {
				t.Fatalf("size %d result %d = %+v, want %+v", size, i, res, want)
			}
		}
	}
}

// TestSendAfterClose and a cancelled context follow the sender.Transport contract.
func TestSendAfterClose(t *testing.T) {
	srv := startMock(t, nil)
	r := srv.Ready()
	_, fast := transports(t, r, sender.PlatformIOS)
	fast.Close()
	if err := fast.Send(context.Background(), newBatch(r, sender.PlatformIOS, apnsToken(1))); err != burst.ErrClosed {
		t.Fatalf("Send after Close = %v, want ErrClosed", err)
	}
}
