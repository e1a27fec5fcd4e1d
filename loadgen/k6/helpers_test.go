package k6

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/grafana/sobek"
	"go.k6.io/k6/js/modulestest"
	"go.k6.io/k6/lib"
	"go.k6.io/k6/metrics"

	"github.com/salvopush/salvo/loadgen"
	"github.com/salvopush/salvo/mockpush"
)

// testVU is one k6 VU with the extension loaded as the global `salvo`, starting in the init
// context.
type testVU struct {
	t       *testing.T
	rt      *modulestest.Runtime
	mi      *ModuleInstance
	reg     *metrics.Registry
	samples chan metrics.SampleContainer
}

// newTestVU loads root's module into a fresh VU with env as __ENV.
func newTestVU(t *testing.T, root *RootModule, env map[string]string) *testVU {
	t.Helper()
	rt := modulestest.NewRuntime(t)
	mi := root.NewModuleInstance(rt.VU).(*ModuleInstance)
	js := rt.VU.Runtime()
	if err := js.Set("salvo", mi.Exports().Named); err != nil {
		t.Fatal(err)
	}
	if env == nil {
		env = map[string]string{}
	}
	if err := js.Set("__ENV", env); err != nil {
		t.Fatal(err)
	}
	return &testVU{t: t, rt: rt, mi: mi, reg: rt.VU.InitEnvField.Registry, samples: make(chan metrics.SampleContainer, 10000)}
}

// run runs JS code and fails the test on an exception.
func (v *testVU) run(code string) sobek.Value {
	v.t.Helper()
	val, err := v.rt.VU.Runtime().RunString(code)
	if err != nil {
		v.t.Fatalf("%s: %v", code, err)
	}
	return val
}

// fails runs JS code that must throw, and returns the exception's message.
func (v *testVU) fails(code string) string {
	v.t.Helper()
	_, err := v.rt.VU.Runtime().RunString(code)
	if err == nil {
		v.t.Fatalf("%s: no exception", code)
	}
	return err.Error()
}

// iterate leaves the init context, as k6 does before the first iteration.
func (v *testVU) iterate() {
	v.rt.MoveToVUContext(&lib.State{Samples: v.samples, Tags: lib.NewVUStateTags(v.reg.RootTagSet())})
}

// drain returns the samples emitted so far.
func (v *testVU) drain() []metrics.Sample {
	var out []metrics.Sample
	for {
		select {
		case c := <-v.samples:
			out = append(out, c.GetSamples()...)
		default:
			return out
		}
	}
}

// sums adds up the values of metric's samples by the value of tag (all of them under "").
func sums(samples []metrics.Sample, metric, tag string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range samples {
		if s.Metric.Name != metric {
			continue
		}
		k := ""
		if tag != "" {
			k, _ = s.Tags.Get(tag)
		}
		out[k] += s.Value
	}
	return out
}

// count counts metric's samples.
func count(samples []metrics.Sample, metric string) int {
	n := 0
	for _, s := range samples {
		if s.Metric.Name == metric {
			n++
		}
	}
	return n
}

// startMock starts the mock servers, for the synthetic registry's apps and with a high FCM quota, and returns them and their ready
// file.
func startMock(t *testing.T) (*mockpush.Server, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := mockpush.DefaultConfig()
	cfg.Dir = filepath.Join(dir, "mock")
	cfg.FCMQuotaPerMinute = 1 << 30
	cfg.APNsTopic, cfg.FCMProject = loadgen.DefaultAPNsTopic, loadgen.DefaultFCMProject // the registry's apps
	srv, err := mockpush.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ready := filepath.Join(dir, "ready.json")
	if err := mockpush.WriteReadyFile(ready, srv.Ready()); err != nil {
		t.Fatal(err)
	}
	return srv, ready
}
