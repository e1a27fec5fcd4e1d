package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/salvopush/salvo/loadgen"
	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
	"github.com/salvopush/salvo/sender/auth"
)

// allProcess is `salvo all` as a child process on a data folder that outlives it.
type allProcess struct {
	t                   *testing.T
	bin, dir, data, reg string
	ready               string // the mock's ready file
	cmd                 *exec.Cmd
	client              *api.Client
	log                 *os.File
	exited              chan error
}

// start starts salvo all and waits until its API answers.
func (p *allProcess) start(loops int) {
	t := p.t
	t.Helper()
	readyFile := filepath.Join(p.dir, "all.ready")
	os.Remove(readyFile)
	p.cmd = exec.Command(p.bin, "all", "--registry", p.reg, "--data", p.data, "--mock-ready", p.ready,
		"--addr", "127.0.0.1:0", "--ready-file", readyFile, "--send-loops", fmt.Sprint(loops), "--chunk", "50",
		"--drain", "10s")
	var err error
	if p.log, err = os.OpenFile(filepath.Join(p.dir, "all.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.exited = make(chan error, 1)
	go func() { p.exited <- p.cmd.Wait() }()
	waitUntil(t, 60*time.Second, "salvo all ready", func() bool {
		url, err := os.ReadFile(readyFile)
		if err != nil {
			return false
		}
		f, err := os.Open(filepath.Join(p.data, "api-token"))
		if err != nil {
			return false
		}
		defer f.Close()
		tok, err := auth.ReadToken(f)
		p.client = &api.Client{URL: string(url), Token: tok}
		return err == nil
	})
}

// kill sends sig and waits for the process to exit.
func (p *allProcess) kill(sig syscall.Signal) error {
	_ = p.cmd.Process.Signal(sig)
	select {
	case err := <-p.exited:
		p.log.Close()
		return err
	case <-time.After(60 * time.Second):
		p.t.Fatalf("salvo all did not exit within 60 s of %v", sig)
		return nil
	}
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAllSurvivesKillAndTerm: `salvo all` killed with SIGKILL halfway through a send, and
// another stopped with SIGTERM halfway, each started again on the same --data: the campaign
// is there, the send resumes by itself and ends done; the mock received every deliverable
// recipient, repeats after SIGKILL bounded by what was in flight (send loops x chunk) and
// none after SIGTERM (it drains and records what it pushed).
func TestAllSurvivesKillAndTerm(t *testing.T) {
	if testing.Short() {
		t.Skip("builds salvo and runs it as a child process: skipped in -short mode")
	}
	t.Parallel()
	dir := t.TempDir()
	p := &allProcess{t: t, dir: dir, bin: filepath.Join(dir, "salvo"), data: filepath.Join(dir, "data"), reg: filepath.Join(dir, "registry")}
	if out, err := exec.Command("go", "build", "-o", p.bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	const users = 8000
	if out, err := exec.Command(p.bin, "gen", "registry", "--users", fmt.Sprint(users), "--seed", "5", "--out", p.reg).CombinedOutput(); err != nil {
		t.Fatalf("gen: %v\n%s", err, out)
	}
	cfg := mockpush.DefaultConfig()
	cfg.Dir = filepath.Join(dir, "mock")
	cfg.APNsTopic, cfg.FCMProject = loadgen.DefaultAPNsTopic, loadgen.DefaultFCMProject
	mock, err := mockpush.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer mock.Close()
	p.ready = filepath.Join(dir, "mock-ready.json")
	if err := mockpush.WriteReadyFile(p.ready, mock.Ready()); err != nil {
		t.Fatal(err)
	}
	// 10 ms per answer and 4 loops: the send takes a few seconds, long enough to stop halfway.
	slow := mockpush.Faults{APNs: mockpush.PlatformFaults{Latency: mockpush.Latency{FixedMS: 10}},
		FCM: mockpush.PlatformFaults{Latency: mockpush.Latency{FixedMS: 10}}}
	if err := mock.SetFaults(slow); err != nil {
		t.Fatal(err)
	}
	const loops, chunk = 4, 50
	audience, err := os.ReadFile(filepath.Join(p.reg, "audience.csv"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id       string
		sig      syscall.Signal
		maxDupes int64
	}{
		{"killed", syscall.SIGKILL, loops * chunk},
		{"termed", syscall.SIGTERM, 0},
	} {
		ctx := context.Background()
		p.start(loops)
		if err := p.client.PutObject(ctx, "audiences/a.csv", audience); err != nil {
			t.Fatal(err)
		}
		spec := sender.CampaignSpec{Name: tc.id, Audience: sender.AudienceSource{Object: "audiences/a.csv"}, Silent: true,
			Message: sender.MessageSpec{APNs: &sender.APNsSpec{}, FCM: &sender.FCMSpec{Data: map[string]string{"k": "v"}}}}
		if _, err := p.client.Create(ctx, tc.id, spec); err != nil {
			t.Fatal(err)
		}
		var st *sender.Status
		waitUntil(t, time.Minute, "resolved", func() bool {
			st, err = p.client.Status(ctx, tc.id)
			return err == nil && st.Campaign.State == sender.StateResolved
		})
		if err := p.client.Prepare(ctx, tc.id, 1); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, time.Minute, "prepared", func() bool { st, err = p.client.Status(ctx, tc.id); return err == nil && st.Prepared })
		recipients := int64(st.Campaign.Resolution.Recipients)
		before := mock.Stats()
		if _, err := p.client.Press(ctx, tc.id); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, time.Minute, "half sent", func() bool {
			s := mock.Stats()
			return (s.APNs.Received+s.FCM.Received)-(before.APNs.Received+before.FCM.Received) >= recipients/2
		})
		err := p.kill(tc.sig)
		if tc.sig == syscall.SIGTERM && err != nil {
			t.Fatalf("SIGTERM: salvo all exited with %v, want 0 after draining", err)
		}
		mid := mock.Stats()
		p.start(loops)
		waitUntil(t, 2*time.Minute, tc.id+" done", func() bool {
			st, err = p.client.Status(ctx, tc.id)
			return err == nil && st.Campaign.Terminal()
		})
		_ = p.kill(syscall.SIGTERM)
		after := mock.Stats()
		accepted := (after.APNs.Accepted + after.FCM.Accepted) - (before.APNs.Accepted + before.FCM.Accepted)
		unique := (after.APNs.Unique + after.FCM.Unique) - (before.APNs.Unique + before.FCM.Unique)
		dupes := (after.APNs.Duplicates + after.FCM.Duplicates) - (before.APNs.Duplicates + before.FCM.Duplicates)
		rejected := int64(0)
		for _, n := range after.APNs.Rejected {
			rejected += n
		}
		for _, n := range after.FCM.Rejected {
			rejected += n
		}
		for _, n := range before.APNs.Rejected {
			rejected -= n
		}
		for _, n := range before.FCM.Rejected {
			rejected -= n
		}
		t.Logf("%s: %d recipients; at the stop the mock had %d; after: accepted %d, unique %d, repeats %d, rejected %d; result %+v",
			tc.id, recipients, (mid.APNs.Received+mid.FCM.Received)-(before.APNs.Received+before.FCM.Received),
			accepted, unique, dupes, rejected, st.Campaign.Result)
		if st.Campaign.State != sender.StateDone {
			t.Fatalf("%s ended %s, want done", tc.id, st.Campaign.State)
		}
		res := st.Campaign.Result
		if res.Accepted+res.Rejected != recipients || res.Failed != 0 {
			t.Fatalf("%s: result %+v, want every one of %d accepted or rejected", tc.id, res, recipients)
		}
		if unique != res.Accepted {
			t.Fatalf("%s: the mock holds %d distinct recipients, the ledger %d accepted: someone was lost", tc.id, unique, res.Accepted)
		}
		if dupes > tc.maxDupes {
			t.Fatalf("%s: %d repeats, over the in-flight bound %d", tc.id, dupes, tc.maxDupes)
		}
	}
	logData, _ := os.ReadFile(filepath.Join(dir, "all.log"))
	if !strings.Contains(string(logData), "resumed an interrupted send") {
		t.Fatalf("the restart did not say it resumed the send; log:\n%s", logData)
	}
}
