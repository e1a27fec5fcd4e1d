package scenarios

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/salvopush/salvo/localstack/npmemu"
	"github.com/salvopush/salvo/results"
)

// salvoBuild builds the salvo binary once for the tests that run it as a child process.
type salvoBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
	out  []byte
}

func (b *salvoBuild) get(t *testing.T) string {
	t.Helper()
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "salvo-scenarios-bin-"); b.err != nil {
			return
		}
		b.bin = filepath.Join(b.dir, "salvo")
		b.out, b.err = exec.Command("go", "build", "-o", b.bin, "../cmd/salvo").CombinedOutput()
	})
	if b.err != nil {
		t.Fatalf("build salvo: %v\n%s", b.err, b.out)
	}
	return b.bin
}

func (b *salvoBuild) remove() {
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

// build is the salvo binary of this package's tests, built on first use.
var build salvoBuild

func TestMain(m *testing.M) {
	code := m.Run()
	build.remove()
	os.Exit(code)
}

// runArm plays one arm of a built-in scenario at a CI size: the mock in this process, the
// salvo binary built from this tree for the child processes, a generous push timeout (a
// push that times out after the mock accepted it is a real repeat; under -race on a loaded
// machine a push may wait long).
func runArm(t *testing.T, scenario, arm string, audience int) *results.Report {
	t.Helper()
	sc, err := Load(scenario)
	if err != nil {
		t.Fatal(err)
	}
	var p Params
	for _, r := range sc.Runs() {
		if r.Name == arm {
			p = r.Params
		}
	}
	if p.Mode == "process" {
		npmemu.RequireTools(t)
	} else if testing.Short() {
		t.Skip("end-to-end run; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	sc.PushTimeoutSeconds = 90
	opts := Options{Out: t.TempDir(), CacheDir: t.TempDir(), Audience: audience, Arms: []string{arm}, InProcessMock: true}
	if p.Mode != "embedded" {
		opts.MockBinary = build.get(t)
	}
	reps, err := Run(ctx, sc, opts)
	if err != nil {
		t.Fatalf("Run(%s, %s): %v", scenario, arm, err)
	}
	if len(reps) != 1 {
		t.Fatalf("%d reports, want 1", len(reps))
	}
	r := reps[0]
	t.Logf("%s/%s: pass %v; accepted %d, failed %d, lost %d; mock received %d, unique %d, duplicates %d; campaign %+v; failures %q",
		scenario, arm, r.Pass, r.Delivery.Accepted, r.Delivery.Failed, r.Delivery.Lost,
		r.Mock.Received, r.Mock.Unique, r.Mock.Duplicates, r.Campaign, r.Failures)
	if !r.Pass {
		t.Errorf("%s/%s failed: %q", scenario, arm, r.Failures)
		logWarnings(t, filepath.Join(opts.Out, "logs"))
	}
	if r.Campaign == nil || r.Campaign.State != "done" || r.Delivery.Lost != 0 || r.Mock.Unique != r.Delivery.Accepted {
		t.Errorf("%s/%s: campaign %+v, delivery %+v, mock %+v: want done with everyone accepted once by the mock's count",
			scenario, arm, r.Campaign, r.Delivery, r.Mock)
	}
	return r
}

// TestReliability plays the reliability scenario's arms at 2,000 users (all but the 60 s
// outage), each checked by results.Build against its criteria, and checks here that each
// arm met its fault: a run that injected nothing would pass the counts alone.
func TestReliability(t *testing.T) {
	t.Parallel()
	const users = 2000
	for _, tc := range []struct {
		arm   string
		check func(t *testing.T, r *results.Report)
	}{
		// 20 s of 503 from GO: retried until it ends, the stall shown meanwhile.
		{"outage-20s", func(t *testing.T, r *results.Report) {
			if r.Campaign.Stall == nil || r.Delivery.Retries == 0 {
				t.Errorf("stall %+v, retries %d: the outage was not met", r.Campaign.Stall, r.Delivery.Retries)
			}
		}},
		// The port closed for 20 s from GO, then open again on the same address.
		{"unreachable-20s", func(t *testing.T, r *results.Report) {
			if r.Campaign.Stall == nil || r.Mock.Received != r.Mock.Unique {
				t.Errorf("stall %+v; mock received %d, unique %d: want a stall and no request reaching the closed port",
					r.Campaign.Stall, r.Mock.Received, r.Mock.Unique)
			}
		}},
		// Unreachable past the deadline: all dead-lettered, then redriven once it is back.
		{"unreachable-redrive", func(t *testing.T, r *results.Report) {
			c := r.Campaign
			if len(c.States) != 2 || c.States[0] != "done_with_failures" || c.DeadLettered == 0 || c.Redriven != c.DeadLettered {
				t.Errorf("campaign %+v: want done_with_failures, everyone dead-lettered, then done by the redrive", c)
			}
		}},
		// salvo all killed at 50% and started again on the same --data.
		{"kill-all", func(t *testing.T, r *results.Report) {
			if r.Campaign.Killed != 1 || len(r.Campaign.Events) < 3 {
				t.Errorf("campaign %+v: want one kill and the restart in the events", r.Campaign)
			}
		}},
		// salvo all stopped with SIGTERM at 50%: it drains, nothing is pushed twice.
		{"term-all", func(t *testing.T, r *results.Report) {
			if r.Campaign.Killed != 0 || len(r.Campaign.Events) < 3 || r.Mock.Duplicates != 0 {
				t.Errorf("campaign %+v, mock duplicates %d: want a SIGTERM, a restart and no repeat", r.Campaign, r.Mock.Duplicates)
			}
		}},
		// A send worker killed at 50% in process mode and replaced.
		{"worker-kill", func(t *testing.T, r *results.Report) {
			if r.Campaign.Killed != 1 {
				t.Errorf("campaign %+v: want one kill", r.Campaign)
			}
		}},
		// An FCM-only message: the iOS devices excluded and counted; malformed batch
		// messages dead-lettered at once.
		{"poison", checkPoison},
		{"poison-process", checkPoison},
	} {
		t.Run(tc.arm, func(t *testing.T) {
			t.Parallel()
			r := runArm(t, "reliability", tc.arm, users)
			if r.Campaign != nil {
				tc.check(t, r)
			}
		})
	}
}

func checkPoison(t *testing.T, r *results.Report) {
	t.Helper()
	c := r.Campaign
	if c.NoMessage == 0 || c.NoMessage != c.NoMessageExpected || c.Malformed == 0 || c.MalformedDeadLettered != c.Malformed || r.Audience.IOS != 0 {
		t.Errorf("campaign %+v, audience %+v: want every iOS device excluded and counted, every malformed message dead-lettered",
			c, r.Audience)
	}
}

// TestRedelivery plays both arms of the redelivery scenario at 2,000 users: every batch
// message and every range delivered twice through the real queues, nobody pushed twice.
func TestRedelivery(t *testing.T) {
	t.Parallel()
	for _, arm := range []string{"embedded", "process"} {
		t.Run(arm, func(t *testing.T) {
			t.Parallel()
			r := runArm(t, "redelivery", arm, 2000)
			if c := r.Campaign; c != nil && (c.BatchesSentTwice == 0 || c.RangesDeliveredTwice == 0 || r.Mock.Duplicates != 0) {
				t.Errorf("campaign %+v, mock %+v: want batches and ranges delivered twice and no duplicate", c, r.Mock)
			}
		})
	}
}

// logWarnings logs the warnings and errors of the child processes' logs kept in dir.
func logWarnings(t *testing.T, dir string) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		var keep []string
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
				keep = append(keep, line)
			}
		}
		t.Logf("%s: %d warnings and errors; the last ones:\n%s", filepath.Base(l), len(keep), strings.Join(keep[max(0, len(keep)-20):], "\n"))
	}
}
