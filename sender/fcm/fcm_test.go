package fcm_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
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
	"github.com/salvopush/salvo/sender/fcm"
	"github.com/salvopush/salvo/sender/provider"
)

// startMock starts a mock FCM, changed by edit, that lives as long as the test.
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
func mockConfig(r mockpush.Ready) fcm.Config {
	return fcm.Config{
		Endpoint:           r.FCMURL,
		ServiceAccountFile: r.FCMServiceAccountFile,
		ProjectID:          r.FCMProjectID,
		CAFile:             r.CAFile,
	}
}

// newTransport starts a transport that is closed when the test ends.
func newTransport(t testing.TB, cfg fcm.Config) *fcm.Transport {
	t.Helper()
	tr, err := fcm.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("fcm.New: %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// validToken is a well-formed registration token numbered i.
func validToken(i int) []byte {
	return fmt.Appendf(nil, "c%021d:APA91b%0130d", i, i)
}

// deadToken is a well-formed token the mock answers 404 UNREGISTERED.
func deadToken(i int) []byte {
	return fmt.Appendf(nil, "%s%014d:APA91b%0130d", mockpush.UnregisteredMarker, i, i)
}

// alert is a notification message.
func alert() *sender.FCMMessage {
	return &sender.FCMMessage{Title: "Hello", Body: "World", CollapseKey: "camp-1", Priority: "high"}
}

// batch is an Android batch of msg to tokens.
func batch(msg *sender.FCMMessage, tokens ...[]byte) *sender.Batch {
	return &sender.Batch{
		Campaign: "camp-1",
		Platform: sender.PlatformAndroid,
		FCM:      msg,
		Tokens:   tokens,
		Results:  make([]sender.Result, len(tokens)),
	}
}

// send sends b and fails the test on an error.
func send(t *testing.T, tr *fcm.Transport, b *sender.Batch) {
	t.Helper()
	if err := tr.Send(context.Background(), b); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

// errorFault answers every request with reason, adding Retry-After when retryAfter > 0.
func errorFault(reason string, retryAfter int) mockpush.PlatformFaults {
	return mockpush.PlatformFaults{Errors: []mockpush.ErrorFault{{Reason: reason, Rate: 1, RetryAfterSeconds: retryAfter}}}
}

func TestSendAgainstMock(t *testing.T) {
	srv := startMock(t, nil)
	r := srv.Ready()
	with := func(edit func(*sender.FCMMessage)) *sender.FCMMessage {
		m := alert()
		edit(m)
		return m
	}
	tests := []struct {
		name     string
		faults   mockpush.PlatformFaults
		project  string // replaces the mock's project when set
		msg      *sender.FCMMessage
		token    []byte
		want     sender.Result // At is checked apart
		requests int64         // send requests the mock must see; SDK retries would add more
	}{
		// A notification is accepted.
		{name: "accepted", msg: alert(), token: validToken(1), requests: 1,
			want: sender.Result{Outcome: sender.Accepted, Status: 200}},
		// A silent data-only message with a TTL is accepted.
		{name: "data only", msg: &sender.FCMMessage{Data: map[string]string{"campaign_id": "camp-1"}, CollapseKey: "camp-1", Priority: "normal", TTL: time.Hour},
			token: validToken(2), requests: 1, want: sender.Result{Outcome: sender.Accepted, Status: 200}},
		// The mock's dead tokens are unregistered: prune them.
		{name: "unregistered", msg: alert(), token: deadToken(1), requests: 1,
			want: sender.Result{Outcome: sender.Permanent, Status: 404, Reason: "UNREGISTERED", InvalidToken: true}},
		// A token with characters FCM never issues.
		{name: "invalid token", msg: alert(), token: []byte("not a registration token at all"), requests: 1,
			want: sender.Result{Outcome: sender.Permanent, Status: 400, Reason: "INVALID_ARGUMENT"}},
		// A message over 4096 bytes.
		{name: "too big", msg: with(func(m *sender.FCMMessage) { m.Data = map[string]string{"x": strings.Repeat("x", 5000)} }),
			token: validToken(3), requests: 1, want: sender.Result{Outcome: sender.Permanent, Status: 400, Reason: "INVALID_ARGUMENT"}},
		// Sending for a project the credentials do not belong to.
		{name: "sender id mismatch", project: "another-project", msg: alert(), token: validToken(4), requests: 1,
			want: sender.Result{Outcome: sender.Permanent, Status: 403, Reason: "SENDER_ID_MISMATCH", InvalidToken: true}},
		// The SDK refuses a bad priority before sending anything.
		{name: "invalid message", msg: with(func(m *sender.FCMMessage) { m.Priority = "urgent" }), token: validToken(5), requests: 0,
			want: sender.Result{Outcome: sender.Permanent, Reason: provider.FCMInvalidMessage}},
		// Over quota, with a Retry-After to honour.
		{name: "429 retry-after", faults: errorFault("QUOTA_EXCEEDED", 7), msg: alert(), token: validToken(6), requests: 1,
			want: sender.Result{Outcome: sender.Transient, Status: 429, Reason: "QUOTA_EXCEEDED", RetryAfter: 7 * time.Second}},
		// A server error.
		{name: "500", faults: errorFault("INTERNAL", 0), msg: alert(), token: validToken(7), requests: 1,
			want: sender.Result{Outcome: sender.Transient, Status: 500, Reason: "INTERNAL"}},
		// Unavailable: the SDK would retry this on its own; it must not.
		{name: "503 retry-after", faults: errorFault("UNAVAILABLE", 3), msg: alert(), token: validToken(8), requests: 1,
			want: sender.Result{Outcome: sender.Transient, Status: 503, Reason: "UNAVAILABLE", RetryAfter: 3 * time.Second}},
		// An outage window.
		{name: "outage", faults: mockpush.PlatformFaults{Outage: mockpush.Outage{DurationMS: 60000}}, msg: alert(), token: validToken(9), requests: 1,
			want: sender.Result{Outcome: sender.Transient, Status: 503, Reason: "UNAVAILABLE"}},
		// A connection reset before the answer: the SDK would retry this too.
		{name: "connection reset", faults: mockpush.PlatformFaults{ResetAfterStreams: 1}, msg: alert(), token: validToken(10), requests: 1,
			want: sender.Result{Outcome: sender.Transient, Reason: provider.ReasonConnectionReset}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := srv.SetFaults(mockpush.Faults{FCM: tc.faults}); err != nil {
				t.Fatal(err)
			}
			cfg := mockConfig(r)
			cfg.Connections, cfg.Concurrency = 1, 1
			if tc.project != "" {
				cfg.ProjectID = tc.project
			}
			tr := newTransport(t, cfg)
			if tc.faults.ResetAfterStreams > 0 {
				// Reset faults count from the connection's first request.
				warm := batch(alert(), validToken(1000))
				send(t, tr, warm)
				if warm.Results[0].Outcome != sender.Accepted {
					t.Fatalf("warm-up send: %+v", warm.Results[0])
				}
			}
			srv.Reset()
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
			if n := srv.Stats().FCM.Received; n != tc.requests {
				t.Errorf("mock received %d send requests, want %d", n, tc.requests)
			}
		})
	}
}

func TestExpiredAccessToken(t *testing.T) {
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
	r := srv.Ready()
	tr := newTransport(t, mockConfig(r))
	ahead.Store(true) // the access token New fetched is now two hours old to the mock
	b := batch(alert(), validToken(1))
	send(t, tr, b)
	got := b.Results[0]
	if got.Outcome != sender.Transient || got.Status != 401 || got.Reason != "UNAUTHENTICATED" || !provider.FCMAuthFailure(got.Reason) {
		t.Errorf("result = %+v, want Transient 401 UNAUTHENTICATED", got)
	}
}

func TestMixedBatchFillsEveryResult(t *testing.T) {
	t.Parallel()
	srv := startMock(t, nil)
	r := srv.Ready()
	cfg := mockConfig(r)
	cfg.Connections, cfg.Concurrency = 3, 32
	tr := newTransport(t, cfg)
	const n = 250
	tokens := make([][]byte, n)
	for i := range tokens {
		if i%10 == 3 {
			tokens[i] = deadToken(i)
		} else {
			tokens[i] = validToken(i)
		}
	}
	b := batch(alert(), tokens...)
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
	st := srv.Stats().FCM
	if st.Received != n || st.Accepted != n-n/10 || st.Unique != n-n/10 || st.Duplicates != 0 || st.Rejected["UNREGISTERED"] != n/10 {
		t.Errorf("mock stats = %+v", st)
	}
}

func TestSurvivesGoAway(t *testing.T) {
	t.Parallel()
	srv := startMock(t, func(c *mockpush.Config) {
		c.Faults.FCM.GoAwayAfterStreams = 7
	})
	r := srv.Ready()
	cfg := mockConfig(r)
	cfg.Connections, cfg.Concurrency = 2, 8
	tr := newTransport(t, cfg)
	tokens := make([][]byte, 100)
	for i := range tokens {
		tokens[i] = validToken(i)
	}
	b := batch(alert(), tokens...)
	send(t, tr, b)
	checkGoAway(t, b.Results, srv.Stats().FCM)
}

// checkGoAway checks the results of a batch sent while the server closes every connection
// with GOAWAY after a few streams. The transport redials and resends what the server did
// not process; a send whose connection broke before the client could read the GOAWAY (the
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
	srv := startMock(t, nil)
	r := srv.Ready()
	slow := mockpush.Faults{FCM: mockpush.PlatformFaults{Latency: mockpush.Latency{FixedMS: 2000}}}

	t.Run("timeout", func(t *testing.T) {
		cfg := mockConfig(r)
		cfg.Timeout = 300 * time.Millisecond
		tr := newTransport(t, cfg) // fetches its access token before the mock slows down
		if err := srv.SetFaults(slow); err != nil {
			t.Fatal(err)
		}
		b := batch(alert(), validToken(1))
		send(t, tr, b)
		if got := b.Results[0]; got.Outcome != sender.Transient || got.Reason != provider.ReasonTimeout {
			t.Errorf("result = %+v, want Transient %q", got, provider.ReasonTimeout)
		}
	})

	t.Run("cancel part way", func(t *testing.T) {
		cfg := mockConfig(r)
		cfg.Connections, cfg.Concurrency = 1, 2
		tr := newTransport(t, cfg)
		if err := srv.SetFaults(slow); err != nil {
			t.Fatal(err)
		}
		tokens := make([][]byte, 20)
		for i := range tokens {
			tokens[i] = validToken(i)
		}
		b := batch(alert(), tokens...)
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
		if err := tr.Send(ctx, batch(alert(), validToken(1))); !errors.Is(err, context.Canceled) {
			t.Errorf("Send = %v, want context.Canceled", err)
		}
	})
}

func TestCloseThenSend(t *testing.T) {
	t.Parallel()
	srv := startMock(t, nil)
	tr, err := fcm.New(context.Background(), mockConfig(srv.Ready()))
	if err != nil {
		t.Fatal(err)
	}
	b := batch(alert(), validToken(1))
	send(t, tr, b)
	if err := tr.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := tr.Send(context.Background(), b); !errors.Is(err, fcm.ErrClosed) {
		t.Errorf("Send after Close = %v, want ErrClosed", err)
	}
}

func TestSendRejectsMalformedBatch(t *testing.T) {
	t.Parallel()
	srv := startMock(t, nil)
	r := srv.Ready()
	tr := newTransport(t, mockConfig(r))
	other := alert()
	other.Project = "another-project"
	tests := []struct {
		name string
		b    *sender.Batch
	}{
		// An iOS batch.
		{name: "platform", b: &sender.Batch{Platform: sender.PlatformIOS, FCM: alert()}},
		// No FCM message.
		{name: "no message", b: &sender.Batch{Platform: sender.PlatformAndroid}},
		// A message for another project than the transport's.
		{name: "project", b: batch(other, validToken(1))},
		// Results not sized to the tokens.
		{name: "results", b: &sender.Batch{Platform: sender.PlatformAndroid, FCM: alert(), Tokens: [][]byte{validToken(1)}}},
	}
	for _, tc := range tests {
		if err := tr.Send(context.Background(), tc.b); err == nil {
			t.Errorf("%s: Send = nil, want an error", tc.name)
		}
	}
	if st := srv.Stats().FCM; st.Received != 0 {
		t.Errorf("mock received %d sends, want 0", st.Received)
	}
}

func TestNewFailsFast(t *testing.T) {
	t.Parallel()
	srv := startMock(t, nil)
	r := srv.Ready()
	// A service account with the mock's token endpoint but a key the mock does not know.
	sa := serviceAccount(t, t.TempDir(), r.OAuthTokenURL, "salvo-mock")
	tests := []struct {
		name string
		edit func(*fcm.Config)
		want string
	}{
		// The token endpoint refuses the assertion.
		{name: "unknown key", edit: func(c *fcm.Config) { c.ServiceAccountFile = sa }, want: "access token"},
		// The service account file is missing.
		{name: "no file", edit: func(c *fcm.Config) { c.ServiceAccountFile = filepath.Join(t.TempDir(), "none.json") }, want: "service account"},
		// Without the mock's CA the token endpoint is not trusted.
		{name: "no CA", edit: func(c *fcm.Config) { c.CAFile = "" }, want: "access token"},
	}
	for _, tc := range tests {
		cfg := mockConfig(r)
		tc.edit(&cfg)
		tr, err := fcm.New(context.Background(), cfg)
		if err == nil {
			tr.Close()
			t.Errorf("%s: New = nil error, want one about %s", tc.name, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v, want an error about %s", tc.name, err, tc.want)
		}
	}
}

// serviceAccount writes a service account JSON key with a fresh RSA key, the given token
// endpoint and project, and returns its path.
func serviceAccount(t *testing.T, dir, tokenURL, project string) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     project,
		"private_key_id": "test-key",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "sender@" + project + ".iam.gserviceaccount.com",
		"token_uri":      tokenURL,
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sa.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConcurrencyBounded checks that requests in flight, connections and goroutines stay
// within the configured bounds whatever the batch size, and that Close ends every goroutine.
// It runs alone (no t.Parallel) so that the goroutine counts are its own, against a plain
// HTTP/2 server that plays both the token endpoint and FCM.
func TestConcurrencyBounded(t *testing.T) {
	const conns, concurrency, batches, size = 2, 8, 4, 250
	var inflight, peak, dialled, goroutinePeak atomic.Int64
	raise := func(v *atomic.Int64, n int64) {
		for p := v.Load(); n > p && !v.CompareAndSwap(p, n); p = v.Load() {
		}
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/token" {
			fmt.Fprint(w, `{"access_token":"ya29.test","token_type":"Bearer","expires_in":3599}`)
			return
		}
		n := inflight.Add(1)
		defer inflight.Add(-1)
		raise(&peak, n)
		raise(&goroutinePeak, int64(runtime.NumGoroutine()))
		runtime.Gosched() // let other streams overlap this one
		fmt.Fprint(w, `{"name":"projects/p/messages/1"}`)
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
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fcm.Config{Endpoint: srv.URL, ServiceAccountFile: serviceAccount(t, dir, srv.URL+"/token", "test-project"),
		CAFile: caFile, Connections: conns, Concurrency: concurrency}

	base := runtime.NumGoroutine()
	tr, err := fcm.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The sender goroutines, plus those of the connection that fetched the access token.
	if got := runtime.NumGoroutine() - base; got < concurrency || got > concurrency+8 {
		t.Errorf("New started %d goroutines, want %d sender goroutines and a connection's few", got, concurrency)
	}
	msg := &sender.FCMMessage{Data: map[string]string{"k": "v"}, CollapseKey: "c", Priority: "high"}
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
		t.Errorf("peak sends in flight = %d, want 1..%d", p, concurrency)
	}
	if d := dialled.Load(); d > conns {
		t.Errorf("dialled %d connections, want at most %d", d, conns)
	}
	// Per send in flight, net/http holds a few goroutines on each side (client stream,
	// timeout watch, server handler); per connection a few more; plus the Send callers.
	// None of it grows with the number of sends.
	if limit := int64(base + concurrency + 4*concurrency + 8*conns + batches + 8); goroutinePeak.Load() > limit {
		t.Errorf("peak goroutines %d, want at most %d for %d sends", goroutinePeak.Load(), limit, batches*size)
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

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := fcm.Config{ServiceAccountFile: "sa.json"}
	tests := []struct {
		name  string
		edit  func(*fcm.Config)
		field string // "" when valid
	}{
		// Google's endpoint and the defaults.
		{name: "valid", edit: func(*fcm.Config) {}},
		// A mock's endpoint.
		{name: "mock", edit: func(c *fcm.Config) { c.Endpoint = "https://127.0.0.1:8443" }},
		// The transport adds /v1 itself.
		{name: "endpoint path", edit: func(c *fcm.Config) { c.Endpoint = "https://127.0.0.1:8443/v1" }, field: "Endpoint"},
		{name: "http endpoint", edit: func(c *fcm.Config) { c.Endpoint = "http://127.0.0.1:8443" }, field: "Endpoint"},
		{name: "no service account", edit: func(c *fcm.Config) { c.ServiceAccountFile = "" }, field: "ServiceAccountFile"},
		{name: "negative connections", edit: func(c *fcm.Config) { c.Connections = -1 }, field: "Connections"},
		// More connections than goroutines to use them.
		{name: "connections over concurrency", edit: func(c *fcm.Config) { c.Connections, c.Concurrency = 9, 8 }, field: "Connections"},
		{name: "negative concurrency", edit: func(c *fcm.Config) { c.Concurrency = -1 }, field: "Concurrency"},
		{name: "negative timeout", edit: func(c *fcm.Config) { c.Timeout = -time.Second }, field: "Timeout"},
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

func TestConnectionLossInBatch(t *testing.T) {
	t.Parallel()
	// Every connection is reset at its 11th send; the transport redials.
	srv := startMock(t, func(c *mockpush.Config) { c.Faults.FCM.ResetAfterStreams = 10 })
	r := srv.Ready()
	cfg := mockConfig(r)
	cfg.Connections, cfg.Concurrency = 2, 16
	tr := newTransport(t, cfg)
	tokens := make([][]byte, 200)
	for i := range tokens {
		tokens[i] = validToken(i)
	}
	b := batch(alert(), tokens...)
	send(t, tr, b)
	var accepted, transient int64
	for i, res := range b.Results {
		switch {
		case res.Outcome == sender.Accepted:
			accepted++
		case res.Outcome == sender.Transient && res.Status == 0:
			transient++
		default:
			t.Errorf("result %d = %+v", i, res)
		}
	}
	// Each message is tried once: the mock handled at most one request per message (requests
	// on a connection it resets may never reach it). An answer lost with its connection may
	// hide an acceptance, never invent one.
	st := srv.Stats().FCM
	if st.Received > 200 || accepted == 0 || accepted > st.Accepted || st.Duplicates != 0 {
		t.Errorf("%d accepted, %d transient; mock stats %+v", accepted, transient, st)
	}
}

// BenchmarkSend sends batches of 250 to the in-process mock with the default pool (4
// connections, 256 sends in flight). Allocations include the mock's unless
// SALVO_MOCKPUSH_READY names the ready file of a `salvo mockpush` running apart.
func BenchmarkSend(b *testing.B) {
	const size = 250
	tr := newTransport(b, mockConfig(benchMock(b)))
	tokens := make([][]byte, size)
	for i := range tokens {
		tokens[i] = validToken(i)
	}
	bt := batch(&sender.FCMMessage{Data: map[string]string{"campaign_id": "camp-1"}, CollapseKey: "camp-1", Priority: "high"}, tokens...)
	ctx := context.Background()
	if err := tr.Send(ctx, bt); err != nil { // dial before timing
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
