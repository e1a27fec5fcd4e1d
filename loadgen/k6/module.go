package k6

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/grafana/sobek"
	"go.k6.io/k6/js/common"
	"go.k6.io/k6/js/modules"
	"go.k6.io/k6/metrics"
)

// ImportPath is the name scripts import the extension by.
const ImportPath = "k6/x/salvo"

// k6 discovers extensions through a registry filled from init functions (the xk6
// convention); this registration is the only package-level state, and k6's design requires
// it.
func init() {
	modules.Register(ImportPath, New())
}

// Metric names. salvo_push_latency and salvo_push_accepted are a contract (see
// docs/k6.md): CI thresholds and dashboards read them.
const (
	MetricPushLatency      = "salvo_push_latency"
	MetricPushAccepted     = "salvo_push_accepted"
	MetricPushRejected     = "salvo_push_rejected"
	MetricPushFailed       = "salvo_push_failed"
	MetricCampaignPresses  = "salvo_campaign_presses"
	MetricCampaignDuration = "salvo_campaign_call_duration"
)

// RootModule is the extension's process-wide state: the push transports every VU shares and
// the source of generated device tokens. k6 creates one ModuleInstance per VU from it.
type RootModule struct {
	transports *transportCache
	messages   *messageCache
	tokens     *tokenSource
	// run names this process's default campaign (the collapse ID the mocks count
	// duplicates by).
	run string
}

var _ modules.Module = (*RootModule)(nil)

// New returns a root module with a fresh token prefix and no transport open yet.
func New() *RootModule {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail
	id := hex.EncodeToString(b[:])
	return &RootModule{transports: newTransportCache(), messages: newMessageCache(),
		tokens: newTokenSource(id), run: "k6-" + id}
}

// NewModuleInstance registers the extension's metrics (idempotent across VUs) and returns
// the VU's instance. k6 calls it in the init context of each VU that imports the module.
func (r *RootModule) NewModuleInstance(vu modules.VU) modules.Instance {
	m, err := registerMetrics(vu.InitEnv().Registry)
	if err != nil {
		common.Throw(vu.Runtime(), err)
	}
	return &ModuleInstance{root: r, vu: vu, metrics: m}
}

// ModuleInstance is the extension as one VU sees it.
type ModuleInstance struct {
	root    *RootModule
	vu      modules.VU
	metrics *moduleMetrics
}

var _ modules.Instance = (*ModuleInstance)(nil)

// Exports are the constructors `new Push({...})` and `new Campaigns({...})`.
func (mi *ModuleInstance) Exports() modules.Exports {
	return modules.Exports{Named: map[string]any{
		"Push":      mi.newPush,
		"Campaigns": mi.newCampaigns,
	}}
}

// moduleMetrics are the extension's k6 metrics.
type moduleMetrics struct {
	latency, accepted, rejected, failed *metrics.Metric
	presses, callDuration               *metrics.Metric
}

// registerMetrics creates the metrics in the test's registry, or returns the ones an
// earlier VU created.
func registerMetrics(reg *metrics.Registry) (*moduleMetrics, error) {
	var m moduleMetrics
	for _, d := range []struct {
		dst  **metrics.Metric
		name string
		typ  metrics.MetricType
		val  metrics.ValueType
	}{
		{&m.latency, MetricPushLatency, metrics.Trend, metrics.Time},
		{&m.accepted, MetricPushAccepted, metrics.Counter, metrics.Default},
		{&m.rejected, MetricPushRejected, metrics.Counter, metrics.Default},
		{&m.failed, MetricPushFailed, metrics.Counter, metrics.Default},
		{&m.presses, MetricCampaignPresses, metrics.Counter, metrics.Default},
		{&m.callDuration, MetricCampaignDuration, metrics.Trend, metrics.Time},
	} {
		met, err := reg.NewMetric(d.name, d.typ, d.val)
		if err != nil {
			return nil, fmt.Errorf("salvo: metric %s: %w", d.name, err)
		}
		*d.dst = met
	}
	return &m, nil
}

// envValue reads a variable from the script's __ENV (the -e flags and, unless disabled, the
// process environment), so that extension defaults follow the same rules as scripts.
func envValue(rt *sobek.Runtime, name string) string {
	env := rt.Get("__ENV")
	if absent(env) {
		return ""
	}
	v := env.ToObject(rt).Get(name)
	if absent(v) {
		return ""
	}
	return v.String()
}

// absent reports whether a JS argument was left out (undefined or null).
func absent(v sobek.Value) bool {
	return v == nil || sobek.IsUndefined(v) || sobek.IsNull(v)
}

// newObject returns a JS object with the given methods (Go funcs, called through sobek's
// reflection), named as the map says.
func newObject(rt *sobek.Runtime, methods map[string]any) *sobek.Object {
	obj := rt.NewObject()
	for name, fn := range methods {
		if err := obj.Set(name, fn); err != nil {
			common.Throw(rt, err)
		}
	}
	return obj
}
