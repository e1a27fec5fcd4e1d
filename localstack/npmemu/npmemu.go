package npmemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/salvopush/salvo/sender/awsconfig"
)

// Environment variables the package reads or sets.
const (
	// EnvToolsDir names the folder install-emulators.sh filled (`make test` sets it).
	EnvToolsDir = "SALVO_TOOLS_DIR"
	// EnvEndpoints holds the JSON of running emulators' Endpoints. Run sets it for the test
	// binary so that every Start shares one pair of emulators; set it by hand to point tests
	// at emulators started elsewhere.
	EnvEndpoints = "SALVO_EMULATOR_ENDPOINTS"
)

// Region is the region the emulators are addressed with.
const Region = "us-east-1"

// Endpoints are the base URLs of running emulators, all on 127.0.0.1.
type Endpoints struct {
	SQS      string `json:"sqs"`      // fauxqs (SQS JSON protocol)
	S3       string `json:"s3"`       // fauxqs (path-style S3)
	DynamoDB string `json:"dynamodb"` // dynalite
}

// AWSConfig returns the awsconfig.Config that talks to these emulators: static "test"
// credentials, path-style S3, checksums only when required.
func (e Endpoints) AWSConfig() awsconfig.Config {
	return awsconfig.Config{
		Region:                Region,
		SQSEndpoint:           e.SQS,
		S3Endpoint:            e.S3,
		DynamoDBEndpoint:      e.DynamoDB,
		AccessKeyID:           "test",
		SecretAccessKey:       "test",
		S3PathStyle:           true,
		ChecksumsWhenRequired: true,
	}
}

// Clients builds SQS, S3 and DynamoDB clients for these emulators; it fails t on error.
func (e Endpoints) Clients(t testing.TB) awsconfig.Clients {
	t.Helper()
	c, err := e.AWSConfig().Clients(t.Context())
	if err != nil {
		t.Fatalf("npmemu: clients: %v", err)
	}
	return c
}

// Env returns the standard AWS environment variables that point a child process (salvo
// serve, salvo worker) at these emulators; append it to os.Environ() for exec.Cmd.Env.
func (e Endpoints) Env() []string {
	return []string{
		"AWS_REGION=" + Region,
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_ENDPOINT_URL_SQS=" + e.SQS,
		"AWS_ENDPOINT_URL_S3=" + e.S3,
		"AWS_ENDPOINT_URL_DYNAMODB=" + e.DynamoDB,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Start returns running emulators for t. When the test binary runs under Run (or
// SALVO_EMULATOR_ENDPOINTS is set), every test shares those; otherwise Start launches a pair
// for t and stops it in t.Cleanup. Without the tools it skips t with a hint to run
// `make emulators`, except when CI=true, where it fails t: CI must run these tests. In -short
// mode it skips t.
func Start(t testing.TB) Endpoints {
	t.Helper()
	if testing.Short() {
		t.Skip("npmemu: integration test against the AWS emulators; skipped in -short mode")
	}
	if ep, ok, err := fromEnv(); err != nil {
		t.Fatalf("npmemu: %v", err)
	} else if ok {
		err := ep.alive(t.Context())
		if err == nil {
			return ep
		}
		// Something ended the shared pair; give this test a pair of its own.
		t.Logf("npmemu: shared emulators gone (%v); starting a pair for %s", err, t.Name())
	}
	p, err := launch(t.Context(), Ports{})
	if err != nil {
		if errors.Is(err, ErrNoTools) {
			const hint = "run `make emulators` (or bash localstack/install-emulators.sh .tools) to install them"
			if os.Getenv("CI") == "true" {
				t.Fatalf("npmemu: %v; CI must run the AWS tests: %s", err, hint)
			}
			t.Skipf("npmemu: %v; %s", err, hint)
		}
		t.Fatalf("npmemu: %v", err)
	}
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Logf("npmemu: stop: %v", err)
		}
	})
	return p.endpoints
}

// Run is the body of a package's TestMain: it starts one pair of emulators for the whole
// test binary (when the tools are installed and not in -short mode), runs the tests, stops
// the emulators and returns the exit code for os.Exit:
//
//	func TestMain(m *testing.M) { os.Exit(npmemu.Run(m)) }
//
// When the tools are missing Run just runs the tests; Start then skips (or fails on CI).
func Run(m *testing.M) int {
	if !flag.Parsed() {
		flag.Parse()
	}
	if testing.Short() {
		return m.Run()
	}
	if _, ok, _ := fromEnv(); ok {
		return m.Run()
	}
	p, err := launch(context.Background(), Ports{})
	if err != nil {
		if !errors.Is(err, ErrNoTools) {
			fmt.Fprintf(os.Stderr, "npmemu: %v (tests needing emulators will start their own)\n", err)
		}
		return m.Run()
	}
	defer func() {
		if err := p.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "npmemu: stop: %v\n", err)
		}
	}()
	b, _ := json.Marshal(p.endpoints)
	if err := os.Setenv(EnvEndpoints, string(b)); err != nil {
		fmt.Fprintf(os.Stderr, "npmemu: %v\n", err)
	}
	defer os.Unsetenv(EnvEndpoints)
	return m.Run()
}

// alive checks that every endpoint accepts connections.
func (e Endpoints) alive(ctx context.Context) error {
	for _, u := range []string{e.SQS, e.S3, e.DynamoDB} {
		if err := waitDial(ctx, strings.TrimPrefix(u, "http://"), time.Second); err != nil {
			return err
		}
	}
	return nil
}

// fromEnv reads EnvEndpoints.
func fromEnv() (Endpoints, bool, error) {
	s := os.Getenv(EnvEndpoints)
	if s == "" {
		return Endpoints{}, false, nil
	}
	var ep Endpoints
	if err := json.Unmarshal([]byte(s), &ep); err != nil {
		return Endpoints{}, false, fmt.Errorf("%s: %w", EnvEndpoints, err)
	}
	if ep.SQS == "" || ep.S3 == "" || ep.DynamoDB == "" {
		return Endpoints{}, false, fmt.Errorf("%s %q lacks an endpoint", EnvEndpoints, s)
	}
	return ep, true, nil
}

// ErrNoTools means install-emulators.sh has not been run (`make emulators`).
var ErrNoTools = errors.New("AWS emulators not installed")

// ToolsDir returns the tools folder: $SALVO_TOOLS_DIR, else .tools at the root of the module
// that holds the working directory.
func ToolsDir() (string, error) {
	if d := os.Getenv(EnvToolsDir); d != "" {
		return d, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, ".tools"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%w: no go.mod above the working directory and %s unset", ErrNoTools, EnvToolsDir)
		}
		dir = parent
	}
}

// InstallScript returns the path of localstack/install-emulators.sh in the module that
// holds the working directory (what `make emulators` runs).
func InstallScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "localstack", "install-emulators.sh")
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("npmemu: %s: %w", p, err)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("npmemu: no go.mod above the working directory: run from the Salvo checkout")
		}
		dir = parent
	}
}

// Ports are the ports to run the emulators on; 0 lets the kernel pick a free one.
type Ports struct {
	Fauxqs   int // SQS and S3
	Dynalite int // DynamoDB
}

// launcher runs fauxqs (SQS + S3) and dynalite (DynamoDB) in one Node process on the ports
// in SALVO_EMU_FAUXQS_PORT and SALVO_EMU_DYNALITE_PORT (0 or unset: the kernel picks),
// prints {"fauxqs":PORT,"dynalite":PORT} once both listen, and exits when its standard
// input closes, so that it never outlives the process that owns the pipe.
const launcher = `
const { startFauxqs } = await import("fauxqs");
const dynalite = (await import("dynalite")).default;
const port = (name) => Number(process.env[name] || 0);
const fq = await startFauxqs({ port: port("SALVO_EMU_FAUXQS_PORT"), logger: false });
const dy = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
await new Promise((resolve, reject) => { dy.once("error", reject); dy.listen(port("SALVO_EMU_DYNALITE_PORT"), "127.0.0.1", resolve); });
process.stdout.write(JSON.stringify({ fauxqs: fq.port, dynalite: dy.address().port }) + "\n");
const quit = () => { dy.close(); fq.stop().finally(() => process.exit(0)); setTimeout(() => process.exit(0), 2000).unref(); };
process.stdin.on("end", quit);
process.stdin.on("error", quit);
process.stdin.resume();
process.on("SIGTERM", quit);
process.on("uncaughtException", (e) => { process.stderr.write("npmemu: uncaught exception: " + (e && e.stack || e) + "\n"); });
process.on("unhandledRejection", (e) => { process.stderr.write("npmemu: unhandled rejection: " + (e && e.stack || e) + "\n"); });
`

// proc is a running launcher.
type proc struct {
	cmd       *exec.Cmd
	stdin     io.WriteCloser
	done      chan error       // receives cmd.Wait's result once
	stderr    *strings.Builder // the launcher's first 8 KiB of stderr; read only after exit
	endpoints Endpoints
}

// launch starts the emulators on ports and waits until both answer.
func launch(ctx context.Context, ports Ports) (*proc, error) {
	dir, err := ToolsDir()
	if err != nil {
		return nil, err
	}
	node := filepath.Join(dir, "node_modules", "node", "bin", "node")
	for _, f := range []string{node, filepath.Join(dir, "node_modules", "fauxqs", "package.json"), filepath.Join(dir, "node_modules", "dynalite", "package.json")} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("%w: %s missing", ErrNoTools, f)
		}
	}
	// Not exec.CommandContext: the process must outlive a test's context when Run owns it.
	cmd := exec.Command(node, "--no-warnings", "--input-type=module", "-e", launcher)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FAUXQS_LOGGER=false",
		fmt.Sprintf("SALVO_EMU_FAUXQS_PORT=%d", ports.Fauxqs), fmt.Sprintf("SALVO_EMU_DYNALITE_PORT=%d", ports.Dynalite))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	first := &firstLine{line: make(chan string, 1)}
	cmd.Stdout = first
	var stderr strings.Builder
	cmd.Stderr = &limitedWriter{w: &stderr, n: 8 << 10}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", node, err)
	}
	p := &proc{cmd: cmd, stdin: stdin, done: make(chan error, 1), stderr: &stderr}

	type listening struct {
		Fauxqs   int `json:"fauxqs"`
		Dynalite int `json:"dynalite"`
	}
	go func() { p.done <- cmd.Wait() }() // owned by p.stop, which receives from p.done

	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	var got listening
	select {
	case err := <-p.done:
		p.done <- err // for stop
		_ = p.stop()
		return nil, fmt.Errorf("emulators exited at start (%v): %s", err, stderr.String())
	case line := <-first.line:
		if json.Unmarshal([]byte(line), &got) != nil || got.Fauxqs == 0 || got.Dynalite == 0 {
			_ = p.stop()
			return nil, fmt.Errorf("emulators did not start (first line %q): %s", line, stderr.String())
		}
	case <-timer.C:
		_ = p.stop()
		return nil, fmt.Errorf("emulators did not start within 30s: %s", stderr.String())
	case <-ctx.Done():
		_ = p.stop()
		return nil, ctx.Err()
	}
	fq := fmt.Sprintf("http://127.0.0.1:%d", got.Fauxqs)
	p.endpoints = Endpoints{SQS: fq, S3: fq, DynamoDB: fmt.Sprintf("http://127.0.0.1:%d", got.Dynalite)}
	for _, addr := range []string{fmt.Sprintf("127.0.0.1:%d", got.Fauxqs), fmt.Sprintf("127.0.0.1:%d", got.Dynalite)} {
		if err := waitDial(ctx, addr, 10*time.Second); err != nil {
			_ = p.stop()
			return nil, err
		}
	}
	return p, nil
}

// stop closes the launcher's stdin (it exits on its own), and kills it if it has not exited
// after a grace period. It waits for the process, and reports a launcher that had died
// before or wrote errors, with what it wrote.
func (p *proc) stop() error {
	var early error
	select {
	case err := <-p.done:
		early = fmt.Errorf("emulators had exited before the end of the tests (%v)", err)
		p.done <- err
	default:
	}
	_ = p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		early = errors.Join(early, errors.New("emulators did not exit within 5s; killed"))
	}
	if msg := p.stderr.String(); msg != "" {
		return errors.Join(early, fmt.Errorf("emulators wrote: %s", msg))
	}
	return early
}

// waitDial waits until addr accepts TCP connections.
func waitDial(ctx context.Context, addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not answer: %w", addr, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// firstLine hands the first line written to it to line and drops the rest.
type firstLine struct {
	buf  []byte
	sent bool
	line chan string
}

func (f *firstLine) Write(b []byte) (int, error) {
	if f.sent {
		return len(b), nil
	}
	f.buf = append(f.buf, b...)
	if i := bytes.IndexByte(f.buf, '\n'); i >= 0 {
		f.line <- string(f.buf[:i])
		f.sent, f.buf = true, nil
	}
	return len(b), nil
}

// limitedWriter keeps the first n bytes written to it and drops the rest.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(b []byte) (int, error) {
	if l.n > 0 {
		k := min(len(b), l.n)
		_, _ = l.w.Write(b[:k])
		l.n -= k
	}
	return len(b), nil
}

// Launch starts a pair of emulators outside of a test (the cloud-scale benchmark uses it)
// on ports the kernel picks: it returns their endpoints and a stop function that the caller
// must call. It fails with a hint to run `make emulators` (wrapping ErrNoTools) when the
// tools are not installed.
func Launch(ctx context.Context) (Endpoints, func() error, error) {
	return LaunchOn(ctx, Ports{})
}

// LaunchOn is Launch on the given ports (`salvo emulators`). The emulators stop when stop is
// called or when the calling process exits, however it exits.
func LaunchOn(ctx context.Context, ports Ports) (Endpoints, func() error, error) {
	p, err := launch(ctx, ports)
	if err != nil {
		if errors.Is(err, ErrNoTools) {
			return Endpoints{}, nil, fmt.Errorf("npmemu: %w (run `make emulators`)", err)
		}
		return Endpoints{}, nil, fmt.Errorf("npmemu: %w", err)
	}
	return p.endpoints, p.stop, nil
}
