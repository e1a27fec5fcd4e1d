package mockpush

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sideshow/apns2"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// outcomes sends n pushes one after another and returns each answer's reason ("" for 200).
func outcomes(t *testing.T, c *apns2.Client, r Ready, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		res, err := c.Push(&apns2.Notification{DeviceToken: hexToken(i), Topic: r.APNsTopic, Payload: []byte(`{"aps":{}}`)})
		if err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
		out[i] = res.Reason
	}
	return out
}

func TestFaultsAreReproducible(t *testing.T) {
	s := startServer(t, nil)
	r := s.Ready()
	c := apnsClient(t, r, apnsToken(t, r))
	faults := func(seed uint64) Faults {
		return Faults{Seed: seed, APNs: PlatformFaults{Errors: []ErrorFault{
			{Reason: "TooManyRequests", Rate: 0.2, RetryAfterSeconds: 1},
			{Reason: "InternalServerError", Rate: 0.1},
		}}}
	}
	run := func(seed uint64) []string {
		if err := s.SetFaults(faults(seed)); err != nil {
			t.Fatal(err)
		}
		return outcomes(t, c, r, 60)
	}
	a, b, other := run(7), run(7), run(8)
	if strings.Join(a, ",") != strings.Join(b, ",") {
		t.Fatalf("same seed, different fates:\n%v\n%v", a, b)
	}
	if strings.Join(a, ",") == strings.Join(other, ",") {
		t.Fatalf("seeds 7 and 8 gave the same 60 fates")
	}
	counts := map[string]int{}
	for _, o := range a {
		counts[o]++
	}
	if counts["TooManyRequests"] == 0 || counts["InternalServerError"] == 0 || counts[""] == 0 {
		t.Fatalf("fates %v", counts)
	}
}

func TestInjectorDecisions(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name   string
		faults PlatformFaults
		at     time.Duration // after the faults are set
		delay  time.Duration
		reason string
	}{
		// No faults, no effect.
		{"none", PlatformFaults{}, 0, 0, ""},
		// A fixed latency alone.
		{"fixed latency", PlatformFaults{Latency: Latency{FixedMS: 25}}, 0, 25 * time.Millisecond, ""},
		// The cap bounds fixed plus random latency.
		{"capped latency", PlatformFaults{Latency: Latency{FixedMS: 25, Distribution: "uniform", MeanMS: 1000, MaxMS: 30}}, 0, 30 * time.Millisecond, ""},
		// Every request fails at rate 1.
		{"rate 1", PlatformFaults{Errors: []ErrorFault{{Reason: "Shutdown", Rate: 1}}}, 0, 0, "Shutdown"},
		// Inside the outage window.
		{"in outage", PlatformFaults{Outage: Outage{StartAfterMS: 1000, DurationMS: 1000}}, 1500 * time.Millisecond, 0, "ServiceUnavailable"},
		// Before the outage window.
		{"before outage", PlatformFaults{Outage: Outage{StartAfterMS: 1000, DurationMS: 1000}}, 500 * time.Millisecond, 0, ""},
		// After the outage window.
		{"after outage", PlatformFaults{Outage: Outage{StartAfterMS: 1000, DurationMS: 1000}}, 2500 * time.Millisecond, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := newInjector(apnsInjectable, "ServiceUnavailable")
			in.set(tc.faults, 1, 1, t0)
			d := in.decide(t0.Add(tc.at))
			if d.delay != tc.delay || d.reason != tc.reason {
				t.Fatalf("got %v %q, want %v %q", d.delay, d.reason, tc.delay, tc.reason)
			}
		})
	}
}

func TestFaultsValidate(t *testing.T) {
	tests := []struct {
		name string
		json string
		ok   bool
	}{
		// The empty object is no faults.
		{"empty", `{}`, true},
		// A full example.
		{"full", `{"seed":3,"apns":{"latency":{"fixed_ms":2,"distribution":"exponential","mean_ms":5,"max_ms":100},
			"errors":[{"reason":"TooManyRequests","rate":0.01,"retry_after_seconds":1}],"goaway_after_streams":1000,
			"reset_after_streams":5000,"outage":{"start_after_ms":0,"duration_ms":3000},"one_stream_until_accepted":true,
			"drop_streams_on_reject":true},"fcm":{"errors":[{"reason":"UNAVAILABLE","rate":0.5}]}}`, true},
		// An APNs reason given to FCM.
		{"wrong platform reason", `{"fcm":{"errors":[{"reason":"TooManyRequests","rate":0.1}]}}`, false},
		// Rates above 1 in total.
		{"rates over 1", `{"apns":{"errors":[{"reason":"Shutdown","rate":0.6},{"reason":"TooManyRequests","rate":0.6}]}}`, false},
		// Unknown distribution.
		{"bad distribution", `{"apns":{"latency":{"distribution":"pareto"}}}`, false},
		// Unknown field.
		{"unknown field", `{"apns":{"latencies":{}}}`, false},
		// Negative count.
		{"negative goaway", `{"apns":{"goaway_after_streams":-1}}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFaults([]byte(tc.json))
			if (err == nil) != tc.ok {
				t.Fatalf("ParseFaults: %v", err)
			}
		})
	}
}

// countingTransport returns an HTTP/2 transport that counts the connections it dials.
func countingTransport(t *testing.T, r Ready, dials *atomic.Int64) *http2.Transport {
	cfg := tlsConfig(t, r)
	tr := &http2.Transport{TLSClientConfig: cfg, DialTLSContext: func(ctx context.Context, network, addr string, c *tls.Config) (net.Conn, error) {
		dials.Add(1)
		d := tls.Dialer{Config: c}
		return d.DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func TestGoAwayAndResetFaults(t *testing.T) {
	s := startServer(t, nil)
	r := s.Ready()
	t.Run("goaway after 2 streams", func(t *testing.T) {
		if err := s.SetFaults(Faults{APNs: PlatformFaults{GoAwayAfterStreams: 2}}); err != nil {
			t.Fatal(err)
		}
		var dials atomic.Int64
		c := apnsClient(t, r, apnsToken(t, r))
		c.HTTPClient = &http.Client{Transport: countingTransport(t, r, &dials)}
		for i, o := range outcomes(t, c, r, 6) {
			if o != "" {
				t.Fatalf("push %d: %s", i, o)
			}
		}
		if got := dials.Load(); got != 3 {
			t.Fatalf("6 pushes with GOAWAY after 2 used %d connections, want 3", got)
		}
	})
	t.Run("reset after 2 streams", func(t *testing.T) {
		s.Reset()
		if err := s.SetFaults(Faults{APNs: PlatformFaults{ResetAfterStreams: 2}}); err != nil {
			t.Fatal(err)
		}
		c := apnsClient(t, r, apnsToken(t, r))
		n := &apns2.Notification{DeviceToken: hexToken(1), Topic: r.APNsTopic, Payload: []byte(`{}`)}
		for i := 0; i < 2; i++ {
			if res, err := c.Push(n); err != nil || !res.Sent() {
				t.Fatalf("push %d: %v %+v", i, err, res)
			}
		}
		if _, err := c.Push(n); err == nil {
			t.Fatal("third push on the connection got an answer, want a reset")
		}
		if got := s.Stats().APNs.Rejected["ConnectionReset"]; got != 1 {
			t.Fatalf("ConnectionReset = %d", got)
		}
	})
	s.SetFaults(Faults{})
}

func TestOutageAndLatencyOverControlAPI(t *testing.T) {
	s := startServer(t, nil)
	r := s.Ready()
	ctl := &Control{URL: r.ControlURL}
	ctx := context.Background()
	c := apnsClient(t, r, apnsToken(t, r))
	if err := ctl.SetFaults(ctx, Faults{APNs: PlatformFaults{Outage: Outage{DurationMS: 60000, RetryAfterSeconds: 5}}}); err != nil {
		t.Fatal(err)
	}
	for _, o := range outcomes(t, c, r, 3) {
		if o != apns2.ReasonServiceUnavailable {
			t.Fatalf("during outage: %q", o)
		}
	}
	f, err := ctl.Faults(ctx)
	if err != nil || f.APNs.Outage.DurationMS != 60000 {
		t.Fatalf("GET /faults: %+v %v", f, err)
	}
	// Delayed answers come from the connection's timer heap, in any order, all answered.
	if err := ctl.SetFaults(ctx, Faults{Seed: 1, APNs: PlatformFaults{Latency: Latency{FixedMS: 1, Distribution: "exponential", MeanMS: 5, MaxMS: 50}}}); err != nil {
		t.Fatal(err)
	}
	if err := ctl.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 20)
	for i := 0; i < 20; i++ {
		go func() {
			res, err := c.Push(&apns2.Notification{DeviceToken: hexToken(100 + i), Topic: r.APNsTopic, Payload: []byte(`{}`)})
			if err != nil {
				done <- err.Error()
				return
			}
			done <- res.Reason
		}()
	}
	for i := 0; i < 20; i++ {
		if o := <-done; o != "" {
			t.Fatalf("delayed push: %q", o)
		}
	}
	st, err := ctl.Stats(ctx)
	if err != nil || st.APNs.Accepted != 20 || st.APNs.Unique != 20 || st.Process == nil || st.Process.CPUSeconds <= 0 {
		t.Fatalf("stats %+v %v", st, err)
	}
	rc, err := ctl.Receipts(ctx, "apns")
	if err != nil || len(rc.Offsets) != 20 {
		t.Fatalf("receipts: %d %v", len(rc.Offsets), err)
	}
	for _, d := range rc.Since(rc.Epoch) {
		if d < 0 || d > time.Minute {
			t.Fatalf("arrival %v after the epoch", d)
		}
	}
	if _, err := ctl.Receipts(ctx, "sms"); err == nil {
		t.Fatal("receipts for an unknown platform")
	}
	if err := ctl.SetFaults(ctx, Faults{APNs: PlatformFaults{GoAwayAfterStreams: -1}}); err == nil {
		t.Fatal("PUT /faults accepted a negative count")
	}
}

// frameClient is a bare HTTP/2 client for watching SETTINGS.
type frameClient struct {
	fr   *http2.Framer
	enc  *hpack.Encoder
	buf  strings.Builder
	next uint32
	r    Ready
	auth string
}

func dialFrames(t *testing.T, r Ready) *frameClient {
	t.Helper()
	cfg := tlsConfig(t, r)
	cfg.NextProtos = []string{"h2"}
	nc, err := tls.Dial("tcp", strings.TrimPrefix(r.APNsURL, "https://"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	nc.Write([]byte(http2.ClientPreface))
	c := &frameClient{fr: http2.NewFramer(nc, nc), next: 1, r: r, auth: "bearer " + apnsToken(t, r).GenerateIfExpired()}
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.WriteSettings()
	return c
}

// push sends one push and returns the MAX_CONCURRENT_STREAMS values announced before its
// answer and the answer's status.
func (c *frameClient) push(t *testing.T, token string) ([]uint32, string) {
	t.Helper()
	var hb []byte
	enc := hpack.NewEncoder(&byteWriter{&hb})
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", "localhost"},
		{":path", "/3/device/" + token}, {"authorization", c.auth}, {"apns-topic", c.r.APNsTopic}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	id := c.next
	c.next += 2
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb, EndHeaders: true})
	c.fr.WriteData(id, true, []byte(`{"aps":{}}`))
	var limits []uint32
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if v, ok := f.Value(http2.SettingMaxConcurrentStreams); ok {
					limits = append(limits, v)
				}
				c.fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == id {
				return limits, f.PseudoValue("status")
			}
		}
	}
}

type byteWriter struct{ b *[]byte }

func (w *byteWriter) Write(p []byte) (int, error) { *w.b = append(*w.b, p...); return len(p), nil }

func TestStreamLimitBehaviours(t *testing.T) {
	s := startServer(t, func(c *Config) {
		c.MaxConcurrentStreams = 500
		c.Faults.APNs.OneStreamUntilAccepted = true
		c.Faults.APNs.DropStreamsOnReject = true
	})
	c := dialFrames(t, s.Ready())
	steps := []struct {
		token  string
		limits []uint32 // MAX_CONCURRENT_STREAMS announced before the answer
		status string
	}{
		// A new connection starts at 1 stream and opens up after the first accepted push.
		{hexToken(1), []uint32{1, 500}, "200"},
		// A rejected push drops the connection back to 1 stream.
		{"bad", []uint32{1}, "400"},
		// The next accepted push restores the limit.
		{hexToken(2), []uint32{500}, "200"},
	}
	for i, st := range steps {
		limits, status := c.push(t, st.token)
		if status != st.status || len(limits) != len(st.limits) {
			t.Fatalf("step %d: limits %v status %s, want %v %s", i, limits, status, st.limits, st.status)
		}
		for j := range limits {
			if limits[j] != st.limits[j] {
				t.Fatalf("step %d: limits %v, want %v", i, limits, st.limits)
			}
		}
	}
}
