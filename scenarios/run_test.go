package scenarios

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/salvopush/salvo/results"
)

// runTiny plays sc with the mock in this process and a small audience, into a temporary
// folder, and returns the reports and the folder.
func runTiny(t *testing.T, sc *Scenario, audience int, arms ...string) ([]*results.Report, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end run; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := t.TempDir()
	// The runs check correctness, not speed: on a loaded machine under -race a push can wait
	// longer than the transports' 10 s, and a push retried after its timeout may be counted
	// twice by the mock although the sender did nothing wrong.
	sc.PushTimeoutSeconds = 90
	reps, err := Run(ctx, sc, Options{Out: out, CacheDir: t.TempDir(), Audience: audience, Arms: arms, InProcessMock: true})
	if err != nil {
		t.Fatalf("Run(%s): %v", sc.Name, err)
	}
	return reps, out
}

func mustParse(t *testing.T, js string) *Scenario {
	t.Helper()
	sc, err := Parse("test", []byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// requireClean fails the test unless the report passed with nothing lost or duplicated and
// the mock's own count agreeing with the sender's.
func requireClean(t *testing.T, r *results.Report) {
	t.Helper()
	if !r.Pass {
		t.Errorf("%s: pass = false: %q", r.Scenario, r.Failures)
	}
	d := r.Delivery
	if d.Lost != 0 || d.Duplicates != 0 || r.Mock == nil || r.Mock.Duplicates != 0 || r.Mock.Unique != d.Accepted {
		t.Errorf("%s: delivery %+v, mock %+v", r.Scenario, d, r.Mock)
	}
	// Nothing lost by identity: every token the mock accepted was expected, and as many as
	// the sender counts accepted (Build fails the report otherwise; this checks it compared).
	if id := r.Identity; id == nil || id.Unexpected != 0 || id.Matched != d.Accepted || id.Expected == 0 {
		t.Errorf("%s: identity %+v, delivery.accepted %d", r.Scenario, r.Identity, d.Accepted)
	}
}

// TestRunTiny plays a small scenario end to end and checks the report and its files.
func TestRunTiny(t *testing.T) {
	t.Parallel()
	sc := mustParse(t, `{"name": "tiny", "description": "e2e", "invalid_share": 0.01, "send_loops": 8, "control_percent": 5,
		"timeout_seconds": 60, "criteria": {"max_lost": 0, "max_duplicates": 0, "max_failed": 0}}`)
	reps, out := runTiny(t, sc, 3000)
	if len(reps) != 1 {
		t.Fatalf("%d reports, want 1", len(reps))
	}
	r := reps[0]
	requireClean(t, r)
	rejected := int64(0)
	for _, n := range r.Delivery.Rejected {
		rejected += n
	}
	if r.Audience.Recipients != 3000 || r.Delivery.Accepted+rejected+r.Audience.Control != 3000 || rejected == 0 ||
		r.Audience.Control == 0 || r.Identity == nil || r.Identity.Control != r.Audience.Control {
		t.Errorf("audience %+v, accepted %d, rejected %d: want 3000 recipients, some rejected, all answered",
			r.Audience, r.Delivery.Accepted, rejected)
		t.Errorf("identity %+v", r.Identity)
	}
	for _, f := range []string{"report.json", "report.md", "latency.hgrm", "timeline.csv", "delivered.svg"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	back, err := results.ReadReport(filepath.Join(out, "report.json"))
	if err != nil || back.Schema != results.Schema || !back.Pass {
		t.Errorf("report.json read back: %v, %+v", err, back)
	}
}

// TestRunDoublePress fires many presses at once and checks the press criteria: one send,
// one request per recipient at the mock.
func TestRunDoublePress(t *testing.T) {
	t.Parallel()
	sc, err := Load("double-press")
	if err != nil {
		t.Fatal(err)
	}
	sc.Presses = 20
	reps, _ := runTiny(t, sc, 3000)
	r := reps[0]
	requireClean(t, r)
	if r.Mock.Received != r.Audience.Recipients {
		t.Errorf("mock received %d, want %d (one per recipient)", r.Mock.Received, r.Audience.Recipients)
	}
	answers, ok := r.Config.Extra["press_answers"].(map[string]int)
	if !ok || answers["started"] != 1 || answers["already_pressed"] != 19 {
		t.Errorf("press answers %v, want 1 started and 19 already pressed", r.Config.Extra["press_answers"])
	}
}

// TestRunChaosArm plays one fault arm of the chaos scenario (500/503 on 5% of requests)
// and checks that the faults were met, retried, and cost nothing in correctness.
func TestRunChaosArm(t *testing.T) {
	t.Parallel()
	sc, err := Load("chaos")
	if err != nil {
		t.Fatal(err)
	}
	reps, out := runTiny(t, sc, 3000, "500-503")
	if len(reps) != 1 {
		t.Fatalf("%d reports, want 1", len(reps))
	}
	r := reps[0]
	requireClean(t, r)
	if r.Delivery.Retries == 0 || r.Faults == nil {
		t.Errorf("retries %d, faults %v: the faults were not met", r.Delivery.Retries, r.Faults)
	}
	if r.Mock.Received <= r.Mock.Unique {
		t.Errorf("mock received %d <= unique %d: no injected error answer", r.Mock.Received, r.Mock.Unique)
	}
	arms, err := results.ReadSummary(out)
	if err != nil || len(arms) != 1 || arms[0].Name != "500-503" {
		t.Fatalf("summary: %v, %+v", err, arms)
	}
	md, err := os.ReadFile(filepath.Join(out, "summary.md"))
	if err != nil || !strings.Contains(string(md), "500-503") {
		t.Errorf("summary.md: %v", err)
	}
}
