package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/salvopush/salvo/loadgen"
	"github.com/salvopush/salvo/localstack/npmemu"
	"github.com/salvopush/salvo/results"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
	"github.com/salvopush/salvo/sender/auth"
)

// guideBlocks returns the sh code blocks of a Markdown file between the markers
// "<!-- guide:begin" and "<!-- guide:end", in order.
func guideBlocks(md []byte) ([]string, error) {
	var blocks []string
	var cur *strings.Builder
	in, inGuide, seen := false, false, false
	sc := bufio.NewScanner(bytes.NewReader(md))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "<!-- guide:begin"):
			inGuide, seen = true, true
		case strings.HasPrefix(line, "<!-- guide:end"):
			inGuide = false
		case inGuide && !in && strings.TrimSpace(line) == "```sh":
			in, cur = true, &strings.Builder{}
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks = append(blocks, cur.String())
		case in:
			cur.WriteString(line + "\n")
		}
	}
	switch {
	case !seen:
		return nil, errors.New("no <!-- guide:begin --> marker")
	case inGuide || in:
		return nil, errors.New("guide or code block left open")
	case len(blocks) == 0:
		return nil, errors.New("no sh block in the guide")
	}
	return blocks, sc.Err()
}

func TestGuideBlocks(t *testing.T) {
	t.Parallel()
	md := "# x\n```sh\nnot this\n```\n<!-- guide:begin -->\ntext\n```sh\na\nb\n```\n```go\nnot go\n```\n```sh\nc\n```\n<!-- guide:end -->\n```sh\nnor this\n```\n"
	got, err := guideBlocks([]byte(md))
	if err != nil || !slices.Equal(got, []string{"a\nb\n", "c\n"}) {
		t.Fatalf("guideBlocks = %q, %v", got, err)
	}
	if _, err := guideBlocks([]byte("```sh\na\n```\n")); err == nil {
		t.Fatal("a file without markers gave blocks")
	}
}

// TestGuide runs the README's process-mode guide exactly as written: the sh blocks between
// its markers, in order, as one bash script, with the salvo built from this tree on PATH
// (the guide's own first block, `make build emulators` and the PATH line, is what this test
// does by other means). Before the guide's last block (which stops everything) it pauses to
// check the outcome through the API the guide started: the report's counts against the
// registry's own summary, the DynamoDB audience against the folder's, and the operators'
// hygiene: a send worker started after the send does not preload the finished campaign
// (while it does preload a new one), the send workers dropped the finished one, and a worker
// killed with SIGKILL is listed as dead.
func TestGuide(t *testing.T) {
	if testing.Short() {
		t.Skip("the README's process-mode guide: skipped in -short mode")
	}
	tools, err := npmemu.ToolsDir()
	if err == nil {
		_, err = os.Stat(filepath.Join(tools, "node_modules", "fauxqs", "package.json"))
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("AWS emulators not installed (%v); CI must run this test: make emulators", err)
		}
		t.Skipf("AWS emulators not installed (%v): run make emulators", err)
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := guideBlocks(readme)
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	if last := blocks[len(blocks)-1]; !strings.Contains(last, "kill $emulators") {
		t.Fatalf("the guide's last block %q does not stop the processes", last)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "salvo"), ".").CombinedOutput(); err != nil {
		t.Fatalf("build salvo: %v\n%s", err, out)
	}
	work := filepath.Join(dir, "guide")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	// The pause: a send worker that starts after the send (in a subshell, so that it is not
	// one of the script's jobs: the test kills it), then wait for the test.
	const pause = `
(salvo worker --role send --id late --mock-ready mock.json > late.log 2>&1 & echo $! > late.pid)
touch guide.paused
until [ -e guide.resume ]; do sleep 0.2; done
`
	script := "set -euo pipefail\n" + strings.Join(blocks[:len(blocks)-1], "") + pause + blocks[len(blocks)-1]
	if err := os.WriteFile(filepath.Join(dir, "guide.sh"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "guide.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("bash", filepath.Join(dir, "guide.sh"))
	cmd.Dir = work
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the script and everything it starts
	var env []string
	for _, kv := range os.Environ() { // nothing of the caller's AWS setup leaks in
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "SALVO_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), npmemu.EnvToolsDir+"="+tools)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	pgid := cmd.Process.Pid
	t.Cleanup(func() { stopGroup(t, pgid, exited) })
	showLogs := func() {
		b, _ := os.ReadFile(logPath)
		t.Logf("guide script output:\n%s", tail(string(b), 4000))
		for _, name := range []string{"emulators", "serve", "fanout", "send-1", "send-2", "late", "mockpush"} {
			if b, err := os.ReadFile(filepath.Join(work, name+".log")); err == nil && len(b) > 0 {
				t.Logf("--- %s.log (tail):\n%s", name, tail(string(b), 1500))
			}
		}
	}

	// Up to the pause: every documented step, the report written.
	deadline := time.After(10 * time.Minute)
	for paused := false; !paused; {
		select {
		case err := <-exited:
			exited <- err
			showLogs()
			t.Fatalf("the guide stopped before its end: %v", err)
		case <-deadline:
			showLogs()
			t.Fatal("the guide did not reach its end within 10 minutes")
		case <-time.After(200 * time.Millisecond):
			_, err := os.Stat(filepath.Join(work, "guide.paused"))
			paused = err == nil
		}
	}
	checkGuideOutcome(t, work)
	if t.Failed() {
		showLogs()
	}

	// The guide's last block stops everything; the script then ends with 0.
	if err := os.WriteFile(filepath.Join(work, "guide.resume"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			showLogs()
			t.Fatalf("the guide's last block: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the guide's last block did not end the script within a minute")
	}
}

// checkGuideOutcome checks what the guide produced, then the hygiene of its workers.
func checkGuideOutcome(t *testing.T, work string) {
	t.Helper()
	ctx := context.Background()
	var sum loadgen.Summary
	if raw, err := os.ReadFile(filepath.Join(work, "registry", loadgen.SummaryFileName)); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(raw, &sum); err != nil {
		t.Fatal(err)
	}
	devices, invalid := int64(sum.Devices.Total()), int64(sum.InvalidTokens.Total())
	r, err := results.ReadReport(filepath.Join(work, "report-spot-1", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	d := r.Delivery
	switch {
	case !r.Pass:
		t.Errorf("the guide's report fails: %q", r.Failures)
	case r.Scenario != "live" || r.Mock != nil:
		t.Errorf("scenario %q, mock %v: want a live report without a mock section", r.Scenario, r.Mock)
	case r.Audience.Recipients != devices || d.Accepted != devices-invalid || d.RejectedTotal() != invalid || invalid == 0:
		t.Errorf("report: %d recipients, %d accepted, %d rejected; the registry has %d devices, %d of them unregistered",
			r.Audience.Recipients, d.Accepted, d.RejectedTotal(), devices, invalid)
	case d.Lost != 0 || d.Failed != 0:
		t.Errorf("report: lost %d, failed %d", d.Lost, d.Failed)
	case r.NoLatencySample == nil || *r.NoLatencySample != 0:
		t.Errorf("report: no_latency_sample %v, want a stated 0 (no worker died)", r.NoLatencySample)
	}
	t.Logf("the guide's report: %s; %d recipients, %d accepted, %d rejected, %d lost; latency p50 %.1f ms, p99 %.1f ms; milestone p99 %.1f ms, all %.1f ms",
		r.Verdict(), r.Audience.Recipients, d.Accepted, d.RejectedTotal(), d.Lost, r.Latency.P50, r.Latency.P99, r.Milestones.P99, r.Milestones.All)
	for _, f := range []string{"report.md", "latency.hgrm", "timeline.csv", "delivered.svg"} {
		if _, err := os.Stat(filepath.Join(work, "report-spot-1", f)); err != nil {
			t.Errorf("report folder: %v", err)
		}
	}
	fromTable, err1 := os.ReadFile(filepath.Join(work, "audience.csv"))
	fromFolder, err2 := os.ReadFile(filepath.Join(work, "registry", loadgen.AudienceFileName))
	if err := errors.Join(err1, err2); err != nil || !bytes.Equal(fromTable, fromFolder) {
		t.Errorf("the audience scanned from DynamoDB differs from the registry folder's (%v)", err)
	}

	// Hygiene, through the API the guide started.
	url, err1 := os.ReadFile(filepath.Join(work, "api.url"))
	tf, err2 := os.Open(filepath.Join(work, "api.token"))
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	token, err := auth.ReadToken(tf)
	tf.Close()
	if err != nil {
		t.Fatal(err)
	}
	c := &api.Client{URL: string(url), Token: token}
	lateAlive := func(want bool) func() bool {
		return func() bool {
			ws, err := c.Workers(ctx)
			return err == nil && slices.ContainsFunc(ws, func(w sender.WorkerStatus) bool { return w.Worker == "late" && w.Alive == want })
		}
	}
	waitUntil(t, time.Minute, "the late worker's heartbeat", lateAlive(true))
	spec := sender.CampaignSpec{Name: "after", Silent: true, Audience: sender.AudienceSource{Object: "audiences/audience.csv"},
		Message: sender.MessageSpec{APNs: &sender.APNsSpec{}, FCM: &sender.FCMSpec{Data: map[string]string{"k": "v"}}}}
	if _, err := c.Create(ctx, "spot-2", spec); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, time.Minute, "spot-2 resolved", func() bool {
		st, err := c.Status(ctx, "spot-2")
		return err == nil && st.Campaign.State == sender.StateResolved
	})
	if err := c.Prepare(ctx, "spot-2", 3); err != nil {
		t.Fatal(err)
	}
	// Three ready workers: the late one's prepare loop has run, past spot-1 (records are
	// listed in key order).
	waitUntil(t, 2*time.Minute, "spot-2 prepared by three workers", func() bool {
		st, err := c.Status(ctx, "spot-2")
		return err == nil && st.Prepared
	})
	st, err := c.Status(ctx, "spot-1")
	if err != nil {
		t.Fatal(err)
	}
	if st.Campaign.State != sender.StateDone {
		t.Errorf("spot-1 is %s, want done", st.Campaign.State)
	}
	for _, rd := range st.Ready {
		if rd.Worker == "late" {
			t.Errorf("the worker started after spot-1 finished preloaded it: %+v", rd)
		}
	}
	lateLog, _ := os.ReadFile(filepath.Join(work, "late.log"))
	if !strings.Contains(string(lateLog), "campaign=spot-2") || strings.Contains(string(lateLog), "campaign=spot-1") {
		t.Errorf("the late worker's log should name spot-2 and never spot-1:\n%s", tail(string(lateLog), 2000))
	}
	for _, name := range []string{"send-1", "send-2"} {
		b, _ := os.ReadFile(filepath.Join(work, name+".log"))
		if !strings.Contains(string(b), `msg="campaign finished; released its preloaded recipients" campaign=spot-1`) {
			t.Errorf("%s did not drop the finished campaign:\n%s", name, tail(string(b), 2000))
		}
	}
	pidText, err := os.ReadFile(filepath.Join(work, "late.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the late worker (%d): %v", pid, err)
	}
	waitUntil(t, time.Minute, "the killed worker listed as dead", lateAlive(false))
}

// stopGroup ends the script's process group: SIGTERM, then SIGKILL to what is left after
// a grace period. The group is the one the test started (Setpgid), nothing else.
func stopGroup(t *testing.T, pgid int, exited chan error) {
	select {
	case <-exited:
	default:
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for syscall.Kill(-pgid, 0) == nil {
		if time.Now().After(deadline) {
			t.Logf("processes of the guide still running after 30 s; killing them: %s", groupProcesses(pgid))
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// groupProcesses names the processes of group pgid (from /proc), for the test's log.
func groupProcesses(pgid int) string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...
		rest := string(stat[bytes.LastIndexByte(stat, ')')+2:])
		f := strings.Fields(rest)
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) {
			cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			out = append(out, fmt.Sprintf("%d %s %.80s", pid, f[0], bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		}
	}
	return strings.Join(out, "; ")
}
