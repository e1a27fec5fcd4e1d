package gameday

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/results"
	"github.com/salvopush/salvo/sender/api"
	"github.com/salvopush/salvo/sender/auth"
	"github.com/salvopush/salvo/sender/prom"
)

// rehearsal is a rehearsal against an in-process mock, configured only through its config
// file, as tools outside the project drive `salvo gameday` (url and ca_file).
type rehearsal struct {
	t    *testing.T
	dir  string
	mock *mockpush.Server
	cfg  *Config
	// ios and android are the audience's tokens (valid unless made with dead).
	ios, android []string
}

// newRehearsal starts a mock and writes a config and a tokens file of ios + android
// devices, the last dead of each platform unregistered at the mock.
func newRehearsal(t *testing.T, ios, android, dead int, edit func(r *rehearsal, m map[string]any)) *rehearsal {
	t.Helper()
	if testing.Short() {
		t.Skip("rehearsals against the mock: skipped in -short mode")
	}
	r := &rehearsal{t: t, dir: t.TempDir()}
	mc := mockpush.DefaultConfig()
	mc.Dir = filepath.Join(r.dir, "mock")
	var err error
	if r.mock, err = mockpush.Start(context.Background(), mc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.mock.Close() })
	rd := r.mock.Ready()
	var tokens strings.Builder
	tokens.WriteString("platform,token\n")
	for i := range ios {
		tok := fmt.Sprintf("%064x", i+1)
		if i >= ios-dead {
			tok = mockpush.UnregisteredMarker + tok[len(mockpush.UnregisteredMarker):]
		}
		r.ios = append(r.ios, tok)
		fmt.Fprintf(&tokens, "ios,%s\n", tok)
	}
	for i := range android {
		tok := fmt.Sprintf("fcm-%0150d", i+1)
		if i >= android-dead {
			tok = mockpush.UnregisteredMarker + tok
		}
		r.android = append(r.android, tok)
		fmt.Fprintf(&tokens, "android,%s\n", tok)
	}
	if err := os.WriteFile(filepath.Join(r.dir, "tokens.csv"), []byte(tokens.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	m := map[string]any{
		"name":           "rehearsal-1",
		"apns":           map[string]any{"url": rd.APNsURL, "key_file": rd.APNsKeyFile, "key_id": rd.APNsKeyID, "team_id": rd.APNsTeamID, "topic": rd.APNsTopic, "ca_file": rd.CAFile},
		"fcm":            map[string]any{"project_id": rd.FCMProjectID, "service_account_file": rd.FCMServiceAccountFile, "url": rd.FCMURL, "ca_file": rd.CAFile},
		"tokens_file":    "tokens.csv",
		"allowlist_file": "",
		"max_recipients": 100000,
		"apns_payload":   map[string]any{"aps": map[string]any{"content-available": 1}},
		"fcm_data":       map[string]any{"rehearsal": "1"},
	}
	if edit != nil {
		edit(r, m)
	}
	data, _ := json.Marshal(m)
	path := filepath.Join(r.dir, "gameday.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if r.cfg, err = ParseConfig(data); err != nil {
		t.Fatal(err)
	}
	r.cfg.Resolve(r.dir)
	return r
}

// run plays the rehearsal with opts (Out and Yes set) under ctx.
func (r *rehearsal) run(ctx context.Context, opts Options) (*results.Report, error) {
	if opts.Out == "" {
		opts.Out = filepath.Join(r.dir, "out")
	}
	opts.Yes = opts.Confirm == nil
	return Run(ctx, r.cfg, opts)
}

// TestRehearsal: a run delivers to every device once, the mock's own counts agree, the
// report is a gameday report with figures per provider, and the condemned tokens are in
// the feedback file.
func TestRehearsal(t *testing.T) {
	t.Parallel()
	r := newRehearsal(t, 30, 30, 2, nil)
	rep, err := r.run(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Pass || rep.Mode != results.ModeGameday || rep.Aborted == nil || *rep.Aborted || rep.Mock != nil {
		t.Fatalf("report: pass %v mode %q aborted %v mock %v failures %q", rep.Pass, rep.Mode, rep.Aborted, rep.Mock, rep.Failures)
	}
	st := r.mock.Stats()
	// Independently of the sender: the mock accepted each valid device once.
	if st.APNs.Unique != 28 || st.FCM.Unique != 28 || st.APNs.Duplicates+st.FCM.Duplicates != 0 {
		t.Fatalf("mock: %+v", st)
	}
	if rep.Delivery.Accepted != 56 || rep.Delivery.Rejected["Unregistered"] != 2 || rep.Delivery.Rejected["UNREGISTERED"] != 2 {
		t.Fatalf("delivery %+v", rep.Delivery)
	}
	if p := rep.Providers["apns"]; p.Recipients != 30 || p.Accepted != 28 || p.Rejected["Unregistered"] != 2 {
		t.Fatalf("apns figures %+v", p)
	}
	feedback, err := os.ReadFile(filepath.Join(r.dir, "out", FeedbackFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, dead := range []string{"ios," + r.ios[29] + ",Unregistered", "android," + r.android[29] + ",UNREGISTERED"} {
		if !strings.Contains(string(feedback), dead) {
			t.Errorf("%s lacks %s:\n%s", FeedbackFile, dead, feedback)
		}
	}
	if !strings.Contains(strings.Join(rep.Notes, " "), "not display on a device") {
		t.Errorf("notes %q do not say that acceptance is not display", rep.Notes)
	}
}

// TestRefusedBeforeAnyPush: a visible payload, a token outside the allowlist, an audience
// over max_recipients, a declined confirmation: refused, and the mock accepted nothing
// (the first three before the preflight: it received nothing at all).
func TestRefusedBeforeAnyPush(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		edit     func(r *rehearsal, m map[string]any)
		confirm  string // typed at the confirmation; "" runs with Yes
		field    string // the error names it
		received bool   // the preflight reached the mock
	}{
		// An alert in the payload.
		{"visible payload", func(_ *rehearsal, m map[string]any) {
			m["apns_payload"] = map[string]any{"aps": map[string]any{"content-available": 1, "alert": map[string]any{"title": "hi"}}}
		}, "", "apns_payload", false},
		// The allowlist lacks the audience's last Android token.
		{"outside the allowlist", func(r *rehearsal, m map[string]any) {
			all, _ := os.ReadFile(filepath.Join(r.dir, "tokens.csv"))
			lines := strings.Split(strings.TrimSpace(string(all)), "\n")
			os.WriteFile(filepath.Join(r.dir, "allow.csv"), []byte(strings.Join(lines[:len(lines)-1], "\n")), 0o600)
			m["allowlist_file"] = "allow.csv"
		}, "", "allowlist_file", false},
		// 20 devices, at most 19.
		{"over max_recipients", func(_ *rehearsal, m map[string]any) { m["max_recipients"] = 19 }, "", "max_recipients", false},
		// The person at the terminal typed something else than the name.
		{"declined", nil, "yes\n", "confirmation", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRehearsal(t, 10, 10, 0, tc.edit)
			opts := Options{}
			if tc.confirm != "" {
				opts.Confirm = strings.NewReader(tc.confirm)
			}
			_, err := r.run(context.Background(), opts)
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %v, want a refusal naming %s", err, tc.field)
			}
			st := r.mock.Stats()
			if st.APNs.Accepted+st.FCM.Accepted != 0 {
				t.Fatalf("the mock accepted pushes: %+v", st)
			}
			if got := st.APNs.Received + st.FCM.Received + st.FCM.ValidateOnly; (got > 0) != tc.received {
				t.Fatalf("the mock received %d requests (preflight expected: %v)", got, tc.received)
			}
		})
	}
}

// peakPerSecond counts the mock's acceptances in one-second bins from the first and returns
// the busiest bin and the total.
func peakPerSecond(t *testing.T, m *mockpush.Server, platform string) (peak, total int) {
	t.Helper()
	rc, err := m.Receipts(platform)
	if err != nil {
		t.Fatal(err)
	}
	if len(rc.Offsets) == 0 {
		return 0, 0
	}
	first := rc.Offsets[0]
	for _, o := range rc.Offsets {
		first = min(first, o)
	}
	bins := map[uint32]int{}
	for _, o := range rc.Offsets {
		b := (o - first) / 1_000_000
		bins[b]++
		peak = max(peak, bins[b])
	}
	return peak, len(rc.Offsets)
}

// TestRateCapHeld: with rate_per_second 50, every second the mock sees at most 55 pushes of
// each provider (the cap plus 10%), counted by the mock from its own receipts in one-second
// bins, over a run of 100 devices per provider; and the report's own measure agrees.
func TestRateCapHeld(t *testing.T) {
	t.Parallel()
	const rate = 50
	r := newRehearsal(t, 100, 100, 0, func(_ *rehearsal, m map[string]any) { m["rate_per_second"] = rate })
	rep, err := r.run(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"apns", "fcm"} {
		peak, total := peakPerSecond(t, r.mock, p)
		t.Logf("%s: %d accepted, at most %d in one second (cap %d); report: busiest second %v", p, total, peak, rate, rep.Providers[p].PushesPeak1s)
		if total != 100 {
			t.Errorf("%s: the mock accepted %d, want 100", p, total)
		}
		if float64(peak) > results.RateAllowance(rate) {
			t.Errorf("%s: %d pushes in one second at the mock, cap %d (+10%%)", p, peak, rate)
		}
	}
	if !rep.Pass {
		t.Errorf("report failures %q", rep.Failures)
	}
}

// syncBuffer is a buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var abortHint = regexp.MustCompile(`POST (http://\S+)/v1/campaigns/(\S+)/abort with the bearer token in (\S+)`)

// TestAbortStopsPushesWithinASecond: an interrupt (what Ctrl-C and SIGTERM do) or the abort
// route stops new pushes within a second: the mock accepts nothing later than one second
// after the interrupt, or after the abort request returned. The rehearsal is slowed by a rate
// cap so that it is still sending then; the report is written, aborted, and fails.
func TestAbortStopsPushesWithinASecond(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"interrupt", "abort route"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			r := newRehearsal(t, 100, 100, 0, func(_ *rehearsal, m map[string]any) { m["rate_per_second"] = 20 })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			progress := &syncBuffer{}
			type outcome struct {
				rep *results.Report
				err error
			}
			done := make(chan outcome, 1)
			go func() {
				rep, err := r.run(ctx, Options{Progress: progress})
				done <- outcome{rep, err}
			}()
			// Wait (bounded) until the send is well under way.
			deadline := time.Now().Add(2 * time.Minute)
			for st := r.mock.Stats(); st.APNs.Accepted+st.FCM.Accepted < 10; st = r.mock.Stats() {
				if time.Now().After(deadline) {
					t.Fatalf("no pushes: %s", progress.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			var stoppedAt time.Time
			if how == "interrupt" {
				stoppedAt = time.Now()
				cancel()
			} else {
				m := abortHint.FindStringSubmatch(progress.String())
				if m == nil {
					t.Fatalf("no abort hint in the plan:\n%s", progress.String())
				}
				raw, err := os.ReadFile(m[3])
				if err != nil {
					t.Fatal(err)
				}
				token, _ := auth.ReadToken(bytes.NewReader(raw))
				if _, err := (&api.Client{URL: m[1], Token: token}).Abort(context.Background(), m[2], "test"); err != nil {
					t.Fatal(err)
				}
				stoppedAt = time.Now()
			}
			var o outcome
			select {
			case o = <-done:
			case <-time.After(2 * time.Minute):
				t.Fatal("the run did not end after the abort")
			}
			if o.err != nil {
				t.Fatal(o.err)
			}
			if o.rep.Aborted == nil || !*o.rep.Aborted || o.rep.Pass {
				t.Fatalf("report aborted %v pass %v", o.rep.Aborted, o.rep.Pass)
			}
			late, total, last := 0, 0, time.Duration(0)
			for _, p := range []string{"apns", "fcm"} {
				rc, err := r.mock.Receipts(p)
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range rc.Since(stoppedAt) {
					total++
					last = max(last, d)
					if d > time.Second {
						late++
					}
				}
			}
			t.Logf("%s: %d pushes accepted in all (of 200), the last %v after the stop; %d more than a second after it", how, total, last, late)
			if late > 0 {
				t.Fatalf("%d pushes reached the mock more than a second after the %s", late, how)
			}
			if total >= 200 {
				t.Fatal("everything was sent: the abort came too late to test anything")
			}
		})
	}
}

// TestDryRun: a dry run sends FCM validate_only for every Android device and nothing else
// but the APNs preflight: the mock counts the validate_only requests and accepts nothing;
// the condemned tokens are still found.
func TestDryRun(t *testing.T) {
	t.Parallel()
	r := newRehearsal(t, 10, 20, 1, func(_ *rehearsal, m map[string]any) { m["dry_run"] = true })
	rep, err := r.run(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := r.mock.Stats()
	// 19 valid Android tokens validated plus the preflight's sample of 5.
	if st.FCM.ValidateOnly != 19+5 || st.FCM.Received != 1 || st.FCM.Rejected["UNREGISTERED"] != 1 {
		t.Fatalf("mock fcm %+v", st.FCM)
	}
	if st.APNs.Accepted+st.FCM.Accepted != 0 || st.APNs.Received != 1 || st.APNs.Rejected["BadDeviceToken"] != 1 {
		t.Fatalf("deliveries at the mock: %+v", st)
	}
	if !rep.Pass || rep.Delivery.Accepted != 19 || rep.Delivery.Rejected["UNREGISTERED"] != 1 || rep.Audience.Recipients != 20 {
		t.Fatalf("report pass %v failures %q delivery %+v audience %+v", rep.Pass, rep.Failures, rep.Delivery, rep.Audience)
	}
	feedback, _ := os.ReadFile(filepath.Join(r.dir, "out", FeedbackFile))
	if !strings.Contains(string(feedback), r.android[19]) {
		t.Errorf("the condemned Android token is not in %s", FeedbackFile)
	}
}

// TestSecretsStayOut: no secret reaches the logs (JSON), the progress output, the report's
// files or the metrics: not the APNs signing key, not the service account's private key, not
// an OAuth access token or a JWT, not the API's bearer token; and no device token reaches
// any of them but the invalid-token file, which exists to hold them.
func TestSecretsStayOut(t *testing.T) {
	t.Parallel()
	r := newRehearsal(t, 10, 10, 1, nil)
	logs := &syncBuffer{}
	var apiToken string
	progress := writerFunc(func(p []byte) {
		if m := abortHint.FindSubmatch(p); m != nil {
			raw, _ := os.ReadFile(string(m[3]))
			apiToken, _ = auth.ReadToken(bytes.NewReader(raw))
		}
	})
	metrics := prom.New()
	rep, err := r.run(context.Background(), Options{Progress: io.MultiWriter(logs, progress), Metrics: metrics,
		Log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil || !rep.Pass {
		t.Fatalf("run: %v %v", err, rep)
	}
	if apiToken == "" {
		t.Fatal("the API token was not seen: the test would check nothing")
	}
	srv := httptest.NewServer(metrics.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	scraped, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	places := map[string]string{"logs and progress": logs.String(), "metrics": string(scraped)}
	entries, _ := os.ReadDir(filepath.Join(r.dir, "out"))
	for _, e := range entries {
		if e.Name() == FeedbackFile {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(r.dir, "out", e.Name()))
		places[e.Name()] = string(b)
	}
	rd := r.mock.Ready()
	var secrets []string
	for _, f := range []string{rd.APNsKeyFile, rd.FCMServiceAccountFile} {
		b, _ := os.ReadFile(f)
		text := strings.ReplaceAll(string(b), `\n`, "\n") // the service account's key is JSON-escaped PEM
		sc := bufio.NewScanner(strings.NewReader(text))
		for sc.Scan() {
			if line := strings.Trim(strings.TrimSpace(sc.Text()), `",`); len(line) >= 40 && !strings.Contains(line, " ") {
				secrets = append(secrets, line) // a line of base64 key material
			}
		}
	}
	if len(secrets) < 4 {
		t.Fatalf("found only %d lines of key material: the test would check little", len(secrets))
	}
	secrets = append(secrets, apiToken, "ya29.", "eyJ", "PRIVATE KEY")
	secrets = append(secrets, r.ios...)
	secrets = append(secrets, r.android...)
	for where, text := range places {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s holds a secret or a device token (%.12s...)", where, s)
			}
		}
	}
	if !strings.Contains(places["metrics"], "salvo_pushes_total") || !strings.Contains(places["report.json"], `"mode": "gameday"`) {
		t.Error("the places checked are not what they should be: the test would check nothing")
	}
}

// writerFunc calls fn with every write.
type writerFunc func(p []byte)

func (f writerFunc) Write(p []byte) (int, error) {
	f(p)
	return len(p), nil
}
