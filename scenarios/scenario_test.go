package scenarios

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/salvopush/salvo/results"
)

// TestBuiltinsParse loads every built-in scenario and validates each of its runs with the
// defaults filled, the way the runner sees them.
func TestBuiltinsParse(t *testing.T) {
	t.Parallel()
	names := Names()
	for _, want := range []string{"audience", "chaos", "ci", "double-press", "throughput", "throughput-sweep"} {
		if !contains(names, want) {
			t.Errorf("built-in scenario %q is missing from %v", want, names)
		}
	}
	for _, name := range names {
		sc, err := Load(name)
		if err != nil {
			t.Errorf("Load(%q): %v", name, err)
			continue
		}
		if sc.Description == "" {
			t.Errorf("%s: no description", name)
		}
		for _, r := range sc.Runs() {
			if err := r.Params.Validate(); err != nil {
				t.Errorf("%s/%s: %v", name, r.Name, err)
			}
			if r.Audience <= 0 || r.SendLoops <= 0 || r.Presses <= 0 || r.Target == nil || r.Criteria == nil {
				t.Errorf("%s/%s: defaults not filled: %+v", name, r.Name, r.Params)
			}
		}
	}
}

// TestBuiltinShapes checks what each scenario promises in its description.
func TestBuiltinShapes(t *testing.T) {
	t.Parallel()
	load := func(name string) []Arm {
		sc, err := Load(name)
		if err != nil {
			t.Fatal(err)
		}
		return sc.Runs()
	}
	audience := load("audience")
	var sizes []int
	for _, r := range audience {
		sizes = append(sizes, r.Audience)
		if r.Mock.FCMQuotaPerMinute <= 600000 {
			t.Errorf("audience/%s: fcm quota %d not raised", r.Name, r.Mock.FCMQuotaPerMinute)
		}
	}
	if want := []int{500000, 1000000, 2000000, 4000000}; !reflect.DeepEqual(sizes, want) {
		t.Errorf("audience steps %v, want %v", sizes, want)
	}
	dp := load("double-press")
	if dp[0].Presses < 2 || !dp[0].ExactMockReceived {
		t.Errorf("double-press: presses %d, exact_mock_received %v", dp[0].Presses, dp[0].ExactMockReceived)
	}
	chaos := load("chaos")
	if len(chaos[0].Mock.Faults) != 0 {
		t.Errorf("chaos: first arm %s should be the no-fault baseline", chaos[0].Name)
	}
	for _, r := range chaos {
		if r.Criteria.MaxLost != 0 || r.Criteria.MaxDuplicates != 0 {
			t.Errorf("chaos/%s: criteria %+v, want lost 0 and duplicates 0", r.Name, *r.Criteria)
		}
	}
	for _, r := range load("throughput-sweep") {
		if !*r.Silent {
			t.Errorf("throughput-sweep/%s: not silent", r.Name)
		}
	}
}

// TestParseRejects feeds bad scenario files; each error must name the bad field.
func TestParseRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, json, field string
	}{
		// a misspelt field is refused, not ignored
		{"unknown field", `{"audiance": 5}`, "audiance"},
		// trailing garbage after the object
		{"trailing data", `{"audience": 5} {}`, "trailing"},
		// negative audience
		{"audience", `{"audience": -1}`, "audience"},
		// share above 1
		{"ios share", `{"ios_share": 1.5}`, "ios_share"},
		// control group of everyone
		{"control", `{"control_percent": 100}`, "control_percent"},
		// unknown mode
		{"mode", `{"mode": "cloud"}`, "mode"},
		// unknown transport
		{"transport", `{"transport": "carrier-pigeon"}`, "transport"},
		// too many send loops
		{"send loops", `{"send_loops": 100000}`, "send_loops"},
		// negative connections
		{"connections", `{"connections": -2}`, "connections"},
		// concurrency out of range
		{"concurrency", `{"concurrency": 1000000}`, "concurrency"},
		// presses out of range
		{"presses", `{"presses": 5000}`, "presses"},
		// retries out of range
		{"retries", `{"retry_attempts": -1}`, "retry_attempts"},
		// timeout above an hour
		{"timeout", `{"timeout_seconds": 7200}`, "timeout_seconds"},
		// a push timeout of an hour is a typo
		{"push timeout", `{"push_timeout_seconds": 3600}`, "push_timeout_seconds"},
		// negative quota
		{"quota", `{"mock": {"fcm_quota_per_minute": -1}}`, "mock.fcm_quota_per_minute"},
		// faults with an unknown reason: the mock's own parser names the path
		{"fault reason", `{"mock": {"faults": {"apns": {"errors": [{"reason": "Nope", "rate": 0.1}]}}}}`, "apns.errors[0].reason"},
		// faults with an unknown field
		{"fault field", `{"mock": {"faults": {"apns": {"goaway": 3}}}}`, "mock.faults"},
		// variants that do not add up
		{"variants", `{"variants": [40, 40]}`, "variants"},
		// target percentile above 100
		{"target", `{"target": {"seconds": 5, "percentile": 120}}`, "target.percentile"},
		// negative latency bound
		{"criteria", `{"criteria": {"max_p99_ms": -5}}`, "criteria.max_p99_ms"},
		// an arm without a name
		{"arm name", `{"arms": [{"audience": 5}]}`, "arms[0].name"},
		// an arm name that is not a folder name
		{"arm path", `{"arms": [{"name": "../x"}]}`, "arms[0].name"},
		// two arms of one name
		{"arm twice", `{"arms": [{"name": "a"}, {"name": "a"}]}`, "arms[1].name"},
		// a bad field inside an arm names the arm
		{"arm field", `{"arms": [{"name": "a", "workers": 100}]}`, "arms[0] (a): scenario: workers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("test", []byte(tt.json))
			if err == nil {
				t.Fatalf("Parse(%s) = nil error, want one naming %q", tt.json, tt.field)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("Parse(%s) = %v, want it to name %q", tt.json, err, tt.field)
			}
		})
	}
}

// TestOverlay checks how an arm's fields apply over the base.
func TestOverlay(t *testing.T) {
	t.Parallel()
	yes, no := true, false
	tests := []struct {
		name       string
		base, over Params
		check      func(Params) bool
	}{
		// an arm's non-zero field wins
		{"audience", Params{Audience: 100, Workers: 2}, Params{Audience: 500},
			func(p Params) bool { return p.Audience == 500 && p.Workers == 2 }},
		// a zero field keeps the base
		{"zero keeps base", Params{SendLoops: 8, Connections: 3}, Params{Connections: 1},
			func(p Params) bool { return p.SendLoops == 8 && p.Connections == 1 }},
		// a pointer set to false overrides a true base
		{"silent false", Params{Silent: &yes}, Params{Silent: &no},
			func(p Params) bool { return p.Silent != nil && !*p.Silent }},
		// mock merges field by field: the base's quota survives the arm's faults
		{"mock merge", Params{Mock: MockParams{FCMQuotaPerMinute: 9000, MaxStreams: 50}},
			Params{Mock: MockParams{Faults: json.RawMessage(`{"seed":1}`)}},
			func(p Params) bool {
				return p.Mock.FCMQuotaPerMinute == 9000 && p.Mock.MaxStreams == 50 && string(p.Mock.Faults) == `{"seed":1}`
			}},
		// an arm's faults replace the base's whole, not merged
		{"faults replace", Params{Mock: MockParams{Faults: json.RawMessage(`{"apns":{"goaway_after_streams":5}}`)}},
			Params{Mock: MockParams{Faults: json.RawMessage(`{"fcm":{"goaway_after_streams":7}}`)}},
			func(p Params) bool { return string(p.Mock.Faults) == `{"fcm":{"goaway_after_streams":7}}` }},
		// criteria merge: the arm's bound joins the base's
		{"criteria merge", Params{Criteria: &results.Criteria{RequireTarget: true, MaxP95Ms: 100}},
			Params{Criteria: &results.Criteria{RequireTarget: true, MaxP99Ms: 200}},
			func(p Params) bool {
				return p.Criteria.RequireTarget && p.Criteria.MaxP95Ms == 100 && p.Criteria.MaxP99Ms == 200
			}},
		// a 64-bit seed survives the JSON round trip exactly
		{"seed exact", Params{}, Params{Seed: 1<<63 + 1},
			func(p Params) bool { return p.Seed == 1<<63+1 }},
		// variants are a list: the arm's replaces the base's
		{"variants", Params{Variants: []float64{50, 50}}, Params{Variants: []float64{100}},
			func(p Params) bool { return reflect.DeepEqual(p.Variants, []float64{100}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := overlay(tt.base, tt.over); !tt.check(got) {
				t.Errorf("overlay(%+v, %+v) = %+v", tt.base, tt.over, got)
			}
		})
	}
}

// TestSelectArms checks --arm: the chosen arms in the scenario's order, unknown names refused.
func TestSelectArms(t *testing.T) {
	t.Parallel()
	sc, err := Parse("t", []byte(`{"arms": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		pick    []string
		want    []string
		wantErr bool
	}{
		// nothing picked: every arm
		{"all", nil, []string{"a", "b", "c"}, false},
		// picked out of order: the scenario's order
		{"order", []string{"c", "a"}, []string{"a", "c"}, false},
		// an unknown arm is an error
		{"unknown", []string{"a", "z"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			runs, err := selectArms(sc, tt.pick)
			if (err != nil) != tt.wantErr {
				t.Fatalf("selectArms(%v) error %v, want error %v", tt.pick, err, tt.wantErr)
			}
			var got []string
			for _, r := range runs {
				got = append(got, r.Name)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("selectArms(%v) = %v, want %v", tt.pick, got, tt.want)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
