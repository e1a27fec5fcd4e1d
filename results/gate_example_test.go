package results_test

import (
	"fmt"

	"github.com/salvopush/salvo/results"
)

// A candidate that spends 30% more sender CPU per notification than its base, in six pairs
// of runs with a few percent of noise: the gate fails on that metric alone, with code 1.
func ExampleGate() {
	run := func(cpuUs, allMs float64) *results.Report {
		return &results.Report{
			Schema:     results.Schema,
			Delivery:   results.Delivery{Accepted: 20000},
			Mock:       &results.Mock{Received: 20000, Unique: 20000},
			Milestones: results.Milestones{P95: allMs * 0.95, P99: allMs * 0.99, All: allMs},
			Throughput: results.Throughput{Mean: 20000 / (allMs / 1000)},
			Resources: results.Resources{SenderCPUUsPerNotification: cpuUs, SenderCPUSeconds: cpuUs * 20000 / 1e6,
				MockCPUSeconds: 0.08},
		}
	}
	arm := results.GateArm{Name: "burst"}
	for i, noise := range []float64{1.00, 1.03, 0.98, 1.05, 0.97, 1.01} {
		arm.Pairs = append(arm.Pairs, results.GatePair{
			BaseFirst: i%2 == 0,
			Base:      results.GateRun{Dir: fmt.Sprintf("base-%d", i+1), Report: run(2.0*noise, 1500*noise)},
			Candidate: results.GateRun{Dir: fmt.Sprintf("candidate-%d", i+1), Report: run(2.6*noise, 1500/noise)},
		})
	}
	g := results.Gate(results.GateInput{BaseRef: "HEAD~1", BaseCommit: "0123456789abcdef", Arms: []results.GateArm{arm}})
	for _, r := range g.Arms[0].Rows[:3] {
		fmt.Printf("%s: %+.1f%% [%+.1f%%, %+.1f%%] %s\n", r.Metric.Label, (r.Ratio-1)*100, (r.Low-1)*100, (r.High-1)*100, r.Verdict)
	}
	fmt.Println("exit code", g.Code)
	fmt.Println(g.Verdict)
	// Output:
	// sender CPU per notification: +30.0% [+22.4%, +38.0%] REGRESSED
	// mock CPU per notification: +0.0% [+0.0%, +0.0%] ok
	// sender CPU / mock CPU: +30.0% [+22.4%, +38.0%] REGRESSED
	// exit code 1
	// gate: FAIL: regressed: burst sender CPU per notification +30% [+22.4%, +38%] (threshold +10%); burst sender CPU / mock CPU +30% [+22.4%, +38%] (threshold +10%) [base 0123456789ab (HEAD~1), 6 pairs of burst]
}
