package scenarios

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/salvopush/salvo/results"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/metrics"
)

// TestDuplicatesFromTheLedger: delivery.duplicates is the ledger's repeated count, from the
// final result or, before one, from the ledger's progress; a repeat fails the run's
// max_duplicates, one the scenario allows does not.
func TestDuplicatesFromTheLedger(t *testing.T) {
	t.Parallel()
	h := metrics.NewLatencyHistogram()
	for range 10 {
		metrics.RecordLatency(h, 100*time.Millisecond)
	}
	st := &sender.SendStats{Latency: h, Accepted: 10}
	for _, tc := range []struct {
		name  string
		final *sender.Status
		want  int64
	}{
		// The campaign ended: its result holds the ledger's counts.
		{"result", &sender.Status{Campaign: &sender.CampaignRecord{Result: &sender.Outcomes{Accepted: 10, Repeated: 2}}}, 2},
		// Still sending (a timed-out run): the ledger's progress.
		{"progress", &sender.Status{Campaign: &sender.CampaignRecord{}, Progress: &sender.Progress{Source: "ledger", Accepted: 10, Repeated: 3}}, 3},
		// No repeat recorded.
		{"none", &sender.Status{Campaign: &sender.CampaignRecord{Result: &sender.Outcomes{Accepted: 10}}}, 0},
	} {
		d := ledgerDelivery(st, tc.final)
		if d.Duplicates != tc.want {
			t.Errorf("%s: delivery.duplicates %d, want %d", tc.name, d.Duplicates, tc.want)
			continue
		}
		for _, maxDup := range []int64{0, tc.want} {
			in := results.Inputs{Scenario: "dup", Audience: results.Audience{Recipients: 10, IOS: 10}, Delivery: d,
				Latency: h, Criteria: results.Criteria{MaxDuplicates: maxDup}}
			r := results.Build(in)
			failed := slices.ContainsFunc(r.Failures, func(f string) bool { return strings.HasPrefix(f, "duplicates: ") })
			if want := tc.want > maxDup; failed != want || r.Delivery.Duplicates != tc.want {
				t.Errorf("%s, max %d: duplicates %d, failures %q; want a duplicates failure: %v",
					tc.name, maxDup, r.Delivery.Duplicates, r.Failures, want)
			}
		}
	}
}
