package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/salvopush/salvo/gameday"
	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/results"
)

// gamedayFiles writes a rehearsal's tokens file (ios + android devices) and its config,
// pointed at the mock of ready through url and ca_file only, with edit applied; it returns
// the config's path.
func gamedayFiles(t *testing.T, dir string, ready mockpush.Ready, ios, android int, edit func(m map[string]any)) string {
	t.Helper()
	var tokens strings.Builder
	for i := range ios {
		fmt.Fprintf(&tokens, "ios,%064x\n", i+1)
	}
	for i := range android {
		fmt.Fprintf(&tokens, "android,fcm-%0150d\n", i+1)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(tokens.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	m := map[string]any{
		"name": "rehearsal-1",
		"apns": map[string]any{"url": ready.APNsURL, "key_file": ready.APNsKeyFile, "key_id": ready.APNsKeyID,
			"team_id": ready.APNsTeamID, "topic": ready.APNsTopic, "ca_file": ready.CAFile},
		"fcm": map[string]any{"project_id": ready.FCMProjectID, "service_account_file": ready.FCMServiceAccountFile,
			"url": ready.FCMURL, "ca_file": ready.CAFile},
		"tokens_file": "tokens.csv", "allowlist_file": "", "max_recipients": 1000, "rate_per_second": 0, "dry_run": false,
		"apns_payload": map[string]any{"aps": map[string]any{"content-available": 1}},
		"fcm_data":     map[string]any{"rehearsal": "1"},
	}
	if edit != nil {
		edit(m)
	}
	data, _ := json.Marshal(m)
	path := filepath.Join(dir, "gameday.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestGamedayExitCodes: the command's contract against the mock: 0 when the run passes, 2
// naming the field when the config is unsafe or unknown (and the mock received nothing), 2
// on bad usage, 1 when the run is interrupted (Ctrl-C), with its report written.
func TestGamedayExitCodes(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("rehearsals against the mock: skipped in -short mode")
	}
	tests := []struct {
		name      string
		edit      func(m map[string]any)
		args      []string // besides --config and --out; nil: --yes
		interrupt bool     // cancel the run once pushes flow
		code      int
		stderr    string // the last line of stderr holds it
		report    bool   // report.json is written
	}{
		// A silent rehearsal that goes through.
		{"pass", nil, nil, false, 0, "", true},
		// An alert would show on the phones.
		{"visible payload", func(m map[string]any) {
			m["apns_payload"] = map[string]any{"aps": map[string]any{"content-available": 1, "alert": "hi"}}
		}, nil, false, 2, "apns_payload", false},
		// A key this version does not know, such as a notification block.
		{"unknown key", func(m map[string]any) { m["fcm_notification"] = map[string]any{"title": "hi"} }, nil, false, 2, "fcm_notification", false},
		// Over max_recipients.
		{"over max", func(m map[string]any) { m["max_recipients"] = 3 }, nil, false, 2, "max_recipients", false},
		// No --out.
		{"bad usage", nil, []string{"--yes", "--out", ""}, false, 2, "--out", false},
		// Ctrl-C while sending (slowed by a rate cap): aborted, report written, exit 1.
		{"interrupted", func(m map[string]any) { m["rate_per_second"] = 10 }, nil, true, 1, "aborted", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			mc := mockpush.DefaultConfig()
			mc.Dir = filepath.Join(dir, "mock")
			mock, err := mockpush.Start(context.Background(), mc)
			if err != nil {
				t.Fatal(err)
			}
			defer mock.Close()
			devices := 4
			if tc.interrupt {
				devices = 40 // four seconds at the cap: time to interrupt
			}
			cfg := gamedayFiles(t, dir, mock.Ready(), devices, devices, tc.edit)
			out := filepath.Join(dir, "out")
			args := append([]string{"gameday", "--config", cfg, "--out", out}, tc.args...)
			if tc.args == nil {
				args = append(args, "--yes")
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.interrupt {
				go func() {
					for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
						if st := mock.Stats(); st.APNs.Accepted+st.FCM.Accepted >= 3 {
							break
						}
					}
					cancel()
				}()
			}
			var stdout, stderr bytes.Buffer
			code := run(ctx, args, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			if tc.stderr != "" && !strings.Contains(lastLine(stderr.String()), tc.stderr) {
				t.Errorf("last line of stderr %q does not name %s", lastLine(stderr.String()), tc.stderr)
			}
			_, err = os.Stat(filepath.Join(out, "report.json"))
			if tc.report != (err == nil) {
				t.Fatalf("report.json written: %v, want %v", err == nil, tc.report)
			}
			if st := mock.Stats(); tc.code == 2 && st.APNs.Received+st.FCM.Received+st.FCM.ValidateOnly != 0 {
				t.Fatalf("refused, yet the mock received requests: %+v", st)
			}
			if tc.report {
				rep, err := results.ReadReport(filepath.Join(out, "report.json"))
				if err != nil {
					t.Fatal(err)
				}
				if rep.Mode != "gameday" || rep.Aborted == nil || *rep.Aborted != tc.interrupt || rep.Mock != nil {
					t.Fatalf("report mode %q aborted %v mock %v", rep.Mode, rep.Aborted, rep.Mock)
				}
			}
		})
	}
}

// TestGamedayProcessMode: a rehearsal against a deployed pipeline (an API process, a
// fan-out worker, a send worker with a rate cap, on the AWS emulators), driven by the salvo
// binary as an operator would, passes; the mock accepted every device once; the send
// worker's metrics count the pushes and its JSON logs parse.
func TestGamedayProcessMode(t *testing.T) {
	d := newDeployment(t, 10, 0)
	apiClient := d.startAPI("api")
	d.startWorker("fanout", "fanout")
	d.start("send1", "worker", "--role", "send", "--id", "send1", "--mock-ready", d.ready, "--send-loops", "4",
		"--connections", "1", "--rate-per-second", "200", "--metrics-addr", "127.0.0.1:0", "--log-format", "json")
	tokenFile := filepath.Join(d.dir, "operator-token")
	if err := os.WriteFile(tokenFile, []byte(d.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := gamedayFiles(t, dir, d.mock.Ready(), 30, 30, func(m map[string]any) {
		m["api"] = map[string]any{"url": apiClient.URL, "token_file": tokenFile, "workers": 1}
	})
	d.mock.Reset()
	out := filepath.Join(dir, "out")
	cmd := exec.Command(d.bin, "gameday", "--config", cfg, "--out", out, "--yes")
	cmd.Env = d.env
	output, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("salvo gameday (process mode): %v\n%s", err, output)
	}
	rep, err := results.ReadReport(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Pass || rep.Delivery.Accepted != 60 || rep.Config.Extra["mode"] != "process" {
		t.Fatalf("report pass %v accepted %d mode %v failures %q", rep.Pass, rep.Delivery.Accepted, rep.Config.Extra["mode"], rep.Failures)
	}
	st := d.mock.Stats()
	if st.APNs.Unique != 30 || st.FCM.Unique != 30 || st.APNs.Duplicates+st.FCM.Duplicates != 0 {
		t.Fatalf("mock %+v", st)
	}
	log, err := os.ReadFile(filepath.Join(d.dir, "send1.log"))
	if err != nil {
		t.Fatal(err)
	}
	metricsURL := regexp.MustCompile(`metrics on (http://\S+/metrics)`).FindSubmatch(log)
	if metricsURL == nil {
		t.Fatalf("the send worker printed no metrics address:\n%s", log)
	}
	resp, err := http.Get(string(metricsURL[1]))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`salvo_pushes_total{outcome="accepted",provider="apns"} 30`, `salvo_pushes_total{outcome="accepted",provider="fcm"} 30`, `salvo_send_accepted_total 60`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("the send worker's metrics lack %q", want)
		}
	}
	for _, line := range bytes.Split(log, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("{")) && !json.Valid(line) {
			t.Errorf("a log line is not JSON: %s", line)
		}
	}
}

// TestGamedayConfigExample: the example config of docs/gameday.md parses and validates (its
// placeholders stand where secrets would).
func TestGamedayConfigExample(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "gameday.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```json\n(\\{\n  \"name\".*?)\n```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/gameday.md has no example config")
	}
	cfg, err := gameday.ParseConfig(m[1])
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
}
