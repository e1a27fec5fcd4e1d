package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/salvopush/salvo/loadgen"
	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/results"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
	"github.com/salvopush/salvo/sender/metrics"
)

// Options are how a scenario runs on this machine (not what it measures).
type Options struct {
	// Out is the folder for report.json and the human-readable files.
	Out string
	// CacheDir keeps generated registries between runs (default results/cache).
	CacheDir string
	// Audience overrides the scenario's audience when > 0.
	Audience int
	// Transport, when not empty, overrides every run's transport kind ("burst" or "stock").
	Transport string
	// Arms, when not empty, runs only the arms of these names (in the scenario's order); an
	// unknown name is a setup error.
	Arms []string
	// MockBinary is the salvo binary that runs `salvo mockpush` as a child process (default:
	// this executable). With InProcessMock the mock runs inside this process instead (tests).
	MockBinary    string
	InProcessMock bool
	// Progress receives a line per second while a send runs (nil: silent).
	Progress io.Writer
	Log      *slog.Logger
}

// ErrSetup marks failures to set a run up (exit code 2), as opposed to a run whose
// criteria failed (a report with Pass false).
var ErrSetup = errors.New("setup failed")

func setupErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrSetup, fmt.Errorf(format, a...))
}

// Run plays every run of the scenario (its arms, or the base alone) and writes a report
// per run: in Out for a single run, in Out/<arm>/ plus Out/summary.json for several. It
// returns the reports in order.
func Run(ctx context.Context, sc *Scenario, opts Options) ([]*results.Report, error) {
	if opts.CacheDir == "" {
		opts.CacheDir = filepath.Join("results", "cache")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	runs, err := selectArms(sc, opts.Arms)
	if err != nil {
		return nil, err
	}
	// A scenario with arms always writes the multi-arm layout, even for one selected arm.
	multi := len(sc.Arms) > 0
	var reports []*results.Report
	var arms []results.Arm
	for _, arm := range runs {
		p := arm.Params
		if opts.Audience > 0 {
			p.Audience = opts.Audience
		}
		if opts.Transport != "" {
			p.Transport = opts.Transport
		}
		dir := opts.Out
		if multi {
			dir = filepath.Join(opts.Out, arm.Name)
		}
		if opts.Progress != nil && multi {
			fmt.Fprintf(opts.Progress, "== arm %s\n", arm.Name)
		}
		var first *results.FirstArm
		if len(reports) > 0 {
			first = results.FirstArmOf(arms[0].Name, reports[0])
		}
		rep, err := runOne(ctx, sc.Name, p, dir, opts, first)
		if err != nil {
			return reports, fmt.Errorf("scenario %s: %s: %w", sc.Name, arm.Name, err)
		}
		reports = append(reports, rep)
		arms = append(arms, results.Arm{Name: arm.Name, Report: rep, Dir: dir})
	}
	if multi {
		if err := results.WriteSummary(opts.Out, arms); err != nil {
			return reports, fmt.Errorf("scenario %s: summary: %w", sc.Name, err)
		}
	}
	return reports, nil
}

// selectArms returns the runs of sc, only those named in names when names is not empty.
func selectArms(sc *Scenario, names []string) ([]Arm, error) {
	runs := sc.Runs()
	if len(names) == 0 {
		return runs, nil
	}
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	var out []Arm
	for _, r := range runs {
		if want[r.Name] && len(sc.Arms) > 0 {
			out = append(out, r)
			delete(want, r.Name)
		}
	}
	if len(sc.Arms) == 0 {
		return nil, setupErr("scenario %s has no arms to select", sc.Name)
	}
	if len(want) > 0 {
		var have []string
		for _, a := range sc.Arms {
			have = append(have, a.Name)
		}
		var missing []string
		for _, n := range names {
			if want[n] {
				missing = append(missing, n)
			}
		}
		return nil, setupErr("scenario %s: no arm %s (arms: %s)", sc.Name, strings.Join(missing, ", "), strings.Join(have, ", "))
	}
	return out, nil
}

// runOne plays one run end to end on the rig of p.Mode, the same sequence in every mode:
// the rig and the mock servers start, the audience is uploaded and resolved, the campaign
// prepared, the mock reset and its faults set, GO pressed, the send followed (interrupted,
// redriven, as the scenario says) to the campaign's terminal state, and the measurements
// handed to results.Build, which alone judges the run. first is the scenario's first arm
// when this run is a later one.
func runOne(ctx context.Context, name string, p Params, out string, opts Options, first *results.FirstArm) (*results.Report, error) {
	startedAt := time.Now()
	work, err := os.MkdirTemp("", "salvo-bench-")
	if err != nil {
		return nil, setupErr("temp dir: %v", err)
	}
	defer os.RemoveAll(work)

	var r rig
	switch p.Mode {
	case "process":
		r, err = newProcessRig(ctx, p, work, opts)
	case "all":
		r, err = newAllRig(ctx, p, work, opts)
	default:
		r, err = newEmbeddedRig(ctx, p, work, opts)
	}
	if err != nil {
		return nil, err
	}
	mock, err := startMock(ctx, p, work, opts)
	if err != nil {
		r.close()
		return nil, err
	}
	defer func() {
		r.close() // the pipeline first, while the mock still answers
		mock.stop()
	}()
	ctl := &mockpush.Control{URL: mock.ready.ControlURL}

	client, audience, err := r.start(ctx, mock.ready)
	if err != nil {
		return nil, err
	}
	if err := client.PutObject(ctx, "audiences/"+name+".csv", audience); err != nil {
		return nil, setupErr("upload audience: %v", err)
	}
	created, err := client.Create(ctx, "", campaignSpec(name, p))
	if err != nil {
		return nil, setupErr("create campaign: %v", err)
	}
	id := created.ID
	if err := waitResolved(ctx, client, id, 30*time.Minute); err != nil {
		return nil, setupErr("resolve: %v", err)
	}
	noMessage, err := uncovered(p)
	if err != nil {
		return nil, err
	}

	// Prepare: the rig's send workers load the campaign; timed until all are ready.
	prepStart := time.Now()
	if err := client.Prepare(ctx, id, p.Workers); err != nil {
		return nil, setupErr("prepare: %v", err)
	}
	if err := r.startSenders(ctx, id); err != nil {
		return nil, err
	}
	status, err := waitPrepared(ctx, client, id, 30*time.Minute)
	if err != nil {
		return nil, setupErr("prepare: %v", err)
	}
	prepareMs := float64(time.Since(prepStart).Microseconds()) / 1000
	res := status.Campaign.Resolution
	progress(opts, "campaign %s: %d recipients (%d iOS, %d Android, %d control, %d unknown users); %d send workers prepared in %.0f ms",
		id, res.Recipients, res.IOS, res.Android, res.ControlDevices, res.UnknownUsers, p.Workers, prepareMs)

	// Clean slate on the mock and the sender's counters; the faults come last, right
	// before GO, because the outage clock starts when they are set.
	if err := ctl.Reset(ctx); err != nil {
		return nil, setupErr("mock reset: %v", err)
	}
	mockBefore, err := ctl.Stats(ctx)
	if err != nil {
		return nil, setupErr("mock stats: %v", err)
	}
	r.resetStats()
	var faults any
	if len(p.Mock.Faults) > 0 {
		f, err := mockpush.ParseFaults(p.Mock.Faults)
		if err != nil {
			return nil, setupErr("mock.faults: %v", err)
		}
		if err := ctl.SetFaults(ctx, f); err != nil {
			return nil, setupErr("mock faults: %v", err)
		}
		faults = json.RawMessage(p.Mock.Faults)
	}
	cpuBefore := r.cpuSeconds()

	// GO: p.Presses presses at the same instant, each from its own client.
	presses, err := pressAll(ctx, client, id, p.Presses)
	if err != nil {
		return nil, fmt.Errorf("go: %w", err)
	}
	pressedAt := presses[0].PressedAt
	f := &follower{r: r, client: client, ctl: ctl, p: p, opts: opts, id: id, want: int64(res.Recipients),
		pressed: pressedAt, deadline: pressedAt.Add(time.Duration(p.TimeoutSeconds) * time.Second),
		mockBefore: mockBefore, interrupt: p.Interrupt, marker: "salvo-bench-poison-" + id}
	f.camp.NoMessage, f.camp.NoMessageExpected = noMessageOf(res), noMessage
	if p.Malformed > 0 {
		if err := f.injectMalformed(ctx); err != nil {
			return nil, err
		}
	}
	timedOut, err := waitSend(ctx, r, f.want, time.Until(f.deadline), pressedAt, opts, f.tick)
	if err != nil {
		return nil, err
	}
	cpu := r.cpuSeconds() - cpuBefore
	if !timedOut {
		if err := f.end(ctx); err != nil {
			return nil, err
		}
	}
	final := f.final
	stats, reporting, rss, err := r.collect(ctx, id)
	if err != nil {
		return nil, err
	}
	mockAfter, err := ctl.Stats(ctx)
	if err != nil {
		return nil, setupErr("mock stats: %v", err)
	}
	arrivals, err := mockArrivals(ctx, ctl, pressedAt)
	if err != nil {
		return nil, err
	}
	var identity *results.Identity
	if checksIdentity(p) && !timedOut {
		if identity, err = identityOf(ctx, ctl, p, id, audience); err != nil {
			return nil, err
		}
	}
	if len(p.Mock.Faults) > 0 {
		_ = ctl.SetFaults(context.WithoutCancel(ctx), mockpush.Faults{}) // the run is measured; this only tidies
	}

	extra := r.extra()
	extra["workers_reporting"] = reporting
	in := reportInputs(name, p, startedAt, measured{status: status, final: final, stats: stats, mockBefore: mockBefore,
		mockAfter: mockAfter, cpuSeconds: cpu, peakRSS: rss, prepareMs: prepareMs, timedOut: timedOut,
		presses: presses, workersReporting: reporting, faults: faults, extra: extra, campaign: &f.camp, firstArm: first,
		mockArrivals: arrivals, identity: identity})
	rep := results.Build(in)
	if err := results.WriteRun(out, rep, in); err != nil {
		return rep, setupErr("write report: %v", err)
	}
	if !rep.Pass {
		keepLogs(work, filepath.Join(out, "logs"), opts)
	}
	return rep, nil
}

// keepLogs copies the child processes' logs of a failed run (work/*.log) to dir, for the
// person who reads why it failed; a failure to copy is only printed.
func keepLogs(work, dir string, opts Options) {
	logs, _ := filepath.Glob(filepath.Join(work, "*.log"))
	if len(logs) == 0 {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		progress(opts, "keep logs: %v", err)
		return
	}
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, filepath.Base(l)), b, 0o644)
		}
		if err != nil {
			progress(opts, "keep logs: %v", err)
		}
	}
	progress(opts, "the processes' logs of this failed run: %s", dir)
}

// campaignSpec is the campaign of a run: the uploaded audience, and a silent or visible
// message for the platforms p.Message covers.
func campaignSpec(name string, p Params) sender.CampaignSpec {
	spec := sender.CampaignSpec{
		Name:                    "bench " + name,
		Audience:                sender.AudienceSource{Object: "audiences/" + name + ".csv"},
		Silent:                  *p.Silent,
		TTLSeconds:              300,
		DeliveryDeadlineSeconds: p.DeliveryDeadlineSeconds,
		ControlPercent:          p.ControlPercent,
		Message: sender.MessageSpec{
			APNs: &sender.APNsSpec{Payload: json.RawMessage(`{"aps":{"alert":{"title":"Salvo","body":"The spot is on air"}}}`)},
			FCM:  &sender.FCMSpec{Title: "Salvo", Body: "The spot is on air", Data: map[string]string{"spot": "on-air"}},
		},
	}
	if *p.Silent {
		spec.Message.APNs.Payload = json.RawMessage(`{"aps":{"content-available":1},"spot":"on-air"}`)
	}
	switch p.Message {
	case "fcm-only":
		spec.Message.APNs = nil
	case "apns-only":
		spec.Message.FCM = nil
	}
	for i, pct := range p.Variants {
		spec.Variants = append(spec.Variants, sender.VariantSpec{Name: fmt.Sprintf("v%d", i+1), Percent: pct})
	}
	return spec
}

// mockProc is the mock servers of a run: a child process, or in-process for tests.
type mockProc struct {
	ready mockpush.Ready
	stop  func()
}

func mockQuota(p Params) int {
	if p.Mock.FCMQuotaPerMinute > 0 {
		return p.Mock.FCMQuotaPerMinute
	}
	return 600000
}

func startMock(ctx context.Context, p Params, work string, opts Options) (*mockProc, error) {
	dir := filepath.Join(work, "mock")
	if opts.InProcessMock {
		cfg := mockpush.DefaultConfig()
		cfg.Dir = dir
		if p.Mock.MaxStreams > 0 {
			cfg.MaxConcurrentStreams = uint32(p.Mock.MaxStreams)
		}
		cfg.FCMQuotaPerMinute = mockQuota(p)
		cfg.KeepAccepted = checksIdentity(p)
		cfg.APNsTopic, cfg.FCMProject = loadgen.DefaultAPNsTopic, loadgen.DefaultFCMProject
		srv, err := mockpush.Start(ctx, cfg)
		if err != nil {
			return nil, setupErr("mock: %v", err)
		}
		return &mockProc{ready: srv.Ready(), stop: func() { _ = srv.Close() }}, nil
	}
	bin := opts.MockBinary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, setupErr("mock: find salvo binary: %v", err)
		}
		bin = exe
	}
	readyFile := filepath.Join(work, "mock-ready.json")
	args := []string{"mockpush", "--ready-file", readyFile, "--dir", dir,
		"--fcm-quota", strconv.Itoa(mockQuota(p)),
		// The synthetic registry's devices carry these app IDs.
		"--apns-topic", loadgen.DefaultAPNsTopic, "--fcm-project", loadgen.DefaultFCMProject}
	if p.Mock.MaxStreams > 0 {
		args = append(args, "--max-streams", strconv.Itoa(p.Mock.MaxStreams))
	}
	if checksIdentity(p) {
		args = append(args, "--keep-accepted")
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, setupErr("mock: start %s: %v", bin, err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
	}
	var ready mockpush.Ready
	err := waitFor(ctx, 30*time.Second, func() (bool, error) {
		r, err := mockpush.ReadReadyFile(readyFile)
		if err != nil {
			if cmd.ProcessState != nil {
				return false, errors.New("mock exited")
			}
			return false, nil
		}
		ready = r
		return true, nil
	})
	if err != nil {
		stop()
		return nil, setupErr("mock: %v", err)
	}
	return &mockProc{ready: ready, stop: stop}, nil
}

// pressAll presses GO n times at the same instant: n goroutines, each with its own API
// client and connection, released together. A press that errs is an error; the answers are
// judged by results.Build.
func pressAll(ctx context.Context, base *api.Client, id string, n int) ([]*sender.PressResult, error) {
	out := make([]*sender.PressResult, n)
	errs := make([]error, n)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		tr := &http.Transport{}
		client := &api.Client{URL: base.URL, Token: base.Token, HTTP: &http.Client{Transport: tr, Timeout: time.Minute}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer tr.CloseIdleConnections()
			<-gate
			out[i], errs[i] = client.Press(ctx, id)
		}()
	}
	close(gate)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func pressSummary(ps []*sender.PressResult) map[string]int {
	m := map[string]int{"started": 0, "already_pressed": 0}
	for _, p := range ps {
		if p.AlreadyPressed {
			m["already_pressed"]++
		} else {
			m["started"]++
		}
	}
	return m
}

// waitSend waits until the rig sees want recipients finished, printing a progress line once
// a second and a line when 95% and 99% of them are, and calling tick at every step. It
// reports whether the timeout passed first.
func waitSend(ctx context.Context, r rig, want int64, timeout time.Duration, pressedAt time.Time, opts Options,
	tick func(context.Context) error) (timedOut bool, err error) {
	deadline := time.Now().Add(timeout)
	step := time.NewTicker(50 * time.Millisecond)
	defer step.Stop()
	lastPrint, lastDone := time.Now(), int64(0)
	marks := []int{95, 99}
	since := func() float64 { return time.Since(pressedAt).Seconds() }
	for {
		if err := tick(ctx); err != nil {
			return false, err
		}
		done, line, err := r.progress(ctx)
		if err != nil {
			return false, err
		}
		for len(marks) > 0 && want > 0 && done*100 >= want*int64(marks[0]) {
			progress(opts, "t+%5.1fs  %d%% of recipients finished", since(), marks[0])
			marks = marks[1:]
		}
		if done >= want {
			progress(opts, "done: %s; %.2f s after GO", line, since())
			return false, nil
		}
		if time.Since(lastPrint) >= time.Second {
			pct := 0.0
			if want > 0 {
				pct = 100 * float64(done) / float64(want)
			}
			rate := float64(done-lastDone) / time.Since(lastPrint).Seconds()
			progress(opts, "t+%5.1fs  %d / %d (%5.1f%%, %.0f/s)  %s", since(), done, want, pct, rate, line)
			lastPrint, lastDone = time.Now(), done
		}
		if time.Now().After(deadline) {
			return true, nil
		}
		select {
		case <-ctx.Done():
			return true, nil
		case <-step.C:
		}
	}
}

// waitFor polls cond every 50 ms until it is true, fails, or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	return waitEvery(ctx, timeout, 50*time.Millisecond, cond)
}

// waitEvery polls cond every step until it is true, fails, or timeout passes.
func waitEvery(ctx context.Context, timeout, step time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(step):
		}
	}
}

// progress writes one line to opts.Progress, if any.
func progress(opts Options, format string, a ...any) {
	if opts.Progress != nil {
		fmt.Fprintf(opts.Progress, format+"\n", a...)
	}
}

func mockCPU(s mockpush.Stats) float64 {
	if s.Process == nil {
		return 0
	}
	return s.Process.CPUSeconds
}

// mockArrivals reads the mock's receipts of both platforms into a histogram of arrival
// times from the press: the mock's own view of the milestones.
func mockArrivals(ctx context.Context, ctl *mockpush.Control, pressedAt time.Time) (*hdrhistogram.Histogram, error) {
	h := metrics.NewLatencyHistogram()
	for _, platform := range []string{"apns", "fcm"} {
		rc, err := ctl.Receipts(ctx, platform)
		if err != nil {
			return nil, setupErr("mock receipts: %v", err)
		}
		base := rc.Epoch.Sub(pressedAt)
		for _, o := range rc.Offsets {
			metrics.RecordLatency(h, base+time.Duration(o)*time.Microsecond)
		}
	}
	return h, nil
}
