package scenarios

import (
	"context"

	"fmt"
	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/salvopush/salvo/loadgen"
	"github.com/salvopush/salvo/localstack/npmemu"
	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
	"github.com/salvopush/salvo/sender/awsconfig"
	"github.com/salvopush/salvo/sender/awssetup"
	"github.com/salvopush/salvo/sender/dynamodb"
	"github.com/salvopush/salvo/sender/s3"
	"github.com/salvopush/salvo/sender/sqs"
)

// processRig runs the API, the fan-out worker and p.Workers send workers as separate salvo
// processes that share only the AWS emulators (fauxqs for SQS and S3, dynalite for
// DynamoDB, installed by `make emulators`), as they run as tasks on ECS. Prepare is timed
// from starting the send workers to all of them ready; the sender's figures come from the
// statistics each send worker publishes to S3 when it stops.
type processRig struct {
	p    Params
	work string
	bin  string
	opts Options

	stopEmulators func() error
	clients       awsconfig.Clients
	names         awsconfig.Names
	procs         *children
	ctl           *mockpush.Control
	mockReady     string
	client        *api.Client
	senders       []string // the send workers running
	started       int      // send workers started so far (names send1, send2...)
	status        statusCache
	cpuGone       float64 // CPU of the send workers killed
	rssGone       int64

	// redeliver, for a redelivery run, is the fan-out's view of the queues; the fan-out
	// then runs in this process (stopFanout ends it).
	redeliver  *redelivery
	stopFanout func()
}

func newProcessRig(ctx context.Context, p Params, work string, opts Options) (*processRig, error) {
	bin, err := salvoBinary(opts)
	if err != nil {
		return nil, err
	}
	eps, stop, err := npmemu.Launch(ctx)
	if err != nil {
		return nil, setupErr("%v", err)
	}
	r := &processRig{p: p, work: work, bin: bin, opts: opts, stopEmulators: stop, names: awsconfig.DefaultNames(),
		procs: &children{env: append(os.Environ(), eps.Env()...), dir: work}}
	if err := r.load(ctx, eps); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// load creates the AWS resources in the emulators and loads the synthetic registry into
// DynamoDB.
func (r *processRig) load(ctx context.Context, eps npmemu.Endpoints) error {
	var err error
	if r.clients, err = eps.AWSConfig().Clients(ctx); err != nil {
		return setupErr("aws clients: %v", err)
	}
	if err := awssetup.Setup(ctx, r.clients, r.names); err != nil {
		return setupErr("%v", err)
	}
	spec := registrySpec(r.p)
	if err := spec.Validate(); err != nil {
		return setupErr("registry: %v", err)
	}
	progress(r.opts, "loading %d users into DynamoDB (emulator)", r.p.Audience)
	loadStart := time.Now()
	if _, err := dynamodb.LoadRegistry(ctx, r.clients.DynamoDB, r.names.RegistryTable, spec.Each); err != nil {
		return setupErr("load registry: %v", err)
	}
	progress(r.opts, "registry loaded in %s", time.Since(loadStart).Round(time.Millisecond))
	return nil
}

func (r *processRig) start(ctx context.Context, ready mockpush.Ready) (*api.Client, []byte, error) {
	r.mockReady = filepath.Join(r.work, "mock-ready.json")
	if err := mockpush.WriteReadyFile(r.mockReady, ready); err != nil {
		return nil, nil, setupErr("mock ready file: %v", err)
	}
	r.ctl = &mockpush.Control{URL: ready.ControlURL}
	tokenFile := filepath.Join(r.work, "api-token")
	apiURL, err := r.procs.start(ctx, r.bin, "api", "serve", "--addr", "127.0.0.1:0", "--token-file", tokenFile)
	if err != nil {
		return nil, nil, err
	}
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		return nil, nil, setupErr("api token: %v", err)
	}
	r.client = &api.Client{URL: apiURL, Token: strings.TrimSpace(string(token))}
	r.status.reset(r.client)
	if r.p.Redeliver {
		if err := r.startFanoutHere(ctx); err != nil {
			return nil, nil, err
		}
	} else if _, err := r.procs.start(ctx, r.bin, "fanout", "worker", "--role", "fanout", "--id", "fanout"); err != nil {
		return nil, nil, err
	}
	audience, err := audienceCSV(registrySpec(r.p))
	if err != nil {
		return nil, nil, err
	}
	return r.client, audience, nil
}

// resolved has nothing to do: the API process resolves.

// startSenders starts the run's send workers and names the campaign whose progress the
// rig follows.
func (r *processRig) startSenders(ctx context.Context, id string) error {
	r.status.follow(id)
	for i := 0; i < r.p.Workers; i++ {
		if _, err := r.startSender(ctx); err != nil {
			return err
		}
	}
	return nil
}

// startSender starts one more send worker (send1, send2...) and returns its name.
func (r *processRig) startSender(ctx context.Context) (string, error) {
	r.started++
	wid := fmt.Sprintf("send%d", r.started)
	args := []string{"worker", "--role", "send", "--id", wid, "--mock-ready", r.mockReady,
		"--transport", r.p.Transport, "--send-loops", strconv.Itoa(r.p.SendLoops), "--chunk", strconv.Itoa(r.p.Chunk),
		"--connections", strconv.Itoa(r.p.Connections), "--concurrency", strconv.Itoa(r.p.Concurrency),
	}
	if r.p.PushTimeoutSeconds > 0 {
		args = append(args, "--push-timeout", (time.Duration(r.p.PushTimeoutSeconds) * time.Second).String())
	}
	if r.p.LeaseSeconds > 0 {
		args = append(args, "--lease", (time.Duration(r.p.LeaseSeconds) * time.Second).String())
	}
	if r.p.VisibilitySeconds > 0 {
		args = append(args, "--visibility", (time.Duration(r.p.VisibilitySeconds) * time.Second).String())
	}
	if _, err := r.procs.start(ctx, r.bin, wid, args...); err != nil {
		return "", err
	}
	r.senders = append(r.senders, wid)
	return wid, nil
}

// resetStats has nothing to clear: the send workers started for this campaign and publish
// statistics of their own.
func (r *processRig) resetStats() {}

func (r *processRig) cpuSeconds() float64 { return r.cpuGone + r.procs.cpu(r.senders...) }

// progress counts the recipients the ledger has finished, through the API: the send
// workers' own counts reach S3 once a second, and the requests the mock received count
// retries and repeats.
func (r *processRig) progress(ctx context.Context) (int64, string, error) {
	return r.status.progress(ctx)
}

// interrupt signals the first send worker still running and starts a replacement with a
// new ID, which preloads the campaign and joins the send.
func (r *processRig) interrupt(ctx context.Context, sig syscall.Signal, note func(string)) (*api.Client, error) {
	if len(r.senders) == 0 {
		return nil, setupErr("interrupt: no send worker running")
	}
	victim := r.senders[0]
	r.cpuGone += r.procs.cpu(victim)
	r.rssGone = max(r.rssGone, r.procs.maxRSS(victim))
	note(fmt.Sprintf("%s to send worker %s", sigName(sig), victim))
	code := r.procs.signal(victim, sig)
	r.senders = r.senders[1:]
	note(fmt.Sprintf("send worker %s exited (%s)", victim, code))
	wid, err := r.startSender(ctx)
	if err != nil {
		return nil, err
	}
	note(fmt.Sprintf("replacement send worker %s started (it preloads the campaign, then takes batches)", wid))
	return r.client, nil
}

// queues opens the batch and dead-letter queues in the emulator.
func (r *processRig) queues(ctx context.Context) (sender.Queue, sender.Queue, error) {
	b, err := sqs.Open(ctx, r.clients.SQS, r.names.BatchQueue, sqs.Options{})
	if err != nil {
		return nil, nil, setupErr("%v", err)
	}
	d, err := sqs.Open(ctx, r.clients.SQS, r.names.DeadLetterQueue, sqs.Options{})
	if err != nil {
		return nil, nil, setupErr("%v", err)
	}
	return b, d, nil
}

// batchesLeft counts the batch queue's messages, visible or in flight, as SQS reports them.
func (r *processRig) batchesLeft(ctx context.Context) (int64, error) {
	b, err := sqs.Open(ctx, r.clients.SQS, r.names.BatchQueue, sqs.Options{})
	if err != nil {
		return 0, err
	}
	out, err := r.clients.SQS.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(b.URL()),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		return 0, fmt.Errorf("batch queue attributes: %w", err)
	}
	var n int64
	for _, v := range out.Attributes {
		k, _ := strconv.ParseInt(v, 10, 64)
		n += k
	}
	return n, nil
}

func (r *processRig) redelivered() (int64, int64) { return r.redeliver.counts() }

// startFanoutHere runs the fan-out in this process, over the same emulated queues as every
// other worker, with the redelivery between it and the queues.
func (r *processRig) startFanoutHere(ctx context.Context) error {
	objects, err := s3.New(r.clients.S3, r.names.Bucket, s3.Options{})
	if err != nil {
		return setupErr("%v", err)
	}
	records, err := dynamodb.NewRecordStore(r.clients.DynamoDB, r.names.RecordsTable)
	if err != nil {
		return setupErr("%v", err)
	}
	// A short visibility brings a range whose delete was skipped back soon.
	ranges, err := sqs.Open(ctx, r.clients.SQS, r.names.RangeQueue, sqs.Options{VisibilityTimeout: redeliverVisibility})
	if err != nil {
		return setupErr("%v", err)
	}
	batches, err := sqs.Open(ctx, r.clients.SQS, r.names.BatchQueue, sqs.Options{})
	if err != nil {
		return setupErr("%v", err)
	}
	r.redeliver = newRedelivery()
	wr, wb := r.redeliver.wrap(ranges, batches)
	w, err := sender.NewWorker(sender.WorkerConfig{ID: "fanout", Objects: objects, Records: records, Ranges: wr,
		Batches: wb, Fanout: r.p.FanoutLoops, Visibility: redeliverVisibility, Log: r.opts.Log})
	if err != nil {
		return setupErr("fan-out: %v", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(runCtx); err != nil {
			r.opts.Log.Warn("fan-out", "err", err)
		}
	}()
	r.stopFanout = func() { cancel(); <-done }
	return nil
}

// collect stops the send workers gracefully (each publishes its final statistics to S3)
// and merges what they (and the killed ones, up to their last publication) published of
// every send of the campaign.
func (r *processRig) collect(ctx context.Context, id string) (*sender.SendStats, int, int64, error) {
	rss := max(r.rssGone, r.procs.maxRSS(r.senders...))
	r.cpuGone += r.procs.cpu(r.senders...)
	for _, s := range r.senders {
		r.procs.stop(s)
	}
	r.senders = nil
	objects, err := s3.New(r.clients.S3, r.names.Bucket, s3.Options{})
	if err != nil {
		return nil, 0, 0, setupErr("%v", err)
	}
	st, err := r.client.Status(ctx, id)
	if err != nil {
		return nil, 0, 0, setupErr("collect statistics: campaign %s: %v", id, err)
	}
	stats, workers, err := collectSends(ctx, objects, st.Campaign)
	return stats, workers, rss, err
}

func (r *processRig) extra() map[string]any {
	return map[string]any{"mode": "process", "backends": "fauxqs (SQS, S3) + dynalite (DynamoDB)", "chunk": r.p.Chunk}
}

func (r *processRig) close() {
	if r.stopFanout != nil {
		r.stopFanout()
	}
	r.procs.stopAll()
	_ = r.stopEmulators() // nothing to do with a failed stop at the end of a run
}

// audienceCSV renders the spec's users as an audience CSV.
func audienceCSV(spec loadgen.RegistrySpec) ([]byte, error) {
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
	_ = os.Remove(ready) // a process started again under the same name writes it anew
	cmd := exec.Command(bin, append(args, "--ready-file", ready)...)
	cmd.Env = c.env
	cmd.SysProcAttr = childAttr()
	logf, err := os.OpenFile(filepath.Join(c.dir, name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
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

// signal sends sig to one process and waits for it to exit (SIGKILL after a minute), and
// says how it exited.
func (c *children) signal(name string, sig syscall.Signal) string {
	cmd := c.procs[name]
	if cmd == nil {
		return "not running"
	}
	delete(c.procs, name)
	_ = cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			return "exit 0"
		}
		return err.Error()
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		<-done
		return "still running a minute later: killed"
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
