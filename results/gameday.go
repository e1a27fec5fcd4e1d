package results

import (
	"bufio"
	"fmt"
	"math"
	"sort"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/salvopush/salvo/sender/metrics"
)

// ModeGameday is Report.Mode for a game-day rehearsal (`salvo gameday`): real providers, no
// mock section.
const ModeGameday = "gameday"

// ProviderInputs is what a run measured of one provider's pushes.
type ProviderInputs struct {
	// Recipients are the recipients of this provider's platform.
	Recipients int64
	// Accepted counts recipients accepted; Rejected those rejected for good, by reason.
	Accepted int64
	Rejected map[string]int64
	// Latency holds one sample per accepted recipient, in microseconds from the GO press.
	Latency *hdrhistogram.Histogram
	// Pushes counts every answered push per step since the press: accepted ones as
	// accepted, every other answer (rejected or transient) as rejected. Its busiest second
	// is the provider's measured rate.
	Pushes *metrics.Timeline
}

// ProviderReport is one provider's part of a report.
type ProviderReport struct {
	Recipients int64            `json:"recipients"`
	Accepted   int64            `json:"accepted"`
	Rejected   map[string]int64 `json:"rejected"`
	Latency    Latency          `json:"latency_ms"`
	Milestones Milestones       `json:"milestones_ms"`
	// TargetMet is the run's target (Target.Percentile within Target.Seconds) for this
	// provider's deliverable recipients alone.
	TargetMet bool `json:"target_met"`
	// PushesPeak1s is the most pushes answered in any one-second window (every outcome):
	// the rate the provider saw.
	PushesPeak1s float64 `json:"pushes_peak_1s"`
}

// RateAllowance is the most pushes per second a provider may see in one window under a cap
// of perSecond: 10% above it, and never less than one push above it (a cap of 5 per second
// may see 6 in a window that starts just before a push).
func RateAllowance(perSecond float64) float64 {
	return math.Max(perSecond*1.1, perSecond+1)
}

// buildProviders fills r.Providers from in.Providers and returns the failures it finds: a
// provider whose busiest second exceeded the rate cap's allowance.
func buildProviders(r *Report, in Inputs) []string {
	if len(in.Providers) == 0 {
		return nil
	}
	var fails []string
	r.Providers = make(map[string]ProviderReport, len(in.Providers))
	names := make([]string, 0, len(in.Providers))
	for name := range in.Providers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := in.Providers[name]
		h := p.Latency
		if h == nil {
			h = metrics.NewLatencyHistogram()
		}
		pr := ProviderReport{Recipients: p.Recipients, Accepted: p.Accepted, Rejected: map[string]int64{},
			Latency: latencyOf(h)}
		var rejected int64
		for reason, n := range p.Rejected {
			pr.Rejected[reason] = n
			rejected += n
		}
		deliverable := p.Recipients - rejected
		pr.Milestones = Milestones{First: Unreached, P50: milestoneMs(h, deliverable, 50),
			P95: milestoneMs(h, deliverable, 95), P99: milestoneMs(h, deliverable, 99), All: Unreached}
		if h.TotalCount() > 0 {
			pr.Milestones.First = usToMs(h.Min())
			if deliverable > 0 && p.Accepted >= deliverable {
				pr.Milestones.All = usToMs(h.Max())
			}
		}
		ms := milestoneMs(h, deliverable, r.Target.Percentile)
		pr.TargetMet = ms != Unreached && ms <= r.Target.Seconds*1000
		if p.Pushes != nil {
			pr.PushesPeak1s = round(pushesPeakPerSecond(p.Pushes), 1)
		}
		if limit := r.Criteria.MaxRatePerS; limit > 0 && pr.PushesPeak1s > RateAllowance(limit) {
			fails = append(fails, fmt.Sprintf("rate: %s saw %s pushes in one second, above the cap of %s/s (allowed: %s)",
				name, fmtFloat(pr.PushesPeak1s), fmtFloat(limit), fmtFloat(round(RateAllowance(limit), 1))))
		}
		r.Providers[name] = pr
	}
	return fails
}

// pushesPeakPerSecond is the most answers (accepted and not) in any one-second window of tl,
// sliding by one step.
func pushesPeakPerSecond(tl *metrics.Timeline) float64 {
	step := tl.Step()
	w := max(int((time.Second+step/2)/step), 1)
	sums := make([]int64, tl.Len())
	var sum, best int64
	for i := range sums {
		a, b := tl.At(i)
		sums[i] = a + b
		sum += sums[i]
		if i >= w {
			sum -= sums[i-w]
		}
		best = max(best, sum)
	}
	return float64(best) * float64(time.Second) / float64(time.Duration(w)*step)
}

// writeGamedayMD writes what a rehearsal's report.md adds after the verdict: the mode, an
// abort, the notes, and the figures per provider. A benchmark report has none of them.
func writeGamedayMD(bw *bufio.Writer, r *Report) {
	if r.Mode != "" {
		fmt.Fprintf(bw, "Mode: **%s**.\n\n", r.Mode)
	}
	if r.Aborted != nil && *r.Aborted {
		fmt.Fprintf(bw, "**Aborted**: an operator stopped the run; the figures cover what was pushed before.\n\n")
	}
	if len(r.Notes) > 0 {
		fmt.Fprintf(bw, "## Read this first\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(bw, "- %s\n", n)
		}
		fmt.Fprintln(bw)
	}
	if len(r.Providers) == 0 {
		return
	}
	fmt.Fprintf(bw, "## Per provider\n\n")
	fmt.Fprintf(bw, "Milestones are shares of each provider's deliverable recipients (recipients - rejected), from the GO press.\n\n")
	var rows [][]string
	for _, name := range sortedKeys(r.Providers) {
		p := r.Providers[name]
		var rejected int64
		for _, n := range p.Rejected {
			rejected += n
		}
		met := "missed"
		if p.TargetMet {
			met = "met"
		}
		rows = append(rows, []string{name, fmtCount(p.Recipients), fmtCount(p.Accepted), fmtCount(rejected),
			fmtMs(p.Milestones.P50), fmtMs(p.Milestones.P95), fmtMs(p.Milestones.P99), met, fmtNum(p.PushesPeak1s, 1) + "/s"})
	}
	mdTable(bw, "lrrrrrrlr", []string{"provider", "recipients", "accepted", "rejected", "p50", "p95", "p99",
		fmt.Sprintf("%s within %s s", percentileName(r.Target.Percentile), fmtFloat(r.Target.Seconds)), "busiest second"}, rows)
	for _, name := range sortedKeys(r.Providers) {
		p := r.Providers[name]
		if len(p.Rejected) == 0 {
			continue
		}
		rows = nil
		for _, reason := range sortedKeys(p.Rejected) {
			rows = append(rows, []string{reason, fmtCount(p.Rejected[reason])})
		}
		fmt.Fprintf(bw, "Rejected by %s, by reason:\n\n", name)
		mdTable(bw, "lr", []string{"reason", "recipients"}, rows)
	}
}
