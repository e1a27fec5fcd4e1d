package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The script tests run bin/k6 on the scripts of loadgen/k6 against the rig. They need the
// binaries (`make test-k6` builds them and sets these variables) and skip without them.
const (
	envK6    = "SALVO_K6"  // the k6 binary with the extension
	envSalvo = "SALVO_BIN" // the salvo binary (campaign mode)
)

// scriptDir is loadgen/k6, where the scripts are.
const scriptDir = "../.."

func k6Binary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv(envK6)
	if bin == "" {
		t.Skipf("%s is not set: run `make test-k6`, which builds bin/k6 and runs the scripts", envK6)
	}
	return bin
}

// runK6 runs `k6 run --summary-export` on a script with the rig's environment plus env, and
// returns k6's exit code and the exported summary's metrics.
func runK6(t *testing.T, r *rig, script string, env ...string) (int, map[string]map[string]any) {
	t.Helper()
	summary := filepath.Join(t.TempDir(), "summary.json")
	cmd := exec.Command(k6Binary(t), "run", "--quiet", "--no-color", "--summary-export", summary, filepath.Join(scriptDir, script))
	cmd.Env = append(append(os.Environ(), r.env...), env...)
	out, err := cmd.CombinedOutput()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("k6: %v", err)
	}
	t.Logf("k6 run %s %v: exit %d\n%s", script, env, code, lastLines(string(out), 40))
	var s struct {
		Metrics map[string]map[string]any `json:"metrics"`
	}
	b, err := os.ReadFile(summary)
	if err != nil {
		t.Fatalf("summary export: %v", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("summary export: %v", err)
	}
	return code, s.Metrics
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestPushScript runs push.js briefly: exit 0 with its thresholds, every push the k6
// metrics count accepted is one the mock counted once; then exit 99 with a latency
// threshold no run can meet.
func TestPushScript(t *testing.T) {
	k6Binary(t)
	r, err := start(context.Background(), config{mode: "push"}, io.Discard)
	if r != nil {
		defer r.stop()
	}
	if err != nil {
		t.Fatal(err)
	}
	code, m := runK6(t, r, "push.js", "SALVO_DURATION=2s", "SALVO_VUS=2", "SALVO_BATCH=50")
	if code != 0 {
		t.Fatalf("push.js exited %d, want 0 (thresholds hold)", code)
	}
	accepted, _ := m["salvo_push_accepted"]["count"].(float64)
	st := r.mock.Stats()
	mockAccepted := st.APNs.Accepted + st.FCM.Accepted
	switch {
	case accepted <= 0:
		t.Fatalf("salvo_push_accepted count %v", m["salvo_push_accepted"])
	case int64(accepted) != mockAccepted:
		t.Errorf("k6 counted %v accepted, the mock %d", accepted, mockAccepted)
	case st.APNs.Unique+st.FCM.Unique != mockAccepted || st.APNs.Duplicates+st.FCM.Duplicates != 0:
		t.Errorf("mock: %+v, want every accepted push unique", st)
	case len(st.APNs.Rejected)+len(st.FCM.Rejected) != 0:
		t.Errorf("mock rejected %v %v", st.APNs.Rejected, st.FCM.Rejected)
	}
	if _, ok := m["salvo_push_latency"]["p(99)"]; !ok {
		t.Errorf("salvo_push_latency has no p(99): %v", m["salvo_push_latency"])
	}

	code, _ = runK6(t, r, "push.js", "SALVO_DURATION=1s", "SALVO_VUS=1", "SALVO_P99_MS=0.001")
	if code != 99 {
		t.Fatalf("push.js with SALVO_P99_MS=0.001 exited %d, want 99 (a threshold failed)", code)
	}
}

// TestCampaignScript runs campaign.js against two API replicas in process mode: exit 0
// means one press started the send and the script's checks held; the mock's own counts
// must show each recipient of the registry once.
func TestCampaignScript(t *testing.T) {
	k6Binary(t)
	salvo := os.Getenv(envSalvo)
	if salvo == "" {
		t.Skipf("%s is not set: run `make test-k6`", envSalvo)
	}
	r, err := start(context.Background(), config{mode: "campaign", salvo: salvo, users: 500, apis: 2}, io.Discard)
	if r != nil {
		defer r.stop()
	}
	if err != nil {
		t.Fatal(err)
	}
	code, m := runK6(t, r, "campaign.js", "SALVO_PRESSES=10")
	if code != 0 {
		t.Fatalf("campaign.js exited %d, want 0", code)
	}
	if checks, _ := m["checks"]["passes"].(float64); checks != 12 {
		t.Errorf("%v checks passed, want 12 (one per press, two at the end): %v", checks, m["checks"])
	}
	st := r.mock.Stats()
	want := int64(r.summary.Devices.Total())
	if got := st.APNs.Unique + st.FCM.Unique; got != want || st.APNs.Received+st.FCM.Received != want ||
		st.APNs.Duplicates+st.FCM.Duplicates != 0 {
		t.Errorf("mock: %+v; want %d devices received once each", st, want)
	}
}

// TestExitCode requires the command's exit code back, and 2 for a bad rig.
func TestExitCode(t *testing.T) {
	tests := []struct {
		args []string
		want int
	}{
		// A threshold failure passes through.
		{[]string{"--", "sh", "-c", "exit 99"}, 99},
		// The command sees the mock's ready file.
		{[]string{"--", "sh", "-c", `test -s "$SALVO_READY_FILE"`}, 0},
		// No command.
		{[]string{"--mode", "push"}, 2},
		// An unknown mode.
		{[]string{"--mode", "soak", "--", "true"}, 2},
	}
	for _, tc := range tests {
		code, _ := run(context.Background(), tc.args, io.Discard, io.Discard)
		if code != tc.want {
			t.Errorf("k6rig %q: exit %d, want %d", tc.args, code, tc.want)
		}
	}
}
