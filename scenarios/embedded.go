package scenarios

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/salvopush/salvo/loadgen"
	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
	"github.com/salvopush/salvo/sender/auth"
	"github.com/salvopush/salvo/sender/diskregistry"
	"github.com/salvopush/salvo/sender/embedded"
	"github.com/salvopush/salvo/sender/transport"
)

// embeddedRig runs the whole pipeline in this process (sender/embedded) on the synthetic
// registry on disk: the default mode, what `make bench` runs.
type embeddedRig struct {
	p    Params
	work string
	opts Options

	reg        *diskregistry.Registry
	regDir     string
	transports transport.Set
	sys        *embedded.System
	redeliver  *redelivery // the fan-out's view of the queues in a redelivery run
}

func newEmbeddedRig(ctx context.Context, p Params, work string, opts Options) (*embeddedRig, error) {
	reg, dir, err := registryFor(ctx, p, opts)
	if err != nil {
		return nil, err
	}
	return &embeddedRig{p: p, work: work, opts: opts, reg: reg, regDir: dir}, nil
}

func (r *embeddedRig) start(ctx context.Context, ready mockpush.Ready) (*api.Client, []byte, error) {
	audience, err := os.ReadFile(filepath.Join(r.regDir, "audience.csv"))
	if err != nil {
		return nil, nil, setupErr("audience: %v", err)
	}
	if r.transports, err = newTransports(ctx, r.p, ready); err != nil {
		return nil, nil, err
	}
	// The API checks a token, as a deployment's does; the run holds the only one.
	token := auth.NewToken()
	cfg := embedded.Config{Dir: filepath.Join(r.work, "objects"), Registry: r.reg,
		Transports: r.transports, Fanout: r.p.FanoutLoops, Send: r.p.SendLoops, Workers: r.p.Workers, Chunk: r.p.Chunk,
		Retry: sender.RetryPolicy{Attempts: r.p.RetryAttempts}, Log: r.opts.Log,
		Users: auth.Single("bench", token, auth.Admin), Token: token}
	if r.p.Redeliver {
		r.redeliver = newRedelivery()
		cfg.FanoutQueues, cfg.Visibility = r.redeliver.wrap, redeliverVisibility
	}
	r.sys, err = embedded.Start(ctx, cfg)
	if err != nil {
		return nil, nil, setupErr("%v", err)
	}
	return r.sys.Client(), audience, nil
}

// startSenders has nothing to do: the send workers run from the start and preload on
// prepare.
func (r *embeddedRig) startSenders(context.Context, string) error { return nil }

func (r *embeddedRig) resetStats() {
	for _, w := range r.sys.Workers {
		w.ResetStats()
	}
}

func (r *embeddedRig) cpuSeconds() float64 { return cpuSeconds() }

func (r *embeddedRig) progress(context.Context) (int64, string, error) {
	st := r.sys.Stats()
	done := st.Done()
	return done, fmt.Sprintf("accepted %d, rejected %d, failed %d, retries %d",
		st.Accepted, st.RejectedTotal(), st.FailedTotal(), st.Retries), nil
}

// collect reads the workers' statistics in place; every in-process worker reports.
func (r *embeddedRig) collect(context.Context, string) (*sender.SendStats, int, int64, error) {
	return r.sys.Stats(), r.p.Workers, peakRSS(), nil
}

// interrupt is refused: the pipeline runs in this process (mode all runs it as a child).
func (r *embeddedRig) interrupt(context.Context, syscall.Signal, func(string)) (*api.Client, error) {
	return nil, setupErr("interrupt: mode embedded has no process to signal (use mode all)")
}

func (r *embeddedRig) queues(context.Context) (sender.Queue, sender.Queue, error) {
	return r.sys.Batches, r.sys.DeadLetters, nil
}

// batchesLeft counts the batch queue's messages, visible or in flight.
func (r *embeddedRig) batchesLeft(context.Context) (int64, error) {
	st := r.sys.Batches.Stats()
	return int64(st.Visible + st.InFlight), nil
}

func (r *embeddedRig) redelivered() (int64, int64) { return r.redeliver.counts() }

func (r *embeddedRig) extra() map[string]any {
	return map[string]any{"fanout_loops": r.p.FanoutLoops}
}

func (r *embeddedRig) close() {
	if r.sys != nil {
		_ = r.sys.Close() // the run's outcome is already measured
	}
	if r.transports != nil {
		_ = r.transports.Close()
	}
	_ = r.reg.Close()
}

// registryFor opens (generating it first if missing) the synthetic registry of p and
// returns it with its folder.
func registryFor(ctx context.Context, p Params, opts Options) (*diskregistry.Registry, string, error) {
	spec := registrySpec(p)
	if err := spec.Validate(); err != nil {
		return nil, "", setupErr("registry: %v", err)
	}
	dir := filepath.Join(opts.CacheDir, fmt.Sprintf("registry-%d-ios%g-multi%g-invalid%g-seed%d",
		p.Audience, p.IOSShare, p.MultiDeviceShare, p.InvalidShare, p.Seed))
	reg, err := diskregistry.Open(dir)
	if err != nil {
		progress(opts, "generating registry of %d users in %s", p.Audience, dir)
		if _, err := loadgen.WriteRegistry(ctx, spec, dir); err != nil {
			return nil, "", setupErr("generate registry: %v", err)
		}
		if reg, err = diskregistry.Open(dir); err != nil {
			return nil, "", setupErr("open registry: %v", err)
		}
	}
	return reg, dir, nil
}

// registrySpec is the synthetic registry of p.
func registrySpec(p Params) loadgen.RegistrySpec {
	return loadgen.RegistrySpec{Users: p.Audience, IOSShare: p.IOSShare, MultiDeviceShare: p.MultiDeviceShare,
		InvalidShare: p.InvalidShare, Seed: p.Seed}
}

// cpuSeconds is this process's user + system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// peakRSS is this process's peak resident set size in bytes.
func peakRSS() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	if runtime.GOOS == "darwin" {
		return ru.Maxrss
	}
	return ru.Maxrss * 1024
}
