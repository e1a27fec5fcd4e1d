package results

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// gateNoise is a fixed spread of run-to-run factors (about ±5%), so that tests are
// deterministic but the two sides never hold identical values.
var gateNoise = []float64{1.00, 1.03, 0.98, 1.05, 0.97, 1.01, 0.99, 1.04, 0.96, 1.02, 0.995, 1.035}

// gateSide describes one side's runs: factors on the sender's CPU, the mock's CPU and the
// milestones (throughput follows the milestones), and the spread of the noise.
type gateSide struct {
	cpu, mock, latency float64
	spread             float64 // the noise is 1 + spread*(gateNoise-1)
}

// gateReport is a ci-like run: 20,000 recipients, 200 rejected, everything else accepted.
func gateReport(cpuUs, mockUs, allMs float64) *Report {
	const accepted = 19800
	return &Report{
		Schema: Schema, Scenario: "gate-burst",
		Audience:   Audience{Recipients: 20000, IOS: 10000, Android: 10000},
		Delivery:   Delivery{Accepted: accepted, Rejected: map[string]int64{"Unregistered": 200}},
		Mock:       &Mock{Received: 20000, Unique: accepted},
		Milestones: Milestones{First: 3, P50: allMs * 0.5, P95: allMs * 0.95, P99: allMs * 0.99, All: allMs},
		Throughput: Throughput{Mean: accepted / (allMs / 1000)},
		Resources: Resources{SenderCPUUsPerNotification: cpuUs, SenderCPUSeconds: cpuUs * accepted / 1e6,
			MockCPUSeconds: mockUs * accepted / 1e6},
		Failures: []string{},
	}
}

// gateArm plays n pairs of one workload; run i of a side takes the noise factor at i (the
// candidate's shifted by half the list, so the two sides are not in lockstep), and its mock
// the factor three places on.
func gateArm(name string, n int, base, cand gateSide) GateArm {
	arm := GateArm{Name: name}
	noise := func(s gateSide, i int) float64 { return 1 + s.spread*(gateNoise[i%len(gateNoise)]-1) }
	run := func(s gateSide, i int) *Report {
		return gateReport(2*s.cpu*noise(s, i), 4*s.mock*noise(s, i+3), 1500*s.latency*noise(s, i))
	}
	for i := range n {
		arm.Pairs = append(arm.Pairs, GatePair{
			BaseFirst: i%2 == 0,
			Base:      GateRun{Dir: fmt.Sprintf("runs/%s/base-%d", name, i+1), Report: run(base, i)},
			Candidate: GateRun{Dir: fmt.Sprintf("runs/%s/candidate-%d", name, i+1), Report: run(cand, i+len(gateNoise)/2)},
		})
	}
	return arm
}

var same = gateSide{1, 1, 1, 1}

// TestGateDecision: the gate's verdict for each kind of outcome, with the metrics that
// must regress.
func TestGateDecision(t *testing.T) {
	t.Parallel()
	lostRun := func(in *GateInput) { in.Arms[0].Pairs[3].Candidate.Report.Delivery.Lost = 3 }
	tests := []struct {
		name      string
		in        GateInput
		change    func(*GateInput)
		code      int
		regressed []string // "workload metric" rows that must say REGRESSED
		noisy     []string // rows that must say "~ noisy"
		inVerdict string
	}{
		// The same code on both sides: nothing moves beyond the noise.
		{name: "no regression", in: GateInput{Arms: []GateArm{gateArm("burst", 10, same, same)}},
			code: 0, inVerdict: "gate: PASS: no regression in 7 metrics"},
		// 30% more sender CPU in every candidate run: clear, beyond the 10% threshold.
		{name: "clear CPU regression", in: GateInput{Arms: []GateArm{gateArm("burst", 10, same, gateSide{1.3, 1, 1, 1})}},
			code: 1, regressed: []string{"burst sender CPU per notification", "burst sender CPU / mock CPU"}, inVerdict: "burst sender CPU per notification +30"},
		// The same, but the candidate changed the mock: its relative CPU is not judged.
		{name: "mock differs", in: GateInput{MockDiffers: "mockpush/ differs", Arms: []GateArm{gateArm("burst", 10, same, gateSide{1.3, 1, 1, 1})}},
			code: 1, regressed: []string{"burst sender CPU per notification"}},
		// 20% more sender CPU while the load scatters each run by ±20% and inflates the
		// mock's CPU alike (to within ±1%): only the CPU relative to the mock's is clear of
		// the noise.
		{name: "regression under load", in: GateInput{Arms: []GateArm{gateArm("burst", 8, gateSide{1, 1, 1, 4}, gateSide{1.2, 1, 1, 4})}},
			change: func(in *GateInput) {
				for i, p := range in.Arms[0].Pairs {
					jitter := 1 + 0.2*(gateNoise[i+2]-1)
					p.Base.Report.Resources.MockCPUSeconds = 2 * p.Base.Report.Resources.SenderCPUSeconds * jitter
					p.Candidate.Report.Resources.MockCPUSeconds = 2 * p.Candidate.Report.Resources.SenderCPUSeconds / 1.2 / jitter
				}
			},
			code: 1, regressed: []string{"burst sender CPU / mock CPU"}, noisy: []string{"burst sender CPU per notification"}},
		// Every candidate run 60% slower to deliver: the milestones and throughput regress.
		{name: "clear latency regression", in: GateInput{Arms: []GateArm{gateArm("stock", 8, same, gateSide{1, 1, 1.6, 1})}},
			code: 1, regressed: []string{"stock 95% accepted", "stock 99% accepted", "stock all accepted", "stock throughput"}},
		// 5% more CPU, clear but within the threshold: not a regression.
		{name: "small clear change", in: GateInput{Arms: []GateArm{gateArm("burst", 10, gateSide{1, 1, 1, 0.2}, gateSide{1.05, 1, 1, 0.2})}},
			code: 0},
		// The candidate's median is 15% worse, but the runs scatter by ±40%: not clear of noise.
		{name: "noisy but not significant", in: GateInput{Arms: []GateArm{gateArm("burst", 6, gateSide{1, 1, 1, 8}, gateSide{1.15, 1, 1, 8})}},
			code: 0, noisy: []string{"burst sender CPU per notification"}, inVerdict: "not clear of noise"},
		// Faster is never a failure.
		{name: "improvement", in: GateInput{Arms: []GateArm{gateArm("burst", 10, same, gateSide{0.7, 0.7, 0.7, 1})}},
			code: 0},
		// One candidate run lost notifications: a correctness failure, whatever the medians.
		{name: "lost in one run", in: GateInput{Arms: []GateArm{gateArm("burst", 10, same, same)}}, change: lostRun,
			code: 1, inVerdict: "gate: FAIL: candidate run runs/burst/candidate-4: lost 3"},
		// The mock counted one notification fewer than the sender accepted.
		{name: "mock counts unequal", in: GateInput{Arms: []GateArm{gateArm("burst", 10, same, same)}},
			change: func(in *GateInput) { in.Arms[0].Pairs[7].Candidate.Report.Mock.Unique-- },
			code:   1, inVerdict: "mock counted 19799 unique"},
		// A duplicate seen by the mock only.
		{name: "mock duplicate", in: GateInput{Arms: []GateArm{gateArm("burst", 10, same, same)}},
			change: func(in *GateInput) { in.Arms[0].Pairs[0].Candidate.Report.Mock.Duplicates = 1 },
			code:   1, inVerdict: "mock duplicates 1"},
		// The right number of the wrong recipients: the counts agree, the tokens do not.
		{name: "identity", in: GateInput{Arms: []GateArm{gateArm("burst", 10, same, same)}},
			change: func(in *GateInput) {
				r := in.Arms[0].Pairs[5].Candidate.Report
				r.Identity = &Identity{Expected: r.Delivery.Accepted, Accepted: r.Delivery.Accepted,
					Matched: r.Delivery.Accepted - 1, Missing: 1, Unexpected: 1}
			},
			code: 1, inVerdict: "identity: the mock accepted 1 unexpected tokens"},
		// The same loss in a base run is the base's problem: a note, not a failure.
		{name: "base run broken", in: GateInput{Arms: []GateArm{gateArm("burst", 10, same, same)}},
			change: func(in *GateInput) { in.Arms[0].Pairs[2].Base.Report.Delivery.Duplicates = 2 },
			code:   0},
		// A candidate run that wrote no report (it crashed) fails the gate.
		{name: "candidate run without report", in: GateInput{Arms: []GateArm{gateArm("burst", 10, same, same)}},
			change: func(in *GateInput) {
				in.Arms[0].Pairs[1].Candidate.Report, in.Arms[0].Pairs[1].Candidate.Err = nil, "exit status 2: panic: boom"
			},
			code: 1, inVerdict: "wrote no report: exit status 2: panic: boom"},
		// A base run that wrote no report: the base cannot be measured.
		{name: "base run without report", in: GateInput{Arms: []GateArm{gateArm("burst", 10, same, same)}},
			change: func(in *GateInput) {
				in.Arms[0].Pairs[0].Base.Report, in.Arms[0].Pairs[0].Base.Err = nil, "exit status 2: scenario: unknown field"
			},
			code: 2, inVerdict: "gate: COULD NOT RUN: base run runs/burst/base-1 wrote no report"},
		// Four pairs are too few to decide anything at 99%.
		{name: "too few pairs", in: GateInput{Arms: []GateArm{gateArm("burst", 4, same, same)}},
			code: 2, inVerdict: "4 complete pairs, at least 6 needed"},
		// The base did not build: nothing was run.
		{name: "setup error", in: GateInput{BaseRef: "HEAD~1", Errors: []string{"the base does not build: exit status 1"}},
			code: 2, inVerdict: "gate: COULD NOT RUN: the base does not build"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := tt.in
			if tt.change != nil {
				tt.change(&in)
			}
			g := Gate(in)
			if g.Code != tt.code {
				t.Errorf("code %d, want %d; verdict %q", g.Code, tt.code, g.Verdict)
			}
			if !strings.Contains(g.Verdict, tt.inVerdict) {
				t.Errorf("verdict %q lacks %q", g.Verdict, tt.inVerdict)
			}
			got := map[GateVerdict][]string{}
			for _, a := range g.Arms {
				for _, r := range a.Rows {
					got[r.Verdict] = append(got[r.Verdict], a.Name+" "+r.Metric.Label)
				}
			}
			if fmt.Sprint(got[GateRegressed]) != fmt.Sprint(tt.regressed) {
				t.Errorf("regressed %q, want %q", got[GateRegressed], tt.regressed)
			}
			if fmt.Sprint(got[GateNoisy]) != fmt.Sprint(tt.noisy) {
				t.Errorf("noisy %q, want %q", got[GateNoisy], tt.noisy)
			}
		})
	}
}

// TestGateImprovementSaysBetter: a clear improvement beyond the threshold is labelled, and
// a base run's correctness problem is a note.
func TestGateImprovementSaysBetter(t *testing.T) {
	t.Parallel()
	in := GateInput{Arms: []GateArm{gateArm("burst", 10, same, gateSide{0.7, 1, 1, 1})}}
	in.Arms[0].Pairs[2].Base.Report.Delivery.Lost = 5
	g := Gate(in)
	if v := g.Arms[0].Rows[0].Verdict; v != GateBetter {
		t.Errorf("30%% less sender CPU: verdict %q, want %q", v, GateBetter)
	}
	if len(g.Notes) != 1 || !strings.Contains(g.Notes[0], "base run runs/burst/base-3: lost 5") {
		t.Errorf("notes %q, want one about base-3", g.Notes)
	}
}

// TestGateReportGolden renders a gate with a regression, a noisy metric, a note and two
// workloads: the console table, gate.md and gate.json.
func TestGateReportGolden(t *testing.T) {
	t.Parallel()
	in := GateInput{BaseRef: "origin/main", BaseCommit: "0123456789abcdef0123456789abcdef01234567",
		Candidate: "fedcba9876543210fedcba9876543210fedcba98 + uncommitted changes", ElapsedSeconds: 252.4,
		Arms: []GateArm{
			gateArm("burst", 6, same, gateSide{1.25, 1.02, 1, 1}),
			gateArm("stock", 6, gateSide{1, 1, 1, 10}, gateSide{1, 1, 1.6, 10}),
		}}
	in.Arms[1].Pairs[4].Base.Report.Delivery.Lost = 2
	g := Gate(in)
	if g.Code != 1 {
		t.Fatalf("code %d, want 1: %s", g.Code, g.Verdict)
	}
	var table, md bytes.Buffer
	if err := g.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(&table, g.Verdict)
	golden(t, "gate.txt", table.Bytes())
	if err := g.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	golden(t, "gate.md", md.Bytes())
	dir := t.TempDir()
	if err := WriteGate(dir, g); err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile(filepath.Join(dir, "gate.json"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "gate.json", js)
	var back struct {
		Schema    string `json:"schema"`
		Code      int    `json:"code"`
		Workloads []struct {
			Metrics []struct {
				Verdict string `json:"verdict"`
			} `json:"metrics"`
		} `json:"workloads"`
	}
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if back.Schema != GateSchema || back.Code != 1 || back.Workloads[0].Metrics[0].Verdict != string(GateRegressed) {
		t.Errorf("gate.json reads back as %+v", back)
	}
}

// TestGateUnreachedMilestone: a candidate run that never delivered everyone has an
// infinitely late milestone; gate.json still encodes (null), and the run fails the gate.
func TestGateUnreachedMilestone(t *testing.T) {
	t.Parallel()
	in := GateInput{Arms: []GateArm{gateArm("burst", 6, same, same)}}
	r := in.Arms[0].Pairs[5].Candidate.Report
	r.Milestones.All, r.Delivery.Lost = Unreached, 1
	g := Gate(in)
	if g.Code != 1 {
		t.Errorf("code %d, want 1", g.Code)
	}
	if err := WriteGate(t.TempDir(), g); err != nil {
		t.Fatalf("an unreached milestone breaks gate.json: %v", err)
	}
}
