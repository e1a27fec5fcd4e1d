package scenarios

import (
	"context"

	"fmt"
	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
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
	final                 *sender.Status // the campaign at the end (ledger counts); nil if never read
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
	campaign              *results.Campaign
	firstArm              *results.FirstArm
	mockArrivals          *hdrhistogram.Histogram // the mock's receipts, from the press
	identity              *results.Identity       // the delivered tokens against the expected; nil if not compared
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
		Delivery: ledgerDelivery(m.stats, m.final),
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
		Campaign:         m.campaign,
		FirstArm:         m.firstArm,
		MockArrivals:     m.mockArrivals,
		Identity:         m.identity,
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

// ledgerDelivery is the run's delivery counts: accepted and failed from the ledger (the
// truth: a killed process's figures lack what it did since it last published, and a
// redrive's recipients first failed, then were accepted), duplicates from the ledger's
// repeated acceptances (recipients it recorded accepted more than once), retries and the reasons of the
// rejections from the figures the workers published, the reasons made to add up to the
// ledger's total (a shortfall counted as "unpublished reason", an excess taken off the
// largest reasons). Without a final status, the figures alone.
func ledgerDelivery(st *sender.SendStats, final *sender.Status) results.Delivery {
	d := results.Delivery{Accepted: st.Accepted, Rejected: maps.Clone(st.Rejected), Failed: st.FailedTotal(), Retries: st.Retries}
	if final == nil {
		return d
	}
	var accepted, rejected, failed, repeated int64
	switch {
	case final.Campaign.Result != nil:
		res := final.Campaign.Result
		accepted, rejected, failed, repeated = res.Accepted, res.Rejected, res.Failed, res.Repeated
	case final.Progress != nil && final.Progress.Source == "ledger":
		p := final.Progress
		accepted, rejected, failed, repeated = p.Accepted, p.Rejected, p.Failed, p.Repeated
	default:
		return d
	}
	d.Accepted, d.Failed, d.Duplicates = accepted, failed, repeated
	if d.Rejected == nil {
		d.Rejected = map[string]int64{}
	}
	have := st.RejectedTotal()
	if have < rejected {
		d.Rejected["unpublished reason"] += rejected - have
	}
	for excess := have - rejected; excess > 0; {
		top := ""
		for k, v := range d.Rejected {
			if top == "" || v > d.Rejected[top] || v == d.Rejected[top] && k < top {
				top = k
			}
		}
		cut := min(excess, d.Rejected[top])
		if cut == 0 {
			break
		}
		d.Rejected[top] -= cut
		excess -= cut
	}
	return d
}

// noMessageOf counts the devices a campaign excluded at resolution for want of a message.
func noMessageOf(res sender.ResolutionStatus) int64 {
	var n int64
	for _, c := range res.NoMessage {
		n += int64(c)
	}
	return n
}

// uncovered counts, from the synthetic registry on its own, the devices of the platforms
// p's message leaves out: those the campaign must exclude at resolution.
func uncovered(p Params) (int64, error) {
	var left sender.Platform
	switch p.Message {
	case "fcm-only":
		left = sender.PlatformIOS
	case "apns-only":
		left = sender.PlatformAndroid
	default:
		return 0, nil
	}
	var n int64
	err := registrySpec(p).Each(func(_ string, devices []sender.Device) error {
		for _, d := range devices {
			if d.Platform == left {
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, setupErr("registry: %v", err)
	}
	return n, nil
}
