package scenarios

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/salvopush/salvo/loadgen"
	"github.com/salvopush/salvo/localstack"
	"github.com/salvopush/salvo/localstack/emulator"
	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/results"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
	"github.com/salvopush/salvo/sender/awsconfig"
	"github.com/salvopush/salvo/sender/dynamodb"
	"github.com/salvopush/salvo/sender/s3"
)

// runProcess plays one run with the API, the fan-out worker and p.Workers send workers as
// separate salvo processes that share only the AWS emulators (fauxqs for SQS and S3,
// dynalite for DynamoDB, installed by `make emulators`), as they run as tasks on ECS. It
// measures prepare (from starting the send workers to all of them ready) and the send, and
// takes the sender's figures from the statistics each worker publishes to S3.
func runProcess(ctx context.Context, name string, p Params, out string, opts Options) (*results.Report, error) {
	startedAt := time.Now()
	work, err := os.MkdirTemp("", "salvo-cloud-")
	if err != nil {
		return nil, setupErr("temp dir: %v", err)
	}
	defer os.RemoveAll(work)
	bin := opts.MockBinary
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return nil, setupErr("find salvo binary: %v", err)
		}
	}

	eps, stopEmulators, err := emulator.Launch(ctx)
	if err != nil {
		return nil, setupErr("%v", err)
	}
	defer stopEmulators()
	clients, err := eps.AWSConfig().Clients(ctx)
	if err != nil {
		return nil, setupErr("aws clients: %v", err)
	}
	names := awsconfig.DefaultNames()
	if err := localstack.Setup(ctx, clients, names); err != nil {
		return nil, setupErr("%v", err)
	}
	spec := loadgen.RegistrySpec{Users: p.Audience, IOSShare: p.IOSShare, MultiDeviceShare: p.MultiDeviceShare,
		InvalidShare: p.InvalidShare, Seed: p.Seed}
	if err := spec.Validate(); err != nil {
		return nil, setupErr("registry: %v", err)
	}
	progress(opts, "loading %d users into DynamoDB (emulator)", p.Audience)
	loadStart := time.Now()
	if _, err := dynamodb.LoadRegistry(ctx, clients.DynamoDB, names.RegistryTable, spec.Each); err != nil {
		return nil, setupErr("load registry: %v", err)
	}
	progress(opts, "registry loaded in %s", time.Since(loadStart).Round(time.Millisecond))

	mock, err := startMock(ctx, p, work, opts)
	if err != nil {
		return nil, err
	}
	defer mock.stop()
	mockReady := filepath.Join(work, "mock-ready.json")
	if err := mockpush.WriteReadyFile(mockReady, mock.ready); err != nil {
		return nil, setupErr("mock ready file: %v", err)
	}
	ctl := &mockpush.Control{URL: mock.ready.ControlURL}

	procs := &children{env: append(os.Environ(), eps.Env()...), dir: work}
	defer procs.stopAll()
	tokenFile := filepath.Join(work, "api-token")
	apiURL, err := procs.start(ctx, bin, "api", "serve", "--addr", "127.0.0.1:0", "--token-file", tokenFile)
	if err != nil {
		return nil, err
	}
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		return nil, setupErr("api token: %v", err)
	}
	if _, err := procs.start(ctx, bin, "fanout", "worker", "--role", "fanout", "--id", "fanout"); err != nil {
		return nil, err
	}
	client := &api.Client{URL: apiURL, Token: strings.TrimSpace(string(token))}
	audience, err := loadgenAudience(spec)
	if err != nil {
		return nil, err
	}
	if err := client.PutObject(ctx, "audiences/"+name+".csv", audience); err != nil {
		return nil, setupErr("upload audience: %v", err)
	}
	created, err := client.Create(ctx, "", campaignSpec(name, p, mock.ready))
	if err != nil {
		return nil, setupErr("create campaign: %v", err)
	}
	id := created.ID
	if err := waitResolved(ctx, client, id, 30*time.Minute); err != nil {
		return nil, setupErr("resolve: %v", err)
	}

	// Prepare: start the send workers only now, and time them from start to all-ready.
	prepStart := time.Now()
	if err := client.Prepare(ctx, id, p.Workers); err != nil {
		return nil, setupErr("prepare: %v", err)
	}
	var senders []string
	for i := 0; i < p.Workers; i++ {
		wid := fmt.Sprintf("send%d", i+1)
		args := []string{"worker", "--role", "send", "--id", wid, "--mock-ready", mockReady,
			"--send-loops", strconv.Itoa(p.SendLoops), "--connections", strconv.Itoa(p.Connections),
			"--concurrency", strconv.Itoa(p.Concurrency)}
		if p.Transport != "stock" {
			args = append(args, "--transport", p.Transport)
		}
		if _, err := procs.start(ctx, bin, wid, args...); err != nil {
			return nil, err
		}
		senders = append(senders, wid)
	}
	status, err := waitPrepared(ctx, client, id, 30*time.Minute)
	if err != nil {
		return nil, setupErr("prepare: %v", err)
	}
	prepareMs := float64(time.Since(prepStart).Microseconds()) / 1000
	res := status.Campaign.Resolution
	progress(opts, "campaign %s: %d recipients; %d send workers started and ready in %.0f ms", id, res.Recipients, p.Workers, prepareMs)

	if err := ctl.Reset(ctx); err != nil {
		return nil, setupErr("mock reset: %v", err)
	}
	mockBefore, err := ctl.Stats(ctx)
	if err != nil {
		return nil, setupErr("mock stats: %v", err)
	}
	cpuBefore := procs.cpu(senders...)
	presses, pressFails, err := pressAll(ctx, apiURL, id, p.Presses)
	if err != nil {
		return nil, fmt.Errorf("go: %w", err)
	}
	pressedAt := presses[0].PressedAt
	want := int64(res.Recipients)
	deadline := time.Now().Add(time.Duration(p.TimeoutSeconds) * time.Second)
	timedOut := false
	for last := time.Now(); ; {
		ms, err := ctl.Stats(ctx)
		if err != nil {
			return nil, setupErr("mock stats: %v", err)
		}
		got := ms.APNs.Received + ms.FCM.Received
		if got >= want {
			break
		}
		if time.Now().After(deadline) {
			timedOut = true
			break
		}
		if time.Since(last) >= time.Second {
			progress(opts, "t+%5.1fs  received by the mock %d / %d", time.Since(pressedAt).Seconds(), got, want)
			last = time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	cpu := procs.cpu(senders...) - cpuBefore
	rss := procs.maxRSS(senders...)
	// Stop the send workers gracefully: each publishes its final statistics to S3.
	for _, s := range senders {
		procs.stop(s)
	}
	objects, err := s3.New(clients.S3, names.Bucket, s3.Options{})
	if err != nil {
		return nil, setupErr("%v", err)
	}
	stats, workers, err := sender.CollectSendStats(ctx, objects, id, presses[0].SendID)
	if err != nil {
		return nil, setupErr("collect statistics: %v", err)
	}
	mockAfter, err := ctl.Stats(ctx)
	if err != nil {
		return nil, setupErr("mock stats: %v", err)
	}
	in := reportInputs(name, p, startedAt, measured{status: status, stats: stats, mockBefore: mockBefore,
		mockAfter: mockAfter, cpuSeconds: cpu, peakRSS: rss, prepareMs: prepareMs, timedOut: timedOut,
		presses: presses, extra: map[string]any{"mode": "process", "workers_reporting": len(workers),
			"backends": "fauxqs (SQS, S3) + dynalite (DynamoDB)"}})
	rep := results.Build(in)
	extra := pressFails
	if timedOut {
		extra = append(extra, fmt.Sprintf("timeout: the send was unfinished %d s after GO", p.TimeoutSeconds))
	}
	if len(workers) != p.Workers {
		extra = append(extra, fmt.Sprintf("workers: %d of %d send workers published statistics", len(workers), p.Workers))
	}
	if len(extra) > 0 {
		rep.Failures = append(rep.Failures, extra...)
		rep.Pass = false
	}
	if err := results.WriteRun(out, rep, in); err != nil {
		return rep, setupErr("write report: %v", err)
	}
	return rep, nil
}

func progress(opts Options, format string, a ...any) {
	if opts.Progress != nil {
		fmt.Fprintf(opts.Progress, format+"\n", a...)
	}
}

// loadgenAudience renders the spec's users as an audience CSV.
func loadgenAudience(spec loadgen.RegistrySpec) ([]byte, error) {
	var b strings.Builder
	b.WriteString("user_id\n")
	err := spec.Each(func(user string, _ []sender.Device) error {
		b.WriteString(user)
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		return nil, setupErr("audience: %v", err)
	}
	return []byte(b.String()), nil
}

// children are the salvo processes of a run.
type children struct {
	env   []string
	dir   string
	procs map[string]*exec.Cmd
}

// start runs `bin args... --ready-file F` and waits for F; it returns F's content.
func (c *children) start(ctx context.Context, bin, name string, args ...string) (string, error) {
	if c.procs == nil {
		c.procs = map[string]*exec.Cmd{}
	}
	ready := filepath.Join(c.dir, name+".ready")
	cmd := exec.Command(bin, append(args, "--ready-file", ready)...)
	cmd.Env = c.env
	cmd.SysProcAttr = childAttr()
	logf, err := os.Create(filepath.Join(c.dir, name+".log"))
	if err != nil {
		return "", setupErr("%s: %v", name, err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return "", setupErr("start %s: %v", name, err)
	}
	c.procs[name] = cmd
	var content []byte
	err = waitFor(ctx, time.Minute, func() (bool, error) {
		var rerr error
		content, rerr = os.ReadFile(ready)
		return rerr == nil, nil
	})
	if err != nil {
		logTail, _ := os.ReadFile(filepath.Join(c.dir, name+".log"))
		return "", setupErr("%s did not start: %v: %s", name, err, lastLines(string(logTail), 5))
	}
	return string(content), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// stop ends one process with SIGTERM (it publishes its last statistics) and waits.
func (c *children) stop(name string) {
	cmd := c.procs[name]
	if cmd == nil {
		return
	}
	delete(c.procs, name)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func (c *children) stopAll() {
	for name := range c.procs {
		c.stop(name)
	}
}

// cpu sums the CPU seconds (user + system) the named processes have used so far.
func (c *children) cpu(names ...string) float64 {
	var total float64
	for _, n := range names {
		if cmd := c.procs[n]; cmd != nil {
			total += procCPUSeconds(cmd.Process.Pid)
		}
	}
	return total
}

// maxRSS is the largest peak resident set of the named processes, in bytes.
func (c *children) maxRSS(names ...string) int64 {
	var peak int64
	for _, n := range names {
		if cmd := c.procs[n]; cmd != nil {
			peak = max(peak, procPeakRSS(cmd.Process.Pid))
		}
	}
	return peak
}

// procCPUSeconds reads utime + stime of a process from /proc (Linux; 0 elsewhere).
func procCPUSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // clock ticks: USER_HZ is 100 on Linux
}

// procPeakRSS reads VmHWM of a process from /proc (Linux; 0 elsewhere).
func procPeakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
