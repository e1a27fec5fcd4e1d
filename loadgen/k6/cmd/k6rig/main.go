// Command k6rig starts what a k6 script of loadgen/k6 runs against, runs the given command
// (bin/k6 run ...) with the environment that points the script at it, stops everything,
// and exits with the command's exit code (k6: 0 when the thresholds hold, 99 when one
// fails). A failure of the rig itself exits 2.
//
//	k6rig [--mode push|campaign] [--salvo bin/salvo] [--users N] [--apis N] -- COMMAND [ARGS...]
//
// --mode push starts the mock APNs and FCM servers (in this process, with an FCM quota no
// flood reaches). --mode campaign starts the pipeline in process mode as on ECS: the AWS
// emulators (fauxqs, dynalite; `make emulators`), a synthetic registry of --users users in
// DynamoDB, the mock servers, --apis `salvo serve` replicas, a fan-out worker and a send
// worker, each a separate salvo process sharing only the emulators.
//
// The command gets SALVO_READY_FILE (the mock's ready file: endpoints, credentials and the
// control URL), and in campaign mode SALVO_API_URLS (the replicas, comma-separated),
// SALVO_AUDIENCE_FILE (a CSV of every user of the registry) and SALVO_WORKERS (the send
// workers to prepare).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/salvopush/salvo/loadgen"
	"github.com/salvopush/salvo/localstack/npmemu"
	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender/auth"
	"github.com/salvopush/salvo/sender/awsconfig"
	"github.com/salvopush/salvo/sender/awssetup"
	"github.com/salvopush/salvo/sender/dynamodb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "k6rig:", err)
	}
	os.Exit(code)
}

// config is the rig's command line.
type config struct {
	mode    string
	salvo   string
	users   int
	apis    int
	command []string
}

// parse reads the command line; the command follows "--".
func parse(args []string, stderr io.Writer) (config, error) {
	c := config{}
	fs := flag.NewFlagSet("k6rig", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.mode, "mode", "push", "push (the mock servers) or campaign (the pipeline in process mode, with the mock servers)")
	fs.StringVar(&c.salvo, "salvo", "bin/salvo", "the salvo binary (campaign mode)")
	fs.IntVar(&c.users, "users", 2000, "users in the synthetic registry (campaign mode)")
	fs.IntVar(&c.apis, "apis", 2, "`salvo serve` replicas (campaign mode)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: k6rig [flags] -- COMMAND [ARGS...]\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.command = fs.Args()
	switch {
	case c.mode != "push" && c.mode != "campaign":
		return c, fmt.Errorf("--mode %q: want push or campaign", c.mode)
	case c.users < 1 || c.users > 1_000_000:
		return c, fmt.Errorf("--users %d: out of 1..1000000", c.users)
	case c.apis < 1 || c.apis > 16:
		return c, fmt.Errorf("--apis %d: out of 1..16", c.apis)
	case len(c.command) == 0:
		return c, errors.New("no command after --")
	}
	return c, nil
}

// run starts the rig, runs the command and returns its exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	c, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0, nil
	}
	if err != nil {
		return 2, err
	}
	r, err := start(ctx, c, stderr)
	if r != nil {
		defer r.stop()
	}
	if err != nil {
		return 2, err
	}
	cmd := exec.CommandContext(ctx, c.command[0], c.command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	cmd.Env = append(os.Environ(), r.env...)
	// On SIGINT/SIGTERM the command gets SIGINT (k6 then stops and prints its summary).
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	before := r.mock.Stats()
	err = cmd.Run()
	report(stderr, c.mode, before, r.mock.Stats(), cmd.ProcessState)
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), nil
	case err != nil:
		return 2, fmt.Errorf("%s: %w", c.command[0], err)
	}
	return 0, nil
}

// report prints what the mock counted while the command ran and the CPU time it and the
// command took per push: in push mode, the command is the only client and the mock is this
// process, which does nothing else meanwhile.
func report(w io.Writer, mode string, before, after mockpush.Stats, ps *os.ProcessState) {
	d := func(f func(mockpush.PlatformStats) int64) int64 {
		return f(after.APNs) + f(after.FCM) - f(before.APNs) - f(before.FCM)
	}
	received := d(func(p mockpush.PlatformStats) int64 { return p.Received })
	fmt.Fprintf(w, "k6rig: the mock received %d pushes (accepted %d, unique %d, duplicates %d)\n", received,
		d(func(p mockpush.PlatformStats) int64 { return p.Accepted }),
		d(func(p mockpush.PlatformStats) int64 { return p.Unique }),
		d(func(p mockpush.PlatformStats) int64 { return p.Duplicates }))
	if mode != "push" || received == 0 || ps == nil || before.Process == nil || after.Process == nil {
		return
	}
	mockCPU := after.Process.CPUSeconds - before.Process.CPUSeconds
	cmdCPU := (ps.UserTime() + ps.SystemTime()).Seconds()
	fmt.Fprintf(w, "k6rig: CPU per push: command %.2f us (%.2f s), mock %.2f us (%.2f s)\n",
		cmdCPU*1e6/float64(received), cmdCPU, mockCPU*1e6/float64(received), mockCPU)
}

// rig is what start started; stop ends it in reverse order.
type rig struct {
	dir   string
	env   []string
	mock  *mockpush.Server
	stops []func()
	// summary describes the registry (campaign mode).
	summary loadgen.Summary
}

func (r *rig) stop() {
	for i := len(r.stops) - 1; i >= 0; i-- {
		r.stops[i]()
	}
}

// start brings the rig of c up. On error the returned rig (if any) holds what was started.
func start(ctx context.Context, c config, log io.Writer) (*rig, error) {
	dir, err := os.MkdirTemp("", "k6rig-")
	if err != nil {
		return nil, err
	}
	r := &rig{dir: dir}
	r.stops = append(r.stops, func() { os.RemoveAll(dir) })

	mcfg := mockpush.DefaultConfig()
	mcfg.Dir = filepath.Join(dir, "mock")
	mcfg.FCMQuotaPerMinute = 1 << 30                                                      // no flood of a bounded run reaches it
	mcfg.APNsTopic, mcfg.FCMProject = loadgen.DefaultAPNsTopic, loadgen.DefaultFCMProject // the registry's apps
	if r.mock, err = mockpush.Start(ctx, mcfg); err != nil {
		return r, err
	}
	r.stops = append(r.stops, func() { r.mock.Close() })
	ready := filepath.Join(dir, "mock-ready.json")
	if err := mockpush.WriteReadyFile(ready, r.mock.Ready()); err != nil {
		return r, err
	}
	r.env = append(r.env, "SALVO_READY_FILE="+ready)
	if c.mode == "push" {
		return r, nil
	}
	return r, r.startPipeline(ctx, c, ready, log)
}

// startPipeline starts the emulators and the salvo processes of campaign mode.
func (r *rig) startPipeline(ctx context.Context, c config, ready string, log io.Writer) error {
	bin, err := filepath.Abs(c.salvo)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("--salvo: %w (run make build)", err)
	}
	eps, stopEmulators, err := npmemu.Launch(ctx)
	if err != nil {
		return err
	}
	r.stops = append(r.stops, func() { _ = stopEmulators() })
	clients, err := eps.AWSConfig().Clients(ctx)
	if err != nil {
		return err
	}
	names := awsconfig.DefaultNames()
	if err := awssetup.Setup(ctx, clients, names); err != nil {
		return err
	}
	spec := loadgen.RegistrySpec{Users: c.users, IOSShare: 0.5, MultiDeviceShare: 0.1, Seed: loadgen.DefaultSeed}
	regDir := filepath.Join(r.dir, "registry")
	if r.summary, err = loadgen.WriteRegistry(ctx, spec, regDir); err != nil {
		return err
	}
	fmt.Fprintf(log, "k6rig: loading %d users into DynamoDB (emulator)\n", c.users)
	if _, err := dynamodb.LoadRegistry(ctx, clients.DynamoDB, names.RegistryTable, spec.Each); err != nil {
		return err
	}

	procs := &procs{bin: bin, dir: r.dir, env: append(os.Environ(), eps.Env()...)}
	r.stops = append(r.stops, procs.stopAll)
	// The API replicas check bearer tokens like a deployment's: one admin, whose token the
	// script gets as SALVO_TOKEN.
	token, authFile := auth.NewToken(), filepath.Join(r.dir, "auth.json")
	if err := auth.WriteFile(authFile, auth.File{Users: []auth.User{{Name: "k6", TokenSHA256: auth.Hash(token), Roles: []auth.Role{auth.Admin}}}}); err != nil {
		return err
	}
	var urls []string
	for i := range c.apis {
		url, err := procs.start(ctx, fmt.Sprintf("api%d", i+1), "serve", "--addr", "127.0.0.1:0", "--auth-file", authFile)
		if err != nil {
			return err
		}
		urls = append(urls, url)
	}
	if _, err := procs.start(ctx, "fanout", "worker", "--role", "fanout", "--id", "fanout"); err != nil {
		return err
	}
	if _, err := procs.start(ctx, "send1", "worker", "--role", "send", "--id", "send1", "--mock-ready", ready, "--transport", "burst"); err != nil {
		return err
	}
	fmt.Fprintf(log, "k6rig: %d API replicas %s, a fan-out and a send worker; logs in %s\n", c.apis, strings.Join(urls, " "), r.dir)
	r.env = append(r.env, "SALVO_API_URLS="+strings.Join(urls, ","), "SALVO_TOKEN="+token,
		"SALVO_AUDIENCE_FILE="+filepath.Join(regDir, r.summary.AudienceFile), "SALVO_WORKERS=1")
	return nil
}

// procs are the salvo child processes of the rig.
type procs struct {
	bin, dir string
	env      []string
	running  []child
}

// child is a started process; exited is closed once it has been waited for.
type child struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// start runs `salvo args... --ready-file F`, waits up to a minute for F and returns its
// content (an API's URL, a worker's ID). Output goes to NAME.log in the rig's folder.
func (p *procs) start(ctx context.Context, name string, args ...string) (string, error) {
	ready := filepath.Join(p.dir, name+".ready")
	logPath := filepath.Join(p.dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	defer logf.Close()
	cmd := exec.Command(p.bin, append(args, "--ready-file", ready)...)
	cmd.Env, cmd.Stdout, cmd.Stderr = p.env, logf, logf
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start %s: %w", name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }() // ends when the process does (stopAll)
	p.running = append(p.running, child{cmd: cmd, exited: exited})
	for deadline := time.Now().Add(time.Minute); ; {
		if b, err := os.ReadFile(ready); err == nil {
			return string(b), nil
		}
		select {
		case <-exited:
			out, _ := os.ReadFile(logPath)
			return "", fmt.Errorf("%s exited at start: %s", name, strings.TrimSpace(string(out)))
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s wrote no ready file within a minute (log: %s)", name, logPath)
		}
	}
}

// stopAll sends SIGTERM to every process, newest first, and waits up to 10 s for each
// before killing it.
func (p *procs) stopAll() {
	for i := len(p.running) - 1; i >= 0; i-- {
		c := p.running[i]
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
	}
	p.running = nil
}
