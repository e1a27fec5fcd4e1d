package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/salvopush/salvo/loadgen"
	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/results"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
	"github.com/salvopush/salvo/sender/auth"
	"github.com/salvopush/salvo/sender/metrics"
)

func TestRejectedByReason(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		total        int64
		by           map[string]int64
		want         map[string]int64
		unattributed int64
	}{
		// The published reasons add up to the ledger's count.
		{"agree", 5, map[string]int64{"Unregistered": 4, "BadDeviceToken": 1}, map[string]int64{"Unregistered": 4, "BadDeviceToken": 1}, 0},
		// A worker died before publishing two rejections: counted without a reason.
		{"reasons missing", 5, map[string]int64{"Unregistered": 3}, map[string]int64{"Unregistered": 3, "(reason not published)": 2}, 2},
		// Workers published one rejection twice (a push repeated after a death): the ledger's
		// count is kept, the excess comes off the largest reason and is reported.
		{"reasons over-counted", 5, map[string]int64{"Unregistered": 4, "BadDeviceToken": 2}, map[string]int64{"Unregistered": 3, "BadDeviceToken": 2}, -1},
		// Nothing rejected, nothing published.
		{"none", 0, nil, map[string]int64{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, un := rejectedByReason(tc.total, tc.by)
			if !maps.Equal(got, tc.want) || un != tc.unattributed {
				t.Fatalf("rejectedByReason(%d, %v) = %v, %d; want %v, %d", tc.total, tc.by, got, un, tc.want, tc.unattributed)
			}
		})
	}
}

// TestLiveInputsStateTheGap checks that a send whose figures lack acceptances the ledger
// has gives a report that states them and still passes its truth checks, and that the
// audience and counts come from the record and the ledger.
func TestLiveInputsStateTheGap(t *testing.T) {
	t.Parallel()
	pressed := time.Date(2026, 11, 22, 20, 15, 0, 0, time.UTC)
	rec := &sender.CampaignRecord{ID: "spot", State: sender.StateDone, Spec: sender.CampaignSpec{Name: "the spot"},
		Resolution: sender.ResolutionStatus{UsersTotal: 9, Recipients: 10, IOS: 6, Android: 4, ControlDevices: 2, ControlIOS: 1},
		Send:       &sender.SendInfo{ID: "s1", PressedAt: pressed}}
	fig := sender.NewSendStats()
	for i := 1; i <= 7; i++ { // one of the 8 acceptances was never published
		metrics.RecordLatency(fig.Latency, time.Duration(i)*100*time.Millisecond)
		fig.Timeline.Add(time.Duration(i)*100*time.Millisecond, true)
	}
	fig.Timeline.Add(50*time.Millisecond, false)
	p := &sender.Progress{Recipients: 10, Accepted: 8, Rejected: 2, RejectedBy: map[string]int64{"Unregistered": 1}, Source: "ledger"}
	in := liveInputs(rec, p, fig, []sender.WorkerFigures{{Worker: "w1"}, {Worker: "w2"}, {Worker: "w1"}})
	r := results.Build(in)
	if !r.Pass {
		t.Fatalf("failures %q", r.Failures)
	}
	if r.NoLatencySample == nil || *r.NoLatencySample != 1 {
		t.Errorf("no_latency_sample %v, want 1", r.NoLatencySample)
	}
	want := results.Audience{Recipients: 12, IOS: 7, Android: 5, Control: 2}
	if r.Audience != want || r.Delivery.Accepted != 8 || r.Delivery.Rejected["(reason not published)"] != 1 {
		t.Errorf("audience %+v, delivery %+v; want %+v, 8 accepted, 1 rejection without a published reason", r.Audience, r.Delivery, want)
	}
	if r.Mock != nil || r.Scenario != "live" || r.Config.Extra["mode"] != "live" || r.Config.Workers != 2 || !r.StartedAt.Equal(pressed) {
		t.Errorf("mock %v, scenario %q, extra %v, workers %d, started %v", r.Mock, r.Scenario, r.Config.Extra, r.Config.Workers, r.StartedAt)
	}
}

// TestReportOfAnEmbeddedSend runs `salvo all` (in this process) with an auth file, sends a
// campaign with a control group and unregistered tokens to the in-process mock servers, and
// checks `salvo report` and the report routes: refused before GO, the standard folder after,
// counts that the mock confirms on its own, the viewer role enforced, and the same report
// from a restart on the same --data (a report fetched later).
func TestReportOfAnEmbeddedSend(t *testing.T) {
	if testing.Short() {
		t.Skip("a whole embedded send: skipped in -short mode")
	}
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	reg := filepath.Join(dir, "registry")
	var out bytes.Buffer
	if code := run(ctx, []string{"gen", "registry", "--users", "1500", "--invalid-share", "0.02", "--seed", "3", "--out", reg}, &out, &out); code != 0 {
		t.Fatalf("gen: exit %d: %s", code, out.String())
	}
	cfg := mockpush.DefaultConfig()
	cfg.Dir = filepath.Join(dir, "mock")
	cfg.APNsTopic, cfg.FCMProject = loadgen.DefaultAPNsTopic, loadgen.DefaultFCMProject
	mock, err := mockpush.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer mock.Close()
	ready := filepath.Join(dir, "mock-ready.json")
	if err := mockpush.WriteReadyFile(ready, mock.Ready()); err != nil {
		t.Fatal(err)
	}
	tokens := map[auth.Role]string{auth.Admin: auth.NewToken(), auth.Viewer: auth.NewToken(), auth.Creator: auth.NewToken()}
	var af auth.File
	for role, tok := range tokens {
		af.Users = append(af.Users, auth.User{Name: string(role), TokenSHA256: auth.Hash(tok), Roles: []auth.Role{role}})
	}
	authFile := filepath.Join(dir, "auth.json")
	if err := auth.WriteFile(authFile, af); err != nil {
		t.Fatal(err)
	}
	viewerFile := filepath.Join(dir, "viewer-token")
	if err := os.WriteFile(viewerFile, []byte(tokens[auth.Viewer]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	start := func() (string, func()) {
		readyFile := filepath.Join(dir, "all.ready")
		os.Remove(readyFile)
		actx, cancel := context.WithCancel(ctx)
		done := make(chan int, 1)
		var logs bytes.Buffer
		go func() {
			done <- run(actx, []string{"all", "--registry", reg, "--mock-ready", ready, "--data", data, "--addr", "127.0.0.1:0",
				"--ready-file", readyFile, "--auth-file", authFile, "--send-loops", "8"}, io.Discard, &syncWriter{w: &logs})
		}()
		var url []byte
		waitUntil(t, time.Minute, "salvo all ready", func() bool { url, err = os.ReadFile(readyFile); return err == nil })
		return string(url), func() {
			cancel()
			if code := <-done; code != 0 {
				t.Errorf("salvo all exited %d", code)
			}
		}
	}
	url, stop := start()
	admin := &api.Client{URL: url, Token: tokens[auth.Admin]}
	spec := sender.CampaignSpec{Name: "report test", ControlPercent: 10, Audience: sender.AudienceSource{Object: "audiences/a.csv"}, Silent: true,
		Message: sender.MessageSpec{APNs: &sender.APNsSpec{}, FCM: &sender.FCMSpec{Data: map[string]string{"k": "v"}}}}
	audience, err := os.ReadFile(filepath.Join(reg, "audience.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.PutObject(ctx, "audiences/a.csv", audience); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Create(ctx, "spot", spec); err != nil {
		t.Fatal(err)
	}
	report := func(outDir string) (int, string) {
		var o, e bytes.Buffer
		code := run(ctx, []string{"report", "--api", url, "--token-file", viewerFile, "--campaign", "spot", "--out", outDir}, &o, &e)
		return code, o.String() + e.String()
	}
	if code, msg := report(filepath.Join(dir, "early")); code != 2 || !strings.Contains(msg, "never pressed") {
		t.Fatalf("report before GO: exit %d %q, want 2 and a reason", code, msg)
	}
	var st *sender.Status
	waitUntil(t, time.Minute, "resolved", func() bool {
		st, err = admin.Status(ctx, "spot")
		return err == nil && st.Campaign.State == sender.StateResolved
	})
	if err := admin.Prepare(ctx, "spot", 1); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, time.Minute, "prepared", func() bool { st, err = admin.Status(ctx, "spot"); return err == nil && st.Prepared })
	if _, err := admin.Press(ctx, "spot"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 2*time.Minute, "done", func() bool { st, err = admin.Status(ctx, "spot"); return err == nil && st.Campaign.Terminal() })
	if st.Campaign.State != sender.StateDone {
		t.Fatalf("campaign ended %s", st.Campaign.State)
	}

	first := filepath.Join(dir, "report")
	if code, msg := report(first); code != 0 {
		t.Fatalf("report: exit %d: %s", code, msg)
	}
	for _, f := range []string{"report.json", "report.md", "latency.hgrm", "latency.hlog", "timeline.csv", "delivered.svg", "latency.svg"} {
		if _, err := os.Stat(filepath.Join(first, f)); err != nil {
			t.Errorf("report folder lacks %s", f)
		}
	}
	r, err := results.ReadReport(filepath.Join(first, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	ms := mock.Stats()
	unique := ms.APNs.Unique + ms.FCM.Unique
	var mockRejected int64
	for _, m := range []map[string]int64{ms.APNs.Rejected, ms.FCM.Rejected} {
		for _, n := range m {
			mockRejected += n
		}
	}
	res := st.Campaign.Result
	switch {
	case !r.Pass:
		t.Errorf("report fails: %q", r.Failures)
	case r.Delivery.Accepted != unique || r.Delivery.Accepted != res.Accepted:
		t.Errorf("report accepted %d; mock unique %d, ledger %d", r.Delivery.Accepted, unique, res.Accepted)
	case r.Delivery.RejectedTotal() != mockRejected || mockRejected == 0:
		t.Errorf("report rejected %v; the mock rejected %d", r.Delivery.Rejected, mockRejected)
	case r.Audience.Control == 0 || r.Delivery.Lost != 0:
		t.Errorf("audience %+v, lost %d: want a control group and nothing lost", r.Audience, r.Delivery.Lost)
	case r.NoLatencySample == nil || *r.NoLatencySample != 0:
		t.Errorf("no_latency_sample %v, want a stated 0", r.NoLatencySample)
	case r.Mock != nil || r.Scenario != "live":
		t.Errorf("mock %v, scenario %q: want no mock section and scenario live", r.Mock, r.Scenario)
	}

	// The routes: viewer role, one file, an unknown file.
	for _, tc := range []struct {
		path, token string
		want        int
		body        string // in the answer
	}{
		{"/v1/campaigns/spot/report", "", 401, ""},
		{"/v1/campaigns/spot/report", tokens[auth.Creator], 403, "viewer"},
		{"/v1/campaigns/spot/report", tokens[auth.Viewer], 200, `"schema": "salvo.report/v1"`},
		{"/v1/campaigns/spot/report/report.md", tokens[auth.Viewer], 200, "# Salvo run: live"},
		{"/v1/campaigns/spot/report/nope.txt", tokens[auth.Viewer], 404, "report.md"},
		{"/v1/campaigns/spot/report?format=zip", tokens[auth.Viewer], 400, "format"},
		{"/v1/campaigns/other/report", tokens[auth.Viewer], 404, ""},
	} {
		req, _ := http.NewRequestWithContext(ctx, "GET", url+tc.path, nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || !strings.Contains(string(body), tc.body) {
			t.Errorf("GET %s: %d %.200q, want %d with %q", tc.path, resp.StatusCode, body, tc.want, tc.body)
		}
	}
	stop()

	// Later, from a restarted system on the same data: the same figures.
	url, stop = start()
	defer stop()
	later := filepath.Join(dir, "later")
	if code, msg := report(later); code != 0 {
		t.Fatalf("report after a restart: exit %d: %s", code, msg)
	}
	r2, err := results.ReadReport(filepath.Join(later, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r2.Delivery.Accepted != r.Delivery.Accepted || r2.Latency != r.Latency || !maps.Equal(r2.Delivery.Rejected, r.Delivery.Rejected) {
		t.Errorf("report after a restart: delivery %+v latency %+v; before: %+v %+v", r2.Delivery, r2.Latency, r.Delivery, r.Latency)
	}
	b1, _ := json.Marshal(r.Milestones)
	b2, _ := json.Marshal(r2.Milestones)
	if !bytes.Equal(b1, b2) {
		t.Errorf("milestones after a restart %s, before %s", b2, b1)
	}
}

// syncWriter serialises writes from several goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
