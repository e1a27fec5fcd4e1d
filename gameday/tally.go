package gameday

import (
	"context"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/salvopush/salvo/results"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/metrics"
)

// tally is a Transport wrapper that notes every answer of one provider: when it came (from
// the tally's epoch, set before GO) and what it was. The report's figures per provider come
// from it, since the send path's own figures are per send, not per provider.
type tally struct {
	inner sender.Transport
	epoch time.Time

	mu       sync.Mutex
	answers  []answer
	rejected map[string]int64
}

// answer is one push's answer: microseconds after the epoch and whether it was accepted.
type answer struct {
	us       int64
	accepted bool
}

func newTally(inner sender.Transport, epoch time.Time) *tally {
	return &tally{inner: inner, epoch: epoch, rejected: map[string]int64{}}
}

// Send passes b on and notes its answers (none when the transport could not try).
func (t *tally) Send(ctx context.Context, b *sender.Batch) error {
	if err := t.inner.Send(ctx, b); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range b.Results {
		r := &b.Results[i]
		if r.At.IsZero() {
			continue
		}
		t.answers = append(t.answers, answer{us: r.At.Sub(t.epoch).Microseconds(), accepted: r.Outcome == sender.Accepted})
		if r.Outcome == sender.Permanent {
			t.rejected[r.Reason]++
		}
	}
	return nil
}

func (t *tally) Close() error { return t.inner.Close() }

// figures returns the provider's figures relative to pressedAt: latency of each acceptance
// and every answer on a timeline.
func (t *tally) figures(pressedAt time.Time, recipients int64) results.ProviderInputs {
	t.mu.Lock()
	defer t.mu.Unlock()
	offset := pressedAt.Sub(t.epoch)
	h := metrics.NewLatencyHistogram()
	tl := metrics.NewTimeline(0)
	var accepted int64
	for _, a := range t.answers {
		since := time.Duration(a.us)*time.Microsecond - offset
		tl.Add(since, a.accepted)
		if a.accepted {
			accepted++
			metrics.RecordLatency(h, since)
		}
	}
	rej := make(map[string]int64, len(t.rejected))
	for k, v := range t.rejected {
		rej[k] = v
	}
	return results.ProviderInputs{Recipients: recipients, Accepted: accepted, Rejected: rej, Latency: h, Pushes: tl}
}

// mergeLatency returns one histogram of every provider's acceptances.
func mergeLatency(ps map[string]results.ProviderInputs) *hdrhistogram.Histogram {
	h := metrics.NewLatencyHistogram()
	for _, p := range ps {
		metrics.MergeLatency(h, p.Latency)
	}
	return h
}
