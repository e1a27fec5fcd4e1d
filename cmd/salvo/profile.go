package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/metrics"
	"runtime/pprof"
	"time"
)

// profileFlags are the --cpuprofile and --memprofile flags of a subcommand that runs the
// pipeline (`salvo bench`). Both profile the whole subcommand: set-up, resolution, preload
// and the send. The send loops, fan-out loops and burst transports' goroutines carry the
// pprof label salvo=send, salvo=fanout or salvo=burst, so `go tool pprof -tagfocus
// 'salvo=send|burst'` narrows a CPU profile to the send path (GC and the harness's own
// polling carry no label).
type profileFlags struct {
	cpu string
	mem string
}

// register adds the flags to fs.
func (p *profileFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.cpu, "cpuprofile", "", "write a CPU profile of the run to `FILE` (go tool pprof)")
	fs.StringVar(&p.mem, "memprofile", "", "write a heap profile taken when the live heap peaked to `FILE` (go tool pprof)")
}

// start begins the profiles asked for. The caller must call stop once, which ends the CPU
// profile and writes the heap profile; stop's error names the file that failed.
func (p *profileFlags) start(ctx context.Context) (stop func() error, err error) {
	var cpuFile *os.File
	if p.cpu != "" {
		if cpuFile, err = os.Create(p.cpu); err != nil {
			return nil, fmt.Errorf("cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(cpuFile); err != nil {
			cpuFile.Close()
			return nil, fmt.Errorf("cpuprofile: %w", err)
		}
	}
	if p.mem == "" {
		return func() error { return p.finish(cpuFile, nil, nil) }, nil
	}
	peak := &heapPeak{every: 200 * time.Millisecond, done: make(chan struct{})}
	wctx, cancel := context.WithCancel(ctx)
	go peak.watch(wctx)
	return func() error { return p.finish(cpuFile, peak, cancel) }, nil
}

// finish ends the CPU profile and writes the heap profile of the peak.
func (p *profileFlags) finish(cpuFile *os.File, peak *heapPeak, stopWatch func()) error {
	var errs []error
	if cpuFile != nil {
		pprof.StopCPUProfile()
		if err := cpuFile.Close(); err != nil {
			errs = append(errs, fmt.Errorf("cpuprofile: %w", err))
		}
	}
	if peak != nil {
		stopWatch()
		<-peak.done
		if err := os.WriteFile(p.mem, peak.profile.Bytes(), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("memprofile: %w", err))
		}
	}
	return errors.Join(errs...)
}

// heapPeak samples the live heap every `every` and keeps a heap profile taken at the
// highest sample (and one more at the end, if that is higher still).
type heapPeak struct {
	every   time.Duration
	done    chan struct{}
	max     uint64
	profile bytes.Buffer
}

// watch samples until ctx ends, then closes done.
func (h *heapPeak) watch(ctx context.Context) {
	defer close(h.done)
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		metrics.Read(sample)
		// A new profile only when the heap grew by an eighth: profiles are not free.
		if v := sample[0].Value.Uint64(); v > h.max+h.max/8 || h.profile.Len() == 0 {
			h.max = v
			h.profile.Reset()
			_ = pprof.Lookup("heap").WriteTo(&h.profile, 0)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
