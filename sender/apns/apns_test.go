package apns_test

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/apns"
	"github.com/salvopush/salvo/sender/provider"
)

// startMock starts a mock APNs, changed by edit, that lives as long as the test.
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

// mockConfig is a transport configuration for the mock r.
func mockConfig(r mockpush.Ready) apns.Config {
	return apns.Config{
		URL:     r.APNsURL,
		KeyFile: r.APNsKeyFile,
		KeyID:   r.APNsKeyID,
		TeamID:  r.APNsTeamID,
		CAFile:  r.CAFile,
	}
}

// newTransport starts a transport that is closed when the test ends.
func newTransport(t testing.TB, cfg apns.Config) *apns.Transport {
	t.Helper()
	tr, err := apns.New(cfg)
	if err != nil {
		t.Fatalf("apns.New: %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// validToken is a well-formed 64-hex device token numbered i.
func validToken(i int) []byte { return fmt.Appendf(nil, "%064x", i+1) }

// deadToken is a well-formed token the mock answers 410 Unregistered.
func deadToken(i int) []byte {
	return fmt.Appendf(nil, "%s%056x", mockpush.UnregisteredMarker, i+1)
}

// alert is a valid alert message for the mock's topic.
func alert(r mockpush.Ready) *sender.APNsMessage {
	return &sender.APNsMessage{
		Topic:      r.APNsTopic,
		PushType:   "alert",
		Priority:   10,
		CollapseID: "camp-1",
		Payload:    []byte(`{"aps":{"alert":"hello"}}`),
	}
}

// batch is an iOS batch of msg to tokens.
func batch(msg *sender.APNsMessage, tokens ...[]byte) *sender.Batch {
	return &sender.Batch{
		Campaign: "camp-1",
		Platform: sender.PlatformIOS,
		APNs:     msg,
		Tokens:   tokens,
		Results:  make([]sender.Result, len(tokens)),
	}
}

// send sends b and fails the test on an error.
func send(t *testing.T, tr *apns.Transport, b *sender.Batch) {
	t.Helper()
	if err := tr.Send(context.Background(), b); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

func TestSendAgainstMock(t *testing.T) {
	srv := startMock(t, nil)
	r := srv.Ready()
	big := []byte(`{"aps":{"alert":"` + strings.Repeat("x", 5000) + `"}}`)
	with := func(edit func(*sender.APNsMessage)) *sender.APNsMessage {
		m := alert(r)
		edit(m)
		return m
	}
	tests := []struct {
		name   string
		faults mockpush.PlatformFaults
		msg    *sender.APNsMessage
		token  []byte
		want   sender.Result // At is checked apart
	}{
		// A valid push is accepted.
		{name: "accepted", msg: alert(r), token: validToken(1),
			want: sender.Result{Outcome: sender.Accepted, Status: 200}},
		// A silent push with priority 5 and a deadline is accepted.
		{name: "silent", msg: with(func(m *sender.APNsMessage) {
			m.PushType, m.Priority, m.Payload = "background", 5, []byte(`{"aps":{"content-available":1}}`)
			m.Expiration = time.Now().Add(time.Hour)
		}), token: validToken(2), want: sender.Result{Outcome: sender.Accepted, Status: 200}},
		// The mock's dead tokens are unregistered: prune them.
		{name: "unregistered", msg: alert(r), token: deadToken(1),
			want: sender.Result{Outcome: sender.Permanent, Status: 410, Reason: "Unregistered", InvalidToken: true}},
		// A token that is not hex is a bad device token.
		{name: "bad device token", msg: alert(r), token: []byte("not-a-token"),
			want: sender.Result{Outcome: sender.Permanent, Status: 400, Reason: "BadDeviceToken", InvalidToken: true}},
		// A topic the token is not for.
		{name: "token not for topic", msg: with(func(m *sender.APNsMessage) { m.Topic = "com.other.app" }),
			token: validToken(3), want: sender.Result{Outcome: sender.Permanent, Status: 400, Reason: "DeviceTokenNotForTopic", InvalidToken: true}},
		// No topic at all.
		{name: "missing topic", msg: with(func(m *sender.APNsMessage) { m.Topic = "" }),
			token: validToken(4), want: sender.Result{Outcome: sender.Permanent, Status: 400, Reason: "MissingTopic"}},
		// A payload over 4096 bytes.
		{name: "payload too large", msg: with(func(m *sender.APNsMessage) { m.Payload = big }),
			token: validToken(5), want: sender.Result{Outcome: sender.Permanent, Status: 413, Reason: "PayloadTooLarge"}},
		// Background pushes need priority 5.
		{name: "bad priority", msg: with(func(m *sender.APNsMessage) { m.PushType = "background" }),
			token: validToken(6), want: sender.Result{Outcome: sender.Permanent, Status: 400, Reason: "BadPriority"}},
		// A collapse ID over 64 bytes.
		{name: "bad collapse id", msg: with(func(m *sender.APNsMessage) { m.CollapseID = strings.Repeat("c", 65) }),
			token: validToken(7), want: sender.Result{Outcome: sender.Permanent, Status: 400, Reason: "BadCollapseId"}},
		// Throttled, with a Retry-After to honour.
		{name: "429 retry-after", faults: errorFault("TooManyRequests", 7), msg: alert(r), token: validToken(8),
			want: sender.Result{Outcome: sender.Transient, Status: 429, Reason: "TooManyRequests", RetryAfter: 7 * time.Second}},
		// A server error.
		{name: "500", faults: errorFault("InternalServerError", 0), msg: alert(r), token: validToken(9),
			want: sender.Result{Outcome: sender.Transient, Status: 500, Reason: "InternalServerError"}},
		// Unavailable, with a Retry-After.
		{name: "503", faults: errorFault("ServiceUnavailable", 3), msg: alert(r), token: validToken(10),
			want: sender.Result{Outcome: sender.Transient, Status: 503, Reason: "ServiceUnavailable", RetryAfter: 3 * time.Second}},
		// The server is shutting down.
		{name: "503 shutdown", faults: errorFault("Shutdown", 0), msg: alert(r), token: validToken(11),
			want: sender.Result{Outcome: sender.Transient, Status: 503, Reason: "Shutdown"}},
		// An outage window answers 503 to everything.
		{name: "outage", faults: mockpush.PlatformFaults{Outage: mockpush.Outage{DurationMS: 60000, RetryAfterSeconds: 2}},
			msg: alert(r), token: validToken(12),
			want: sender.Result{Outcome: sender.Transient, Status: 503, Reason: "ServiceUnavailable", RetryAfter: 2 * time.Second}},
		// A connection reset before the answer: no status, a transport reason.
		{name: "connection reset", faults: mockpush.PlatformFaults{ResetAfterStreams: 1}, msg: alert(r), token: validToken(13),
			want: sender.Result{Outcome: sender.Transient, Reason: provider.ReasonConnectionReset}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := srv.SetFaults(mockpush.Faults{APNs: tc.faults}); err != nil {
				t.Fatal(err)
			}
			// A fresh single-connection transport, so that per-connection faults start over;
			// the first push warms the connection up (reset faults count from it).
			cfg := mockConfig(r)
			cfg.Connections, cfg.Concurrency = 1, 1
			tr := newTransport(t, cfg)
			if tc.faults.ResetAfterStreams > 0 {
				warm := batch(alert(r), validToken(1000))
				send(t, tr, warm)
				if warm.Results[0].Outcome != sender.Accepted {
					t.Fatalf("warm-up push: %+v", warm.Results[0])
				}
			}
			before := time.Now()
			b := batch(tc.msg, tc.token)
			send(t, tr, b)
			got := b.Results[0]
			if got.At.Before(before) || got.At.After(time.Now()) {
				t.Errorf("At = %v, want between %v and now", got.At, before)
			}
			got.At = time.Time{}
			if got != tc.want {
				t.Errorf("result = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// errorFault answers every request with reason, adding Retry-After when retryAfter > 0.
func errorFault(reason string, retryAfter int) mockpush.PlatformFaults {
	return mockpush.PlatformFaults{Errors: []mockpush.ErrorFault{{Reason: reason, Rate: 1, RetryAfterSeconds: retryAfter}}}
}

func TestProviderTokenProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		ahead bool   // the mock's clock jumps two hours ahead once it runs
		keyID string // replaces the mock's key ID when set
		want  string
	}{
		// The fresh token looks two hours old to the mock.
		{name: "expired", ahead: true, want: "ExpiredProviderToken"},
		// A key ID the mock does not know.
		{name: "invalid", keyID: "UNKNOWNKEY", want: "InvalidProviderToken"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ahead atomic.Bool
			srv := startMock(t, func(c *mockpush.Config) {
				c.Now = func() time.Time {
					if ahead.Load() {
						return time.Now().Add(2 * time.Hour)
					}
					return time.Now()
				}
			})
			ahead.Store(tc.ahead)
			r := srv.Ready()
			cfg := mockConfig(r)
			if tc.keyID != "" {
				cfg.KeyID = tc.keyID
			}
			tr := newTransport(t, cfg)
			b := batch(alert(r), validToken(1))
			send(t, tr, b)
			got := b.Results[0]
			if got.Outcome != sender.Transient || got.Status != 403 || got.Reason != tc.want {
				t.Errorf("result = %+v, want Transient 403 %s", got, tc.want)
			}
			if !provider.APNsAuthFailure(got.Reason) || provider.APNsInvalidToken(got.Reason) {
				t.Errorf("%s: IsAuthFailure %v, IsInvalidToken %v", got.Reason, provider.APNsAuthFailure(got.Reason), provider.APNsInvalidToken(got.Reason))
			}
		})
	}
}

func TestMixedBatchFillsEveryResult(t *testing.T) {
	t.Parallel()
	srv := startMock(t, nil)
	r := srv.Ready()
	cfg := mockConfig(r)
	cfg.Connections, cfg.Concurrency = 3, 32
	tr := newTransport(t, cfg)
	const n = 500
	tokens := make([][]byte, n)
	for i := range tokens {
		if i%10 == 3 {
			tokens[i] = deadToken(i)
		} else {
			tokens[i] = validToken(i)
		}
	}
	b := batch(alert(r), tokens...)
	send(t, tr, b)
	for i, res := range b.Results {
		want := sender.Accepted
		if i%10 == 3 {
			want = sender.Permanent
		}
		if res.Outcome != want || res.At.IsZero() {
			t.Fatalf("result %d = %+v, want %v", i, res, want)
		}
	}
	st := srv.Stats().APNs
	if st.Received != n || st.Accepted != n-n/10 || st.Unique != n-n/10 || st.Duplicates != 0 || st.Rejected["Unregistered"] != n/10 {
		t.Errorf("mock stats = %+v", st)
	}
}

func TestSurvivesGoAway(t *testing.T) {
	t.Parallel()
	srv := startMock(t, func(c *mockpush.Config) {
		c.Faults.APNs.GoAwayAfterStreams = 7
	})
	r := srv.Ready()
	cfg := mockConfig(r)
	cfg.Connections, cfg.Concurrency = 2, 8
	tr := newTransport(t, cfg)
	tokens := make([][]byte, 100)
	for i := range tokens {
		tokens[i] = validToken(i)
	}
	b := batch(alert(r), tokens...)
	send(t, tr, b)
	checkGoAway(t, b.Results, srv.Stats().APNs)
}

// checkGoAway checks the results of a batch sent while the server closes every connection
// with GOAWAY after a few streams. The transport redials and resends what the server did
// not process; a push whose connection broke before the client could read the GOAWAY (the
// mock closes as soon as its last stream is answered) cannot be known unprocessed and is a
// transient failure. No result claims an acceptance the mock did not count.
func checkGoAway(t *testing.T, results []sender.Result, st mockpush.PlatformStats) {
	t.Helper()
	var accepted int64
	for i, res := range results {
		switch {
		case res.Outcome == sender.Accepted:
			accepted++
		case res.Outcome == sender.Transient && res.Status == 0:
		default:
			t.Errorf("result %d after GOAWAY = %+v, want accepted or a transient transport failure", i, res)
		}
	}
	if accepted < int64(len(results))/2 || accepted > st.Accepted || st.Duplicates != 0 {
		t.Errorf("%d of %d accepted, mock stats %+v", accepted, len(results), st)
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	t.Parallel()
	srv := startMock(t, func(c *mockpush.Config) {
		c.Faults.APNs.Latency.FixedMS = 2000
	})
	r := srv.Ready()

	t.Run("timeout", func(t *testing.T) {
		cfg := mockConfig(r)
		cfg.Timeout = 50 * time.Millisecond
		tr := newTransport(t, cfg)
		b := batch(alert(r), validToken(1))
		send(t, tr, b)
		if got := b.Results[0]; got.Outcome != sender.Transient || got.Reason != provider.ReasonTimeout {
			t.Errorf("result = %+v, want Transient %q", got, provider.ReasonTimeout)
		}
	})

	t.Run("cancel part way", func(t *testing.T) {
		cfg := mockConfig(r)
		cfg.Connections, cfg.Concurrency = 1, 2
		tr := newTransport(t, cfg)
		tokens := make([][]byte, 20)
		for i := range tokens {
			tokens[i] = validToken(i)
		}
		b := batch(alert(r), tokens...)
		ctx, cancel := context.WithCancel(context.Background())
		stop := time.AfterFunc(50*time.Millisecond, cancel)
		defer stop.Stop()
		if err := tr.Send(ctx, b); err != nil {
			t.Fatalf("Send: %v", err)
		}
		for i, res := range b.Results {
			if res.Outcome != sender.Transient || res.Reason != provider.ReasonCanceled {
				t.Errorf("result %d = %+v, want Transient %q", i, res, provider.ReasonCanceled)
			}
		}
	})

	t.Run("cancelled before", func(t *testing.T) {
		tr := newTransport(t, mockConfig(r))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := tr.Send(ctx, batch(alert(r), validToken(1))); !errors.Is(err, context.Canceled) {
			t.Errorf("Send = %v, want context.Canceled", err)
		}
	})
}

func TestCloseThenSend(t *testing.T) {
	t.Parallel()
	srv := startMock(t, nil)
	r := srv.Ready()
	tr, err := apns.New(mockConfig(r))
	if err != nil {
		t.Fatal(err)
	}
	b := batch(alert(r), validToken(1))
	send(t, tr, b)
	if err := tr.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := tr.Send(context.Background(), b); !errors.Is(err, apns.ErrClosed) {
		t.Errorf("Send after Close = %v, want ErrClosed", err)
	}
}

func TestSendRejectsMalformedBatch(t *testing.T) {
	t.Parallel()
	srv := startMock(t, nil)
	r := srv.Ready()
	tr := newTransport(t, mockConfig(r))
	tests := []struct {
		name string
		b    *sender.Batch
	}{
		// An Android batch.
		{name: "platform", b: &sender.Batch{Platform: sender.PlatformAndroid, APNs: alert(r)}},
		// No APNs message.
		{name: "no message", b: &sender.Batch{Platform: sender.PlatformIOS}},
		// Results not sized to the tokens.
		{name: "results", b: &sender.Batch{Platform: sender.PlatformIOS, APNs: alert(r), Tokens: [][]byte{validToken(1)}}},
	}
	for _, tc := range tests {
		if err := tr.Send(context.Background(), tc.b); err == nil {
			t.Errorf("%s: Send = nil, want an error", tc.name)
		}
	}
	if st := srv.Stats().APNs; st.Received != 0 {
		t.Errorf("mock received %d pushes, want 0", st.Received)
	}
}

// TestConcurrencyBounded checks that pushes in flight, connections and goroutines stay within
// the configured bounds whatever the batch size, and that Close ends every goroutine. It runs
// alone (no t.Parallel) so that the goroutine counts are its own.
func TestConcurrencyBounded(t *testing.T) {
	const conns, concurrency, batches, size = 2, 8, 4, 500
	var inflight, peak, dialled atomic.Int64
	var goroutinePeak atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		g := int64(runtime.NumGoroutine())
		for p := goroutinePeak.Load(); g > p && !goroutinePeak.CompareAndSwap(p, g); p = goroutinePeak.Load() {
		}
		runtime.Gosched() // let other streams overlap this one
		w.Header().Set("apns-id", "00000000-0000-0000-0000-000000000000")
	})
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dialled.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	writePEM(t, caFile, "CERTIFICATE", srv.Certificate().Raw)
	keyFile := filepath.Join(dir, "key.p8")
	mock := startMock(t, nil) // only for a valid signing key
	key, err := os.ReadFile(mock.Ready().APNsKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := apns.Config{URL: srv.URL, KeyFile: keyFile, KeyID: "KEY1234567", TeamID: "TEAM123456",
		CAFile: caFile, Connections: conns, Concurrency: concurrency}

	base := runtime.NumGoroutine()
	tr, err := apns.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := runtime.NumGoroutine() - base; got != concurrency {
		t.Errorf("New started %d goroutines, want %d sender goroutines", got, concurrency)
	}
	msg := &sender.APNsMessage{Topic: "t", PushType: "alert", Priority: 10, Payload: []byte(`{}`)}
	var wg sync.WaitGroup
	for range batches {
		wg.Go(func() {
			tokens := make([][]byte, size)
			for i := range tokens {
				tokens[i] = validToken(i)
			}
			b := batch(msg, tokens...)
			if err := tr.Send(context.Background(), b); err != nil {
				t.Errorf("Send: %v", err)
			}
			for i, res := range b.Results {
				if res.Outcome != sender.Accepted {
					t.Errorf("result %d = %+v", i, res)
					return
				}
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > concurrency || p < 1 {
		t.Errorf("peak pushes in flight = %d, want 1..%d", p, concurrency)
	}
	if d := dialled.Load(); d > conns {
		t.Errorf("dialled %d connections, want at most %d", d, conns)
	}
	// Per push in flight, net/http holds a few goroutines on each side (client stream,
	// timeout watch, server handler); per connection a few more; plus the Send callers.
	// None of it grows with the number of pushes.
	if limit := int64(base + concurrency + 4*concurrency + 8*conns + batches + 8); goroutinePeak.Load() > limit {
		t.Errorf("peak goroutines %d, want at most %d for %d pushes", goroutinePeak.Load(), limit, batches*size)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	srv.CloseClientConnections()
	// Connection goroutines end asynchronously after Close; wait (bounded) for them.
	for i := 0; runtime.NumGoroutine() > base && i < 200; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if got := runtime.NumGoroutine(); got > base {
		t.Errorf("%d goroutines after Close, want at most %d", got, base)
	}
}

// writePEM writes der to path as one PEM block of type typ.
func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := apns.Config{URL: "https://127.0.0.1:8443", KeyFile: "k.p8", KeyID: "K", TeamID: "T"}
	tests := []struct {
		name  string
		edit  func(*apns.Config)
		field string // "" when valid
	}{
		// Defaults fill the zero fields.
		{name: "valid", edit: func(*apns.Config) {}},
		// The production endpoint.
		{name: "production", edit: func(c *apns.Config) { c.URL = apns.ProductionURL }},
		// No endpoint.
		{name: "no URL", edit: func(c *apns.Config) { c.URL = "" }, field: "URL"},
		// Plain HTTP is not APNs.
		{name: "http URL", edit: func(c *apns.Config) { c.URL = "http://127.0.0.1:1" }, field: "URL"},
		// A path would be dropped silently.
		{name: "URL path", edit: func(c *apns.Config) { c.URL = "https://h/3/device" }, field: "URL"},
		{name: "no key", edit: func(c *apns.Config) { c.KeyFile = "" }, field: "KeyFile"},
		{name: "no key ID", edit: func(c *apns.Config) { c.KeyID = "" }, field: "KeyID"},
		{name: "no team", edit: func(c *apns.Config) { c.TeamID = "" }, field: "TeamID"},
		{name: "negative connections", edit: func(c *apns.Config) { c.Connections = -1 }, field: "Connections"},
		// More connections than goroutines to use them.
		{name: "connections over concurrency", edit: func(c *apns.Config) { c.Connections, c.Concurrency = 9, 8 }, field: "Connections"},
		{name: "negative concurrency", edit: func(c *apns.Config) { c.Concurrency = -1 }, field: "Concurrency"},
		{name: "negative timeout", edit: func(c *apns.Config) { c.Timeout = -time.Second }, field: "Timeout"},
	}
	for _, tc := range tests {
		c := ok
		tc.edit(&c)
		err := c.Validate()
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: Validate = %v, want nil", tc.name, err)
		case tc.field != "" && (err == nil || !strings.Contains(err.Error(), "config "+tc.field+":")):
			t.Errorf("%s: Validate = %v, want an error naming %s", tc.name, err, tc.field)
		}
	}
}

func TestNewRejectsBadFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(notPEM, []byte("nothing"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := apns.Config{URL: "https://127.0.0.1:1", KeyFile: notPEM, KeyID: "K", TeamID: "T"}
	if _, err := apns.New(base); err == nil || !strings.Contains(err.Error(), "key file") {
		t.Errorf("New with a bad key = %v, want a key file error", err)
	}
	srv := startMock(t, nil)
	base.KeyFile = srv.Ready().APNsKeyFile
	base.CAFile = notPEM
	if _, err := apns.New(base); err == nil || !strings.Contains(err.Error(), "CA file") {
		t.Errorf("New with a bad CA = %v, want a CA file error", err)
	}
}

func TestConnectionLossInBatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		faults   mockpush.PlatformFaults
		lossless bool // every valid token must be accepted
	}{
		// Every connection is reset at its 11th push; the transport redials.
		{name: "reset", faults: mockpush.PlatformFaults{ResetAfterStreams: 10}},
		// APNs's stream limits: one stream until the first accepted push, one after each
		// rejection. Nothing may wait for its deadline (see streamGate).
		{name: "stream limits", faults: mockpush.PlatformFaults{OneStreamUntilAccepted: true, DropStreamsOnReject: true}, lossless: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startMock(t, func(c *mockpush.Config) { c.Faults.APNs = tc.faults })
			r := srv.Ready()
			cfg := mockConfig(r)
			cfg.Connections, cfg.Concurrency = 2, 16
			tr := newTransport(t, cfg)
			tokens := make([][]byte, 200)
			for i := range tokens {
				if i%7 == 0 {
					tokens[i] = deadToken(i)
				} else {
					tokens[i] = validToken(i)
				}
			}
			b := batch(alert(r), tokens...)
			send(t, tr, b)
			var accepted int64
			for i, res := range b.Results {
				switch {
				case res.Outcome == sender.Accepted:
					accepted++
				case res.Outcome == sender.Permanent && res.Reason == "Unregistered" && i%7 == 0:
				case res.Outcome == sender.Transient && res.Status == 0 && !tc.lossless:
				default:
					t.Errorf("result %d = %+v", i, res)
				}
			}
			// An answer lost with its connection may hide an acceptance, never invent one.
			st := srv.Stats().APNs
			if accepted == 0 || accepted > st.Accepted || st.Duplicates != 0 {
				t.Errorf("%d results accepted, mock stats %+v", accepted, st)
			}
		})
	}
}

// BenchmarkSend sends batches of 500 to the in-process mock with the default pool (4
// connections, 256 pushes in flight). Allocations include the mock's unless
// SALVO_MOCKPUSH_READY names the ready file of a `salvo mockpush` running apart.
func BenchmarkSend(b *testing.B) {
	const size = 500
	r := benchMock(b)
	tr := newTransport(b, mockConfig(r))
	tokens := make([][]byte, size)
	for i := range tokens {
		tokens[i] = validToken(i)
	}
	bt := batch(alert(r), tokens...)
	ctx := context.Background()
	if err := tr.Send(ctx, bt); err != nil { // dial and authenticate before timing
		b.Fatal(err)
	}
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for b.Loop() {
		if err := tr.Send(ctx, bt); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	n := float64(b.N) * size
	b.ReportMetric(n/b.Elapsed().Seconds(), "notifications/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/notification")
	if bt.Results[size-1].Outcome != sender.Accepted {
		b.Fatalf("last result %+v", bt.Results[size-1])
	}
}

// benchMock returns the mock named by SALVO_MOCKPUSH_READY, or starts one in-process.
func benchMock(b *testing.B) mockpush.Ready {
	if path := os.Getenv("SALVO_MOCKPUSH_READY"); path != "" {
		r, err := mockpush.ReadReadyFile(path)
		if err != nil {
			b.Fatal(err)
		}
		return r
	}
	return startMock(b, nil).Ready()
}

// TestGoAwayUnderLoadAcceptsAllOnce sends a large batch with many pushes in flight while the
// server sends GOAWAY every few streams. GOAWAY names the last stream the mock answers and
// the mock keeps the connection open until the client has read every answer, so the pushes
// the mock counted are exactly the ones reported accepted: a push reported as a transient
// failure (above GOAWAY's last stream) was never counted, and retrying it duplicates nothing.
func TestGoAwayUnderLoadAcceptsAllOnce(t *testing.T) {
	t.Parallel()
	srv := startMock(t, func(c *mockpush.Config) {
		c.Faults.APNs.GoAwayAfterStreams = 25
	})
	r := srv.Ready()
	cfg := mockConfig(r)
	cfg.Connections, cfg.Concurrency = 2, 64
	tr := newTransport(t, cfg)
	tokens := make([][]byte, 500)
	for i := range tokens {
		tokens[i] = validToken(i)
	}
	// Round after round, the transient ones again, as the send path does, until every push
	// is accepted: at each step the mock has counted exactly the pushes reported accepted.
	var accepted int64
	for round := 0; len(tokens) > 0; round++ {
		if round == 50 {
			t.Fatalf("%d pushes still not accepted after %d rounds", len(tokens), round)
		}
		b := batch(alert(r), tokens...)
		send(t, tr, b)
		var again [][]byte
		for i, res := range b.Results {
			switch {
			case res.Outcome == sender.Accepted:
				accepted++
			case res.Outcome == sender.Transient && res.Status == 0:
				again = append(again, tokens[i])
			default:
				t.Fatalf("result %d = %+v, want accepted or a transient transport failure", i, res)
			}
		}
		if round == 0 && accepted == 0 {
			t.Fatal("nothing accepted in the first round")
		}
		if st := srv.Stats().APNs; st.Unique != accepted || st.Duplicates != 0 {
			t.Fatalf("round %d: mock counted %d unique (%d duplicates) but the transport reported %d accepted",
				round, st.Unique, st.Duplicates, accepted)
		}
		tokens = again
	}
	if accepted != 500 {
		t.Fatalf("%d of 500 pushes accepted", accepted)
	}
}
