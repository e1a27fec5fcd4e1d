package scenarios

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
	"github.com/salvopush/salvo/sender/auth"
	"github.com/salvopush/salvo/sender/localstore"
)

// allRig runs the embedded pipeline as `salvo all`, a child process on a data folder that
// outlives it, so that a run can kill it (SIGKILL or SIGTERM) mid-send and start it again on
// the same folder, as an operator would. The sender's figures come from what the process
// published to its object store (DATA/objects/runs/...); the counts from the ledger, through
// the campaign API.
type allRig struct {
	p    Params
	work string
	bin  string
	opts Options

	regDir    string
	data      string
	mockReady string
	procs     *children
	args      []string
	client    *api.Client
	status    statusCache

	mu     sync.Mutex
	cpuAcc float64 // CPU of the processes already gone
	rss    int64
}

func newAllRig(ctx context.Context, p Params, work string, opts Options) (*allRig, error) {
	bin, err := salvoBinary(opts)
	if err != nil {
		return nil, err
	}
	reg, dir, err := registryFor(ctx, p, opts)
	if err != nil {
		return nil, err
	}
	_ = reg.Close() // the child opens it
	return &allRig{p: p, work: work, bin: bin, opts: opts, regDir: dir, data: filepath.Join(work, "all-data"),
		procs: &children{env: os.Environ(), dir: work}}, nil
}

func (r *allRig) start(ctx context.Context, ready mockpush.Ready) (*api.Client, []byte, error) {
	audience, err := os.ReadFile(filepath.Join(r.regDir, "audience.csv"))
	if err != nil {
		return nil, nil, setupErr("audience: %v", err)
	}
	r.mockReady = filepath.Join(r.work, "mock-ready.json")
	if err := mockpush.WriteReadyFile(r.mockReady, ready); err != nil {
		return nil, nil, setupErr("mock ready file: %v", err)
	}
	r.args = []string{"all", "--registry", r.regDir, "--data", r.data, "--mock-ready", r.mockReady,
		"--addr", "127.0.0.1:0", "--transport", r.p.Transport,
		"--send-loops", strconv.Itoa(r.p.SendLoops), "--fanout-loops", strconv.Itoa(r.p.FanoutLoops),
		"--chunk", strconv.Itoa(r.p.Chunk), "--connections", strconv.Itoa(r.p.Connections),
		"--concurrency", strconv.Itoa(r.p.Concurrency)}
	if r.p.PushTimeoutSeconds > 0 {
		r.args = append(r.args, "--push-timeout", (time.Duration(r.p.PushTimeoutSeconds) * time.Second).String())
	}
	if err := r.launch(ctx); err != nil {
		return nil, nil, err
	}
	return r.client, audience, nil
}

// launch starts `salvo all` and reads its URL and the API token it wrote.
func (r *allRig) launch(ctx context.Context) error {
	url, err := r.procs.start(ctx, r.bin, "all", r.args...)
	if err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(r.data, "api-token"))
	if err != nil {
		return setupErr("salvo all: api token: %v", err)
	}
	defer f.Close()
	token, err := auth.ReadToken(f)
	if err != nil {
		return setupErr("salvo all: api token: %v", err)
	}
	r.client = &api.Client{URL: url, Token: token}
	r.status.reset(r.client)
	return nil
}

// resolved has nothing to do: the child process resolves.

// startSenders has nothing to start (the process's send worker runs from the start); it
// names the campaign whose progress the rig follows.
func (r *allRig) startSenders(_ context.Context, id string) error {
	r.status.follow(id)
	return nil
}

func (r *allRig) resetStats() {}

func (r *allRig) cpuSeconds() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cpuAcc + r.procs.cpu("all")
}

// progress counts the recipients the ledger has finished, through the API.
func (r *allRig) progress(ctx context.Context) (int64, string, error) {
	return r.status.progress(ctx)
}

// interrupt signals `salvo all`, waits for it to exit and starts it again on the same data
// folder; the new process resumes the interrupted send by itself.
func (r *allRig) interrupt(ctx context.Context, sig syscall.Signal, note func(string)) (*api.Client, error) {
	r.mu.Lock()
	r.cpuAcc += r.procs.cpu("all")
	r.rss = max(r.rss, r.procs.maxRSS("all"))
	r.mu.Unlock()
	note(fmt.Sprintf("%s to salvo all", sigName(sig)))
	code := r.procs.signal("all", sig)
	note(fmt.Sprintf("salvo all exited (%s)", code))
	if err := r.launch(ctx); err != nil {
		return nil, err
	}
	note("salvo all started again on the same --data")
	return r.client, nil
}

func (r *allRig) queues(context.Context) (sender.Queue, sender.Queue, error) { return nil, nil, nil }

func (r *allRig) batchesLeft(context.Context) (int64, error) { return -1, nil }

func (r *allRig) redelivered() (int64, int64) { return 0, 0 }

// collect stops `salvo all` with SIGTERM (it publishes its final figures) and merges what
// it published of every send of the campaign.
func (r *allRig) collect(ctx context.Context, id string) (*sender.SendStats, int, int64, error) {
	st, err := r.client.Status(ctx, id)
	if err != nil {
		return nil, 0, 0, setupErr("collect statistics: campaign %s: %v", id, err)
	}
	r.mu.Lock()
	r.rss = max(r.rss, r.procs.maxRSS("all"))
	r.cpuAcc += r.procs.cpu("all")
	rss := r.rss
	r.mu.Unlock()
	r.procs.stop("all")
	objects, err := localstore.Open(filepath.Join(r.data, "objects"))
	if err != nil {
		return nil, 0, 0, setupErr("collect statistics: %v", err)
	}
	stats, workers, err := collectSends(ctx, objects, st.Campaign)
	return stats, workers, rss, err
}

func (r *allRig) extra() map[string]any {
	return map[string]any{"mode": "all", "fanout_loops": r.p.FanoutLoops, "chunk": r.p.Chunk}
}

func (r *allRig) close() { r.procs.stopAll() }

// collectSends merges the figures the workers published of every send of a campaign (the
// GO press's and each redrive's) and counts the workers that published any.
func collectSends(ctx context.Context, objects sender.ObjectStore, rec *sender.CampaignRecord) (*sender.SendStats, int, error) {
	all := sender.NewSendStats()
	workers := map[string]bool{}
	for _, snd := range rec.Sends() {
		st, ws, err := sender.CollectSendStats(ctx, objects, rec.ID, snd.ID)
		if err != nil {
			return nil, 0, setupErr("collect statistics: %v", err)
		}
		all.Merge(st)
		for _, w := range ws {
			workers[w.Worker] = true
		}
	}
	return all, len(workers), nil
}

// statusCache reads a campaign's progress through the API at most every 200 ms (each read
// counts the ledger and the published figures).
type statusCache struct {
	mu       sync.Mutex
	client   *api.Client
	id       string
	at       time.Time
	finished int64
	line     string
}

func (c *statusCache) reset(client *api.Client) {
	c.mu.Lock()
	c.client, c.at = client, time.Time{}
	c.mu.Unlock()
}

// follow names the campaign progress reads.
func (c *statusCache) follow(id string) {
	c.mu.Lock()
	c.id, c.at = id, time.Time{}
	c.mu.Unlock()
}

// progress returns the recipients the ledger has finished (accepted, rejected or failed);
// after a failed read, the last ones known.
func (c *statusCache) progress(ctx context.Context) (int64, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.id == "" || time.Since(c.at) < 200*time.Millisecond {
		return c.finished, c.line, nil
	}
	st, err := c.client.Status(ctx, c.id)
	c.at = time.Now()
	if err != nil {
		// A slow answer on a loaded machine is no reason to stop following: the run's
		// timeout bounds a pipeline that stopped answering for good.
		return c.finished, fmt.Sprintf("%s (last read failed: %v)", c.line, err), nil
	}
	if p := st.Progress; p != nil {
		c.finished = p.Accepted + p.Rejected + p.Failed
		c.line = fmt.Sprintf("ledger: accepted %d, rejected %d, failed %d, in flight %d", p.Accepted, p.Rejected, p.Failed, p.InFlight)
	}
	return c.finished, c.line, nil
}

// sigName names a signal the way kill(1) does.
func sigName(sig syscall.Signal) string {
	if sig == syscall.SIGTERM {
		return "SIGTERM"
	}
	return "SIGKILL"
}

// salvoBinary is the salvo binary that runs the child processes: opts.MockBinary, or this
// executable.
func salvoBinary(opts Options) (string, error) {
	if opts.MockBinary != "" {
		return opts.MockBinary, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", setupErr("find salvo binary: %v", err)
	}
	return exe, nil
}
