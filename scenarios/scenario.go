// Package scenarios holds Salvo's replayable benchmark scenarios, one declarative JSON file
// each (parameters plus their own pass criteria), and the runner that plays one end to end:
// synthetic registry, mock APNs/FCM servers, the embedded pipeline, GO, and the report.
//
// Usage:
//
//	sc, err := scenarios.Load("throughput") // or a path to a JSON file
//	rep, err := scenarios.Run(ctx, sc, scenarios.Options{Out: "results/latest"})
package scenarios

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/salvopush/salvo/results"
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
	// Transport is "stock" (apns2 + firebase admin; the default) or "burst".
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
	// Presses is how many GO presses fire at the same instant (default 1).
	Presses int `json:"presses,omitempty"`
	// Mock configures the mock servers.
	Mock MockParams `json:"mock,omitzero"`
	// Retry attempts per notification (default 6).
	RetryAttempts int `json:"retry_attempts,omitempty"`
	// TimeoutSeconds bounds the send (default 300); what is unfinished then counts as lost.
	TimeoutSeconds int `json:"timeout_seconds,omitempty"`
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
		p.Transport = "stock"
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
	if p.RetryAttempts == 0 {
		p.RetryAttempts = 6
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

// Validate names the first bad field.
func (p Params) Validate() error {
	bad := func(field, format string, a ...any) error {
		return fmt.Errorf("scenario: %s: %s", field, fmt.Sprintf(format, a...))
	}
	switch {
	case p.Audience < 0 || p.Audience > 50_000_000:
		return bad("audience", "%d is out of range (1..50000000)", p.Audience)
	case p.IOSShare < 0 || p.IOSShare > 1:
		return bad("ios_share", "%g is not between 0 and 1", p.IOSShare)
	case p.InvalidShare < 0 || p.InvalidShare > 1:
		return bad("invalid_share", "%g is not between 0 and 1", p.InvalidShare)
	case p.MultiDeviceShare < 0 || p.MultiDeviceShare > 1:
		return bad("multi_device_share", "%g is not between 0 and 1", p.MultiDeviceShare)
	case p.ControlPercent < 0 || p.ControlPercent >= 100:
		return bad("control_percent", "%g is not in [0, 100)", p.ControlPercent)
	case p.Mode != "" && p.Mode != "embedded" && p.Mode != "process":
		return bad("mode", "%q: want embedded or process", p.Mode)
	case p.Transport != "" && p.Transport != "stock" && p.Transport != "burst":
		return bad("transport", "%q: want stock or burst", p.Transport)
	case p.Workers < 0 || p.Workers > 64:
		return bad("workers", "%d is out of range (1..64)", p.Workers)
	case p.SendLoops < 0 || p.FanoutLoops < 0 || p.Connections < 0 || p.Concurrency < 0:
		return bad("send_loops/fanout_loops/connections/concurrency", "must not be negative")
	case p.Presses < 0 || p.Presses > 1000:
		return bad("presses", "%d is out of range (1..1000)", p.Presses)
	case p.TimeoutSeconds < 0:
		return bad("timeout_seconds", "must not be negative")
	}
	if len(p.Variants) > 0 {
		sum := p.ControlPercent
		for _, v := range p.Variants {
			sum += v
		}
		if sum < 99.999 || sum > 100.001 {
			return bad("variants", "percentages plus control_percent add up to %g, want 100", sum)
		}
	}
	if len(p.Mock.Faults) > 0 && !json.Valid(p.Mock.Faults) {
		return bad("mock.faults", "not valid JSON")
	}
	return nil
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

// overlay returns base with every non-zero field of over applied.
func overlay(base, over Params) Params {
	b, _ := json.Marshal(base)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m)
	o, _ := json.Marshal(over)
	var om map[string]json.RawMessage
	_ = json.Unmarshal(o, &om)
	for k, v := range om {
		m[k] = v
	}
	merged, _ := json.Marshal(m)
	var out Params
	_ = json.Unmarshal(merged, &out)
	return out
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
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("scenario %q: %w", name, err)
	}
	if s.Name == "" {
		s.Name = strings.TrimSuffix(filepath.Base(name), ".json")
	}
	if err := s.Params.Validate(); err != nil {
		return nil, fmt.Errorf("scenario %q: %w", name, err)
	}
	for i, a := range s.Arms {
		if a.Name == "" {
			return nil, fmt.Errorf("scenario %q: arms[%d].name: required", name, i)
		}
		if err := overlay(s.Params, a.Params).Validate(); err != nil {
			return nil, fmt.Errorf("scenario %q: arms[%d] (%s): %w", name, i, a.Name, err)
		}
	}
	return &s, nil
}
