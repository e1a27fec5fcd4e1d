package scenarios

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/results"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
)

// measured is what one run measured around its send, in either mode.
type measured struct {
	status                *sender.Status // the campaign after prepare (resolution counts, readiness)
	stats                 *sender.SendStats
	mockBefore, mockAfter mockpush.Stats
	cpuSeconds            float64 // the sender's CPU during the send
	peakRSS               int64
	prepareMs             float64
	timedOut              bool
	presses               []*sender.PressResult
	workersReporting      int            // send workers whose statistics are in stats
	faults                any            // what was injected, nil for nothing
	extra                 map[string]any // mode-specific config entries
}

// reportInputs turns a run's measurements into the report's inputs.
func reportInputs(name string, p Params, startedAt time.Time, m measured) results.Inputs {
	res := m.status.Campaign.Resolution
	var resident int64
	for _, r := range m.status.Ready {
		resident = max(resident, r.ResidentBytes)
	}
	extra := map[string]any{"send_loops": p.SendLoops, "connections": p.Connections, "concurrency": p.Concurrency,
		"presses": p.Presses, "silent": *p.Silent, "invalid_share": p.InvalidShare, "fcm_quota_per_minute": mockQuota(p),
		"timed_out": m.timedOut, "press_answers": pressSummary(m.presses)}
	maps.Copy(extra, m.extra)
	b, a := m.mockBefore, m.mockAfter
	in := results.Inputs{
		Scenario:  name,
		StartedAt: startedAt,
		Config: results.Config{Audience: int64(p.Audience), IOSShare: p.IOSShare, Transport: p.Transport,
			Workers: p.Workers, Extra: extra},
		Audience: results.Audience{Recipients: int64(res.Recipients) + int64(res.ControlDevices),
			IOS: int64(res.IOS + res.ControlIOS), Android: int64(res.Android + res.ControlDevices - res.ControlIOS),
			Control: int64(res.ControlDevices)},
		Delivery: results.Delivery{Accepted: m.stats.Accepted, Rejected: m.stats.Rejected, Failed: m.stats.FailedTotal(),
			Retries: m.stats.Retries},
		Mock: &results.Mock{
			Received:   a.APNs.Received + a.FCM.Received - b.APNs.Received - b.FCM.Received,
			Unique:     a.APNs.Unique + a.FCM.Unique - b.APNs.Unique - b.FCM.Unique,
			Duplicates: a.APNs.Duplicates + a.FCM.Duplicates - b.APNs.Duplicates - b.FCM.Duplicates,
		},
		Latency:  m.stats.Latency,
		Timeline: m.stats.Timeline,
		Resources: results.Resources{SenderCPUSeconds: m.cpuSeconds, SenderPeakRSSBytes: m.peakRSS,
			MockCPUSeconds: mockCPU(a) - mockCPU(b), PrepareMs: m.prepareMs},
		Target:   *p.Target,
		Criteria: *p.Criteria,
		Faults:   m.faults,
		// What Build judges besides the counts.
		TimedOut:         m.timedOut,
		TimeoutSeconds:   p.TimeoutSeconds,
		WorkersExpected:  p.Workers,
		WorkersReporting: m.workersReporting,
	}
	in.Criteria.ExactMockReceived = in.Criteria.ExactMockReceived || p.ExactMockReceived
	for _, pr := range m.presses {
		in.Presses = append(in.Presses, results.Press{SendID: pr.SendID, Started: !pr.AlreadyPressed})
	}
	if res.Recipients > 0 {
		in.Resources.ResidentBytesPerRecipient = float64(resident) / float64(res.Recipients)
	}
	return in
}

// waitResolved waits until campaign id has left the resolving state; a failed resolution is
// an error.
func waitResolved(ctx context.Context, client *api.Client, id string, timeout time.Duration) error {
	return waitFor(ctx, timeout, func() (bool, error) {
		st, err := client.Status(ctx, id)
		if err != nil {
			return false, err
		}
		if st.Campaign.State == sender.StateFailed {
			return false, fmt.Errorf("resolution failed: %s", st.Campaign.Error)
		}
		return st.Campaign.State != sender.StateResolving, nil
	})
}

// waitPrepared waits until enough workers hold campaign id and returns its status then.
func waitPrepared(ctx context.Context, client *api.Client, id string, timeout time.Duration) (*sender.Status, error) {
	var status *sender.Status
	err := waitFor(ctx, timeout, func() (bool, error) {
		st, err := client.Status(ctx, id)
		status = st
		return err == nil && st.Prepared, err
	})
	return status, err
}
