package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/salvopush/salvo/loadgen"
	"github.com/salvopush/salvo/localstack/npmemu"
	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
	"github.com/salvopush/salvo/sender/auth"
	"github.com/salvopush/salvo/sender/diskregistry"
	"github.com/salvopush/salvo/sender/s3"
)

// deployment is the pipeline as separate salvo processes (API servers, fan-out and send
// workers) sharing only the AWS emulators, pushing to the mock servers over TLS HTTP/2.
type deployment struct {
	t       *testing.T
	bin     string
	dir     string
	env     []string
	eps     npmemu.Endpoints
	mock    *mockpush.Server
	ready   string // the mock's ready file
	reg     *diskregistry.Registry
	mu      sync.Mutex
	procs   map[string]*exec.Cmd
	objects *s3.Store
	// token is the admin's bearer token in authFile, which the API processes check.
	token, authFile string
	api             *api.Client // the first API process started, for figures
	campaigns       []string
}

// figures merges the workers' published figures of a campaign's GO send.
func (d *deployment) figures(campaign string) (*sender.SendStats, []sender.WorkerFigures, error) {
	if d.api == nil {
		return nil, nil, fmt.Errorf("no API yet")
	}
	st, err := d.api.Status(context.Background(), campaign)
	if err != nil {
		return nil, nil, err
	}
	if st.Campaign.Send == nil {
		return nil, nil, fmt.Errorf("%s: not pressed", campaign)
	}
	return sender.CollectSendStats(context.Background(), d.objects, campaign, st.Campaign.Send.ID)
}

// startAPI starts an API process checking the deployment's auth file.
func (d *deployment) startAPI(name string) *api.Client {
	d.t.Helper()
	c := &api.Client{URL: d.start(name, "serve", "--addr", "127.0.0.1:0", "--auth-file", d.authFile), Token: d.token}
	if d.api == nil {
		d.api = c
	}
	return c
}

func newDeployment(t *testing.T, users int, invalid float64) *deployment {
	t.Helper()
	if testing.Short() {
		t.Skip("process pipeline against the AWS emulators: skipped in -short mode")
	}
	eps := npmemu.Start(t)
	d := &deployment{t: t, dir: t.TempDir(), eps: eps, procs: map[string]*exec.Cmd{}}
	d.env = append(os.Environ(), eps.Env()...)
	d.bin = filepath.Join(d.dir, "salvo")
	d.token, d.authFile = auth.NewToken(), filepath.Join(d.dir, "auth.json")
	if err := auth.WriteFile(d.authFile, auth.File{Users: []auth.User{{Name: "admin", TokenSHA256: auth.Hash(d.token), Roles: []auth.Role{auth.Admin}}}}); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("go", "build", "-o", d.bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build salvo: %v\n%s", err, out)
	}
	t.Cleanup(d.stopAll)

	d.run("setup")
	gen := []string{"gen", "registry", "--users", fmt.Sprint(users), "--invalid-share", fmt.Sprint(invalid), "--seed", "11"}
	d.run(append(gen, "--to", "dynamodb://salvo-registry")...)
	d.run(append(gen, "--out", filepath.Join(d.dir, "registry"))...) // the same registry on disk, for expectations
	reg, err := diskregistry.Open(filepath.Join(d.dir, "registry"))
	if err != nil {
		t.Fatal(err)
	}
	d.reg = reg
	t.Cleanup(func() { reg.Close() })

	cfg := mockpush.DefaultConfig()
	cfg.Dir = filepath.Join(d.dir, "mock")
	cfg.APNsTopic, cfg.FCMProject = loadgen.DefaultAPNsTopic, loadgen.DefaultFCMProject
	cfg.KeepAccepted = true
	if d.mock, err = mockpush.Start(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.mock.Close() })
	d.ready = filepath.Join(d.dir, "mock-ready.json")
	if err := mockpush.WriteReadyFile(d.ready, d.mock.Ready()); err != nil {
		t.Fatal(err)
	}
	clients := eps.Clients(t)
	if d.objects, err = s3.New(clients.S3, "salvo", s3.Options{}); err != nil {
		t.Fatal(err)
	}
	return d
}

// run runs a salvo command to completion.
func (d *deployment) run(args ...string) {
	d.t.Helper()
	cmd := exec.Command(d.bin, args...)
	cmd.Env = d.env
	if out, err := cmd.CombinedOutput(); err != nil {
		d.t.Fatalf("salvo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// start starts a long-running salvo process and waits for its ready file.
func (d *deployment) start(name string, args ...string) string {
	d.t.Helper()
	readyFile := filepath.Join(d.dir, name+".ready")
	cmd := exec.Command(d.bin, append(args, "--ready-file", readyFile)...)
	cmd.Env = d.env
	logf, err := os.Create(filepath.Join(d.dir, name+".log"))
	if err != nil {
		d.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.mu.Lock()
	d.procs[name] = cmd
	d.mu.Unlock()
	var content []byte
	d.waitFor(name+" ready", func() bool {
		content, err = os.ReadFile(readyFile)
		return err == nil
	})
	return string(content)
}

func (d *deployment) startWorker(name, role string) {
	d.start(name, "worker", "--role", role, "--id", name, "--mock-ready", d.ready, "--send-loops", "8",
		"--connections", "2", "--concurrency", "64", "--visibility", "4s", "--lease", "4s", "--chunk", "20")
}

// kill ends a process with SIGKILL (no chance to clean up).
func (d *deployment) kill(name string) {
	d.mu.Lock()
	cmd := d.procs[name]
	delete(d.procs, name)
	d.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
}

func (d *deployment) stopAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, cmd := range d.procs {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if d.t.Failed() {
			if b, err := os.ReadFile(filepath.Join(d.dir, name+".log")); err == nil {
				d.t.Logf("--- %s log (tail):\n%s", name, tail(string(b), 3000))
			}
		}
		delete(d.procs, name)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// waitFor polls cond; the bound only keeps a broken build from hanging.
func (d *deployment) waitFor(what string, cond func() bool) {
	d.t.Helper()
	deadline := time.Now().Add(4 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			var detail string
			if d.mock != nil {
				detail = fmt.Sprintf("; mock %+v", d.mock.Stats())
			}
			if d.objects != nil {
				for _, c := range d.campaigns {
					if st, ws, err := d.figures(c); err == nil {
						detail += fmt.Sprintf("; %s: workers %v accepted %d failed %v retries %d transient %v", c, ws, st.Accepted, st.Failed, st.Retries, st.Transient)
					}
				}
			}
			d.t.Fatalf("%s did not happen%s", what, detail)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// expected counts the devices of the registry a campaign sends to, and the unregistered ones.
func (d *deployment) expected() (send, invalid int, users []string) {
	d.t.Helper()
	err := d.reg.Each(context.Background(), func(user string, devs []sender.Device) error {
		users = append(users, user)
		for _, dv := range devs {
			send++
			if mockpush.IsUnregistered(dv.Token) {
				invalid++
			}
		}
		return nil
	})
	if err != nil {
		d.t.Fatal(err)
	}
	return send, invalid, users
}

// campaign creates, resolves and prepares a silent campaign through c for workers workers.
func (d *deployment) campaign(c *api.Client, id string, users []string, workers int) {
	d.t.Helper()
	ctx := context.Background()
	spec := sender.CampaignSpec{Name: id, Silent: true, Audience: sender.AudienceSource{UserIDs: users},
		Message: sender.MessageSpec{APNs: &sender.APNsSpec{Payload: json.RawMessage(`{"aps":{"content-available":1}}`)},
			FCM: &sender.FCMSpec{Data: map[string]string{"k": "v"}}}}
	if _, err := c.Create(ctx, id, spec); err != nil {
		d.t.Fatal(err)
	}
	d.campaigns = append(d.campaigns, id)
	d.waitFor(id+" resolved", func() bool {
		st, err := c.Status(ctx, id)
		if err != nil {
			d.t.Fatal(err)
		}
		if st.Campaign.State == sender.StateFailed {
			d.t.Fatalf("%s failed: %s", id, st.Campaign.Error)
		}
		return st.Campaign.State == sender.StateResolved
	})
	if err := c.Prepare(ctx, id, workers); err != nil {
		d.t.Fatal(err)
	}
	d.waitFor(id+" prepared", func() bool {
		st, err := c.Status(ctx, id)
		return err == nil && st.Prepared
	})
}

// settled waits until campaign id has reached a terminal state and the mock's received count
// holds still between two readings 200 ms apart: every recipient is recorded finished, so a
// repeat still on its way would have to be in flight now, and is counted.
func (d *deployment) settled(c *api.Client, id string) {
	d.t.Helper()
	last, since := int64(-1), time.Time{}
	d.waitFor(id+" settled", func() bool {
		st, err := c.Status(context.Background(), id)
		if err != nil || !st.Campaign.Terminal() {
			return false
		}
		if r, _, _ := d.mockTotals(); r != last {
			last, since = r, time.Now()
			return false
		}
		return time.Since(since) >= 200*time.Millisecond
	})
}

// requireDelivered fails the test unless the mock accepted, for campaign id, every token the
// registry on disk and the audience users say it must (every device but the unregistered
// ones, worked out by loadgen without the sender's code) and no other.
func (d *deployment) requireDelivered(id string, users []string) {
	d.t.Helper()
	each := func(fn func(string, []sender.Device) error) error { return d.reg.Each(context.Background(), fn) }
	want, err := loadgen.Expect(each, strings.NewReader(strings.Join(users, "\n")), loadgen.ExpectSpec{Campaign: id})
	if err != nil {
		d.t.Fatal(err)
	}
	got, err := d.mock.Accepted(id)
	if err != nil {
		d.t.Fatal(err)
	}
	m, err := want.Compare(got)
	if err != nil {
		d.t.Fatal(err)
	}
	if m.Missing != 0 || m.Unexpected != 0 || m.Expected == 0 {
		d.t.Fatalf("%s delivered by identity: %d expected, %d missing %q, %d unexpected %q", id,
			m.Expected, m.Missing, m.MissingExamples, m.Unexpected, m.UnexpectedExamples)
	}
}

func (d *deployment) mockTotals() (received, unique, duplicates int64) {
	s := d.mock.Stats()
	return s.APNs.Received + s.FCM.Received, s.APNs.Unique + s.FCM.Unique, s.APNs.Duplicates + s.FCM.Duplicates
}

// TestProcessPipeline runs the pipeline as separate processes: one API, one fan-out worker
// and two send workers at 20,000 users; then two API processes taking 30 concurrent presses;
// then a send worker killed with SIGKILL in the middle of a send.
func TestProcessPipeline(t *testing.T) {
	d := newDeployment(t, 20000, 0.01)
	send, invalid, users := d.expected()
	api1 := d.startAPI("api1")
	d.startWorker("fanout", "fanout")
	d.startWorker("send1", "send")
	d.startWorker("send2", "send")
	ctx := context.Background()

	d.waitFor("three live workers", func() bool {
		ws, err := api1.Workers(ctx)
		alive := 0
		for _, w := range ws {
			if w.Alive {
				alive++
			}
		}
		return err == nil && alive == 3
	})

	// 1. The whole audience through separate processes.
	d.campaign(api1, "proc1", users, 2)
	if _, err := api1.Press(ctx, "proc1"); err != nil {
		t.Fatal(err)
	}
	d.waitFor("proc1 sent", func() bool { r, _, _ := d.mockTotals(); return r >= int64(send) })
	d.settled(api1, "proc1")
	d.requireDelivered("proc1", users)
	received, unique, dups := d.mockTotals()
	if received != int64(send) || unique != int64(send-invalid) || dups != 0 {
		t.Fatalf("proc1: mock received %d, unique %d, duplicates %d; want %d, %d, 0", received, unique, dups, send, send-invalid)
	}
	d.waitFor("published statistics", func() bool {
		st, workers, err := d.figures("proc1")
		return err == nil && len(workers) == 2 && st.Accepted == unique
	})

	// 2. Thirty presses at once, spread over two API processes: one send.
	api2 := d.startAPI("api2")
	d.campaign(api2, "proc2", users, 2)
	clients := []*api.Client{api1, api2}
	answers := make([]*sender.PressResult, 30)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			var err error
			if answers[i], err = clients[i%2].Press(ctx, "proc2"); err != nil {
				t.Error(err)
			}
		}()
	}
	close(gate)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	started := 0
	for _, a := range answers {
		if a.SendID != answers[0].SendID {
			t.Fatalf("presses answered send IDs %s and %s", answers[0].SendID, a.SendID)
		}
		if !a.AlreadyPressed {
			started++
		}
	}
	if started != 1 {
		t.Fatalf("%d of 30 presses started a send, want 1", started)
	}
	d.waitFor("proc2 sent", func() bool { r, _, _ := d.mockTotals(); return r >= 2*int64(send) })
	d.settled(api1, "proc2")
	d.requireDelivered("proc2", users)
	received, unique, dups = d.mockTotals()
	if received != 2*int64(send) || unique != 2*int64(send-invalid) || dups != 0 {
		t.Fatalf("proc2: mock received %d, unique %d, duplicates %d; want %d, %d, 0", received, unique, dups, 2*send, 2*(send-invalid))
	}

	// 3. A send worker killed outright in the middle of a send: its batches come back after
	// the visibility timeout, its ledger leases expire, the other worker finishes them.
	d.campaign(api1, "proc3", users, 2)
	if _, err := api1.Press(ctx, "proc3"); err != nil {
		t.Fatal(err)
	}
	d.waitFor("proc3 under way", func() bool { r, _, _ := d.mockTotals(); return r >= 2*int64(send)+int64(send)/4 })
	d.kill("send1")
	d.waitFor("proc3 finished", func() bool { _, u, _ := d.mockTotals(); return u >= 3*int64(send-invalid) })
	d.settled(api1, "proc3")
	d.requireDelivered("proc3", users)
	_, unique, dups = d.mockTotals()
	if lost := 3*int64(send-invalid) - unique; lost != 0 {
		t.Fatalf("proc3: %d recipients lost", lost)
	}
	// Exactly-once cannot survive SIGKILL: pushes the killed worker had in flight may have
	// been accepted without the worker living to record it, and are pushed again. The
	// ledger chunks (--chunk 20) bound them: at most 8 send loops x 20 recipients.
	if dups > 8*20 {
		t.Fatalf("proc3: %d duplicates, more than the killed worker's in-flight bound of %d", dups, 8*20)
	}
	t.Logf("proc3: worker killed mid-send: lost 0, %d duplicates (pushes in flight at the kill; bound %d)", dups, 8*20)
}
