// Package scenarios holds Salvo's replayable benchmark scenarios, one declarative JSON file
// each (parameters plus their own pass criteria), and the runner that plays one end to end:
// synthetic registry, mock APNs/FCM servers, the pipeline (in this process, or as separate
// processes over the npm AWS emulators), GO, and the report, judged by results.Build.
//
// Usage:
//
//	sc, err := scenarios.Load("throughput") // or a path to a JSON file
//	rep, err := scenarios.Run(ctx, sc, scenarios.Options{Out: "results/latest"})
package scenarios

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/results"
	"github.com/salvopush/salvo/sender/transport"
)

//go:embed *.json
var files embed.FS

// Scenario is one benchmark: what to send, against what, and what counts as a pass. Arms
// (a sweep, audience steps, a transport comparison) override fields of the base, and each
// arm is one run with its own report.
type Scenario struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Params
	// Arms, when present, run in order; each starts from the base Params and applies its
	// own non-zero fields.
	Arms []Arm `json:"arms,omitempty"`
}

// Arm is one run of a multi-run scenario.
type Arm struct {
	Name string `json:"name"`
	Params
}

// Params are the knobs of one run. Zero values take the defaults noted.
type Params struct {
	// Audience is the number of users in the synthetic registry (default 500000).
	Audience int `json:"audience,omitempty"`
	// IOSShare of the users are iOS (default 0.5; use a tiny positive number for none).
	IOSShare float64 `json:"ios_share,omitempty"`
	// InvalidShare of the devices have tokens the mocks reject as unregistered.
	InvalidShare float64 `json:"invalid_share,omitempty"`
	// MultiDeviceShare of the users have two devices.
	MultiDeviceShare float64 `json:"multi_device_share,omitempty"`
	// Seed of the synthetic registry (default 1).
	Seed uint64 `json:"seed,omitempty"`
	// Silent sends background pushes (rehearsal mode).
	Silent *bool `json:"silent,omitempty"`
	// ControlPercent of the users form a control group.
	ControlPercent float64 `json:"control_percent,omitempty"`
	// Variants are A/B percentages (names v1, v2...); with ControlPercent they add up to 100.
	Variants []float64 `json:"variants,omitempty"`
	// Mode is "embedded" (the default: the whole pipeline in this process) or "process"
	// (API, fan-out and send workers as separate processes over the AWS emulators).
	Mode string `json:"mode,omitempty"`
	// Transport is "burst" (sender/burst, the production path; the default) or "stock"
	// (apns2 + firebase admin, the reference); see sender/transport.
	Transport string `json:"transport,omitempty"`
	// Workers is the number of send workers (each preloads its own copy; default 1).
	Workers int `json:"workers,omitempty"`
	// SendLoops is send goroutines per worker (default 64); FanoutLoops (default 2).
	SendLoops   int `json:"send_loops,omitempty"`
	FanoutLoops int `json:"fanout_loops,omitempty"`
	// Connections per provider per worker (default 4) and Concurrency, the in-flight pushes
	// per provider per worker (default 512).
	Connections int `json:"connections,omitempty"`
	Concurrency int `json:"concurrency,omitempty"`
	// Presses is how many GO presses fire at the same instant, each from its own API client
	// with its own connection (default 1). With more than one, the run fails (a "press:"
	// failure) unless exactly one press started a send and every press answered its send ID.
	Presses int `json:"presses,omitempty"`
	// ExactMockReceived fails the run (a "mock:" failure) unless the mock servers received
	// exactly one request per non-control recipient: no retry, no duplicate on the wire.
	// Meant for runs without faults, such as the double press. It sets
	// criteria.exact_mock_received, which results.Build judges.
	ExactMockReceived bool `json:"exact_mock_received,omitempty"`
	// Mock configures the mock servers.
	Mock MockParams `json:"mock,omitzero"`
	// Retry attempts per notification (default 6).
	RetryAttempts int `json:"retry_attempts,omitempty"`
	// PushTimeoutSeconds bounds one push from request to answer (default: the transports'
	// own, 10 s). A push that times out is retried, and counted twice by the mock if the mock
	// had in fact accepted it.
	PushTimeoutSeconds int `json:"push_timeout_seconds,omitempty"`
	// TimeoutSeconds bounds the send (default 300); what is unfinished then counts as lost.
	TimeoutSeconds int `json:"timeout_seconds,omitempty"`
	// Message is what the campaign's message covers: "both" platforms (the default), or
	// "fcm-only" / "apns-only", whose other platform's devices the campaign must exclude at
	// resolution and count (the poison message of old, which looped forever).
	Message string `json:"message,omitempty"`
	// Chunk is recipients per push round, each recorded in the ledger as answered (default
	// 50, the sender's): with send_loops it bounds what a killed process leaves pushed but
	// unrecorded, and so the repeats a kill may cause.
	Chunk int `json:"chunk,omitempty"`
	// RetryUntilDeadline tries transient failures again until the campaign's delivery
	// deadline, as deployed, instead of retry_attempts times (modes all and process always
	// do: their processes have no attempt cap).
	RetryUntilDeadline bool `json:"retry_until_deadline,omitempty"`
	// DeliveryDeadlineSeconds is the campaign's delivery deadline (default: the API's,
	// min(TTL, 600) with the runs' TTL of 300 s).
	DeliveryDeadlineSeconds int `json:"delivery_deadline_seconds,omitempty"`
	// LeaseSeconds and VisibilitySeconds, in process mode, set the send workers' ledger lease
	// and batch visibility (--lease, --visibility; 0: the workers' defaults, 6 s), which
	// bound how soon others take a dead worker's recipients over.
	LeaseSeconds      int `json:"lease_seconds,omitempty"`
	VisibilitySeconds int `json:"visibility_seconds,omitempty"`
	// Interrupt signals the pipeline's sending process mid-send and starts it again.
	Interrupt *Interrupt `json:"interrupt,omitempty"`
	// Redrive, once the campaign ends done_with_failures, clears the mock's faults and
	// redrives its dead-lettered recipients, then waits for its next terminal state.
	Redrive bool `json:"redrive,omitempty"`
	// Malformed puts that many malformed messages straight on the batch queue right after
	// GO (modes embedded and process); each must end on the dead-letter queue.
	Malformed int `json:"malformed,omitempty"`
	// Redeliver makes the fan-out put every batch message on the batch queue twice and skip
	// the first delete of every range message, which then comes back after its visibility
	// timeout and is fanned out again (modes embedded and process).
	Redeliver bool `json:"redeliver,omitempty"`
	// Target is the latency target (default 99% within 5 s).
	Target *results.Target `json:"target,omitempty"`
	// Criteria are the pass criteria (default: nothing lost, no duplicates, no failures).
	Criteria *results.Criteria `json:"criteria,omitempty"`
}

// MockParams configure the mock APNs/FCM servers for a run.
type MockParams struct {
	// MaxStreams is SETTINGS_MAX_CONCURRENT_STREAMS (mock default 1000).
	MaxStreams int `json:"max_streams,omitempty"`
	// FCMQuotaPerMinute raises or lowers the FCM quota (mock default 600000).
	FCMQuotaPerMinute int `json:"fcm_quota_per_minute,omitempty"`
	// Faults is the fault injection, in the mock's PUT /faults format (docs/mockpush.md).
	Faults json.RawMessage `json:"faults,omitempty"`
}

// Interrupt is what a run does to the pipeline mid-send: once the mock has accepted
// AtShare of the recipients, Signal goes to the sending process (mode all: `salvo all`,
// restarted on the same data folder once it has exited; mode process: send worker send1,
// replaced by a new send worker).
type Interrupt struct {
	AtShare float64 `json:"at_share"`
	// Signal is "KILL" (SIGKILL: no chance to record or drain) or "TERM" (SIGTERM: drain).
	Signal string `json:"signal"`
}

// signal is the interrupt's signal.
func (i *Interrupt) signal() syscall.Signal {
	if i.Signal == "TERM" {
		return syscall.SIGTERM
	}
	return syscall.SIGKILL
}

// Defaults fills zero fields.
func (p Params) withDefaults() Params {
	if p.Audience == 0 {
		p.Audience = 500000
	}
	if p.IOSShare == 0 {
		p.IOSShare = 0.5
	}
	if p.Seed == 0 {
		p.Seed = 1
	}
	if p.Silent == nil {
		t := true
		p.Silent = &t
	}
	if p.Transport == "" {
		p.Transport = string(transport.Default)
	}
	if p.Mode == "" {
		p.Mode = "embedded"
	}
	if p.Workers == 0 {
		p.Workers = 1
	}
	if p.SendLoops == 0 {
		p.SendLoops = 64
	}
	if p.FanoutLoops == 0 {
		p.FanoutLoops = 2
	}
	if p.Connections == 0 {
		p.Connections = 4
	}
	if p.Concurrency == 0 {
		p.Concurrency = 512
	}
	if p.Presses == 0 {
		p.Presses = 1
	}
	if p.RetryAttempts == 0 && !p.RetryUntilDeadline {
		p.RetryAttempts = 6
	}
	if p.Message == "" {
		p.Message = "both"
	}
	if p.Chunk == 0 {
		p.Chunk = 50
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = 300
	}
	if p.Target == nil {
		t := results.DefaultTarget()
		p.Target = &t
	}
	if p.Criteria == nil {
		p.Criteria = &results.Criteria{}
	}
	return p
}

// Validate names the first bad field. Zero values are valid (they take the defaults).
func (p Params) Validate() error {
	bad := func(field, format string, a ...any) error {
		return fmt.Errorf("scenario: %s: %s", field, fmt.Sprintf(format, a...))
	}
	share := func(v float64) bool { return v >= 0 && v <= 1 && !math.IsNaN(v) }
	switch {
	case p.Audience < 0 || p.Audience > 50_000_000:
		return bad("audience", "%d is out of range (1..50000000)", p.Audience)
	case !share(p.IOSShare):
		return bad("ios_share", "%g is not between 0 and 1", p.IOSShare)
	case !share(p.InvalidShare):
		return bad("invalid_share", "%g is not between 0 and 1", p.InvalidShare)
	case !share(p.MultiDeviceShare):
		return bad("multi_device_share", "%g is not between 0 and 1", p.MultiDeviceShare)
	case p.ControlPercent < 0 || p.ControlPercent >= 100 || math.IsNaN(p.ControlPercent):
		return bad("control_percent", "%g is not in [0, 100)", p.ControlPercent)
	case p.Mode != "" && p.Mode != "embedded" && p.Mode != "process" && p.Mode != "all":
		return bad("mode", "%q: want embedded, process or all", p.Mode)
	case p.Mode == "all" && p.Workers > 1:
		return bad("workers", "%d: mode all runs one send worker in its process", p.Workers)
	case p.Message != "" && p.Message != "both" && p.Message != "fcm-only" && p.Message != "apns-only":
		return bad("message", "%q: want both, fcm-only or apns-only", p.Message)
	case p.Message != "" && p.Message != "both" && (p.ControlPercent > 0 || len(p.Variants) > 0):
		return bad("message", "%q with a control group or variants: the run could not count from the registry alone whom the campaign must exclude", p.Message)
	case p.Chunk < 0 || p.Chunk > 10000:
		return bad("chunk", "%d is out of range (1..10000)", p.Chunk)
	case p.RetryUntilDeadline && p.RetryAttempts != 0:
		return bad("retry_until_deadline", "and retry_attempts %d: choose one", p.RetryAttempts)
	case p.DeliveryDeadlineSeconds < 0 || p.DeliveryDeadlineSeconds > 300:
		return bad("delivery_deadline_seconds", "%d is out of range (1..300, within the runs' TTL)", p.DeliveryDeadlineSeconds)
	case p.LeaseSeconds < 0 || p.LeaseSeconds > 600 || p.VisibilitySeconds < 0 || p.VisibilitySeconds > 600:
		return bad("lease_seconds", "%d and visibility_seconds %d: out of range (1..600)", p.LeaseSeconds, p.VisibilitySeconds)
	case (p.LeaseSeconds > 0 || p.VisibilitySeconds > 0) && p.Mode != "process":
		return bad("lease_seconds", "and visibility_seconds are send worker flags: mode process only")
	case p.Malformed < 0 || p.Malformed > 100:
		return bad("malformed", "%d is out of range (0..100)", p.Malformed)
	case (p.Malformed > 0 || p.Redeliver) && p.Mode == "all":
		return bad("mode", "all keeps its queues inside its process: malformed and redeliver need embedded or process")
	case !validKind(p.Transport):
		return bad("transport", "%q: want burst or stock", p.Transport)
	case p.Workers < 0 || p.Workers > 64:
		return bad("workers", "%d is out of range (1..64)", p.Workers)
	case p.SendLoops < 0 || p.SendLoops > 4096:
		return bad("send_loops", "%d is out of range (1..4096)", p.SendLoops)
	case p.FanoutLoops < 0 || p.FanoutLoops > 256:
		return bad("fanout_loops", "%d is out of range (1..256)", p.FanoutLoops)
	case p.Connections < 0 || p.Connections > 1024:
		return bad("connections", "%d is out of range (1..1024)", p.Connections)
	case p.Concurrency < 0 || p.Concurrency > 1<<16:
		return bad("concurrency", "%d is out of range (1..65536)", p.Concurrency)
	case p.Presses < 0 || p.Presses > 1000:
		return bad("presses", "%d is out of range (1..1000)", p.Presses)
	case p.RetryAttempts < 0 || p.RetryAttempts > 100:
		return bad("retry_attempts", "%d is out of range (1..100)", p.RetryAttempts)
	case p.TimeoutSeconds < 0 || p.TimeoutSeconds > 3600:
		return bad("timeout_seconds", "%d is out of range (1..3600)", p.TimeoutSeconds)
	case p.PushTimeoutSeconds < 0 || p.PushTimeoutSeconds > 600:
		return bad("push_timeout_seconds", "%d is out of range (1..600)", p.PushTimeoutSeconds)
	case p.Mock.MaxStreams < 0 || p.Mock.MaxStreams > 1<<20:
		return bad("mock.max_streams", "%d is out of range (1..1048576)", p.Mock.MaxStreams)
	case p.Mock.FCMQuotaPerMinute < 0:
		return bad("mock.fcm_quota_per_minute", "%d must not be negative", p.Mock.FCMQuotaPerMinute)
	}
	if i := p.Interrupt; i != nil {
		switch {
		case p.Mode != "all" && p.Mode != "process":
			return bad("interrupt", "needs mode all or process (a process to signal)")
		case i.AtShare <= 0 || i.AtShare >= 1 || math.IsNaN(i.AtShare):
			return bad("interrupt.at_share", "%g is not in (0, 1)", i.AtShare)
		case i.Signal != "KILL" && i.Signal != "TERM":
			return bad("interrupt.signal", "%q: want KILL or TERM", i.Signal)
		}
	}
	if len(p.Variants) > 0 {
		sum := p.ControlPercent
		for i, v := range p.Variants {
			if v <= 0 || v > 100 || math.IsNaN(v) {
				return bad(fmt.Sprintf("variants[%d]", i), "%g is not in (0, 100]", v)
			}
			sum += v
		}
		if sum < 99.999 || sum > 100.001 {
			return bad("variants", "percentages plus control_percent add up to %g, want 100", sum)
		}
	}
	if len(p.Mock.Faults) > 0 {
		if _, err := mockpush.ParseFaults(p.Mock.Faults); err != nil {
			return bad("mock.faults", "%v", err)
		}
	}
	if t := p.Target; t != nil {
		switch {
		case t.Seconds < 0 || t.Seconds > 3600 || math.IsNaN(t.Seconds):
			return bad("target.seconds", "%g is out of range (0..3600; 0 takes the default)", t.Seconds)
		case t.Percentile < 0 || t.Percentile > 100 || math.IsNaN(t.Percentile):
			return bad("target.percentile", "%g is out of range (0..100; 0 takes the default)", t.Percentile)
		}
	}
	if c := p.Criteria; c != nil {
		for _, f := range []struct {
			field string
			v     float64
		}{{"criteria.max_p95_ms", c.MaxP95Ms}, {"criteria.max_p99_ms", c.MaxP99Ms},
			{"criteria.min_throughput_per_s", c.MinThroughputPerS}, {"criteria.max_prepare_ms", c.MaxPrepareMs},
			{"criteria.max_sender_peak_rss_bytes", float64(c.MaxSenderPeakRSSBytes)}} {
			if f.v < 0 || math.IsNaN(f.v) {
				return bad(f.field, "%g must not be negative (0 means no bound)", f.v)
			}
		}
	}
	return nil
}

// validKind reports whether s names a transport kind ("" takes the default).
func validKind(s string) bool {
	_, err := transport.ParseKind(s)
	return err == nil
}

// Runs returns the runs of the scenario in order: one per arm, or the base alone. Each has
// its defaults filled.
func (s *Scenario) Runs() []Arm {
	if len(s.Arms) == 0 {
		return []Arm{{Name: s.Name, Params: s.Params.withDefaults()}}
	}
	out := make([]Arm, len(s.Arms))
	for i, a := range s.Arms {
		out[i] = Arm{Name: a.Name, Params: overlay(s.Params, a.Params).withDefaults()}
	}
	return out
}

// overlay returns base with every non-zero field of over applied. Nested objects (mock,
// target, criteria) merge field by field, except mock.faults, which an arm replaces whole:
// an arm's faults are the faults of that arm.
func overlay(base, over Params) Params {
	var b, o map[string]any
	mustRoundTrip(base, &b)
	mustRoundTrip(over, &o)
	mergeJSON(b, o)
	var out Params
	mustRoundTrip(b, &out)
	return out
}

// mergeJSON copies every key of over into base, merging objects recursively (but not
// "faults").
func mergeJSON(base, over map[string]any) {
	for k, v := range over {
		bm, bok := base[k].(map[string]any)
		om, ook := v.(map[string]any)
		if bok && ook && k != "faults" {
			mergeJSON(bm, om)
			continue
		}
		base[k] = v
	}
}

// mustRoundTrip converts between JSON-compatible values through JSON. Params and the maps
// made from it always marshal, so an error here is a programming error.
func mustRoundTrip(from, to any) {
	js, err := json.Marshal(from)
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.UseNumber() // keeps 64-bit seeds exact
		err = dec.Decode(to)
	}
	if err != nil {
		panic(fmt.Sprintf("scenarios: overlay: %v", err))
	}
}

// Names lists the built-in scenarios.
func Names() []string {
	entries, _ := files.ReadDir(".")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".json"))
	}
	sort.Strings(out)
	return out
}

// Load returns the built-in scenario called name, or reads the JSON file at name when it
// has a path separator or a .json suffix.
func Load(name string) (*Scenario, error) {
	var data []byte
	var err error
	if strings.ContainsRune(name, filepath.Separator) || strings.HasSuffix(name, ".json") {
		data, err = os.ReadFile(name)
	} else {
		data, err = files.ReadFile(name + ".json")
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("scenario %q: unknown (built in: %s)", name, strings.Join(Names(), ", "))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("scenario %q: %w", name, err)
	}
	return Parse(name, data)
}

// Parse decodes a scenario file strictly (unknown fields are errors) and validates it.
func Parse(name string, data []byte) (*Scenario, error) {
	var s Scenario
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("scenario %q: %w", name, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("scenario %q: trailing data after the scenario object", name)
	}
	if s.Name == "" {
		s.Name = strings.TrimSuffix(filepath.Base(name), ".json")
	}
	if err := s.Params.Validate(); err != nil {
		return nil, fmt.Errorf("scenario %q: %w", name, err)
	}
	seen := make(map[string]bool, len(s.Arms))
	for i, a := range s.Arms {
		switch {
		case a.Name == "":
			return nil, fmt.Errorf("scenario %q: arms[%d].name: required", name, i)
		case !validArmName(a.Name):
			return nil, fmt.Errorf("scenario %q: arms[%d].name: %q: use letters, digits, '.', '_' and '-' (it names a folder)", name, i, a.Name)
		case seen[a.Name]:
			return nil, fmt.Errorf("scenario %q: arms[%d].name: %q is used twice", name, i, a.Name)
		}
		seen[a.Name] = true
		if err := overlay(s.Params, a.Params).Validate(); err != nil {
			return nil, fmt.Errorf("scenario %q: arms[%d] (%s): %w", name, i, a.Name, err)
		}
	}
	return &s, nil
}

// validArmName reports whether name can name an arm's folder: letters, digits, '.', '_'
// and '-', not starting with '.'.
func validArmName(name string) bool {
	if name == "" || name[0] == '.' || len(name) > 64 {
		return false
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}
