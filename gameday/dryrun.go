package gameday

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/salvopush/salvo/results"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/metrics"
	"github.com/salvopush/salvo/sender/provider"
	"github.com/salvopush/salvo/sender/ratelimit"
)

// dryRun validates every Android token with FCM validate_only, through the rate cap, and
// delivers nothing; iOS tokens get no push at all (the APNs preflight already ran). No
// campaign is created: a deployed pipeline's workers would push for real.
func dryRun(ctx context.Context, cfg *Config, toks *Tokens, prov *providers, checks []Check, startedAt time.Time, opts Options) (*results.Report, error) {
	newPlan(cfg, toks, checks).Print(opts.Progress)
	if !opts.Yes {
		if err := confirm(opts.Confirm, opts.Progress, cfg.Name, ctx.Done()); err != nil {
			return nil, err
		}
	}
	if ctx.Err() != nil {
		return nil, refuse(errors.New("interrupted before the dry run"))
	}
	var android [][]byte
	for _, t := range toks.List {
		if t.Platform == sender.PlatformAndroid {
			android = append(android, []byte(t.Token))
		}
	}
	start := time.Now()
	d := &validation{cfg: cfg, rejected: map[string]int64{}, failed: map[string]int64{}}
	if len(android) > 0 {
		tl := newTally(prov.validate, start)
		var t sender.Transport = tl
		if m := opts.Metrics; m != nil {
			t = m.Transports(map[sender.Platform]sender.Transport{sender.PlatformAndroid: t})[sender.PlatformAndroid]
		}
		if cfg.RatePerSecond > 0 {
			var err error
			if t, err = ratelimit.New(t, ratelimit.Config{PerSecond: cfg.RatePerSecond}); err != nil {
				return nil, refuse(configErr("rate_per_second", "%v", err))
			}
		}
		fmt.Fprintf(opts.Progress, "dry run: validating %d Android tokens (validate_only)\n", len(android))
		d.run(ctx, t, android)
		d.fcm = tl.figures(start, int64(len(android)))
	}
	if err := writeFeedback(opts.Out, d.invalid); err != nil {
		return nil, err
	}
	aborted := ctx.Err() != nil
	n := int64(len(android))
	in := results.Inputs{Scenario: "gameday/" + cfg.Name, StartedAt: startedAt, Mode: results.ModeGameday, Aborted: &aborted,
		Config:   reportConfig(cfg, toks, 0),
		Audience: results.Audience{Recipients: n, Android: n},
		Delivery: results.Delivery{Accepted: d.validated, Rejected: d.rejected, Failed: sum(d.failed), Retries: d.retries},
		Criteria: criteria(cfg, aborted),
		Notes: []string{
			fmt.Sprintf("Dry run: FCM validated %d of %d Android messages (validate_only) and delivered none; "+
				"the %d iOS tokens were not pushed (APNs got the preflight probe only). Latency is from the start of the validation, not from a GO press.",
				d.validated, n, toks.Count(sender.PlatformIOS)),
			preflightNote(cfg), feedbackNote(len(d.invalid)),
		},
	}
	if n > 0 {
		in.Latency, in.Timeline = d.fcm.Latency, acceptedOnly(d.fcm.Pushes)
		in.Providers = map[string]results.ProviderInputs{"fcm": d.fcm}
	}
	rep := results.Build(in)
	if err := results.WriteRun(opts.Out, rep, in); err != nil {
		return rep, fmt.Errorf("gameday: write report: %w", err)
	}
	return rep, nil
}

// validation is a dry run's state: the validate_only pushes of every Android token, retried
// on transient answers until the delivery deadline.
type validation struct {
	cfg *Config
	fcm results.ProviderInputs

	mu        sync.Mutex
	validated int64
	retries   int64
	rejected  map[string]int64
	failed    map[string]int64
	invalid   []string
}

// run validates tokens with a few loops over chunks; a cancelled ctx stops taking chunks
// (the pushes in flight finish).
func (v *validation) run(ctx context.Context, t sender.Transport, tokens [][]byte) {
	loops, chunk := sendShape(v.cfg.RatePerSecond)
	loops = min(loops, 16)
	deadline := time.Now().Add(time.Duration(max(v.cfg.DeliveryDeadlineSeconds, v.cfg.TTLSeconds)) * time.Second)
	next := make(chan [][]byte)
	var wg sync.WaitGroup
	for i := 0; i < loops; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(rand.Uint64(), uint64(i)))
			for c := range next {
				v.chunk(ctx, t, c, deadline, rng)
			}
		}()
	}
feed:
	for lo := 0; lo < len(tokens); lo += chunk {
		select {
		case <-ctx.Done():
			break feed
		case next <- tokens[lo:min(lo+chunk, len(tokens))]:
		}
	}
	close(next)
	wg.Wait()
}

// chunk validates one chunk, retrying transient answers with the send path's backoff.
func (v *validation) chunk(ctx context.Context, t sender.Transport, toks [][]byte, deadline time.Time, rng *rand.Rand) {
	work := context.WithoutCancel(ctx)
	msg := &sender.FCMMessage{Project: v.cfg.FCM.ProjectID, Data: v.cfg.FCMData, CollapseKey: "gameday-dry-run", Priority: "normal"}
	policy := sender.RetryPolicy{}
	for attempt := 1; len(toks) > 0; attempt++ {
		b := &sender.Batch{Campaign: "gameday-dry-run", Platform: sender.PlatformAndroid, FCM: msg, Tokens: toks,
			Results: make([]sender.Result, len(toks))}
		if err := t.Send(work, b); err != nil {
			for i := range b.Results {
				b.Results[i] = sender.Result{Outcome: sender.Transient, Reason: "transport: " + err.Error()}
			}
		}
		var retry [][]byte
		var retryAfter time.Duration
		reason := ""
		v.mu.Lock()
		for i, r := range b.Results {
			switch r.Outcome {
			case sender.Accepted:
				v.validated++
			case sender.Permanent:
				v.rejected[r.Reason]++
				if r.InvalidToken || provider.FCMInvalidToken(r.Reason) {
					v.invalid = append(v.invalid, "android,"+string(toks[i])+","+r.Reason)
				}
			default:
				retry = append(retry, toks[i])
				retryAfter = max(retryAfter, r.RetryAfter)
				reason = r.Reason
			}
		}
		if len(retry) > 0 {
			v.retries += int64(len(retry))
		}
		v.mu.Unlock()
		if len(retry) == 0 {
			return
		}
		wait := policy.Backoff(attempt, retryAfter, rng)
		if ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			v.mu.Lock()
			v.failed[reason] += int64(len(retry))
			v.retries -= int64(len(retry)) // the last round was no retry after all
			v.mu.Unlock()
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		toks = retry
	}
}

// acceptedOnly is a timeline of tl's accepted answers alone (the report's delivery curve).
func acceptedOnly(tl *metrics.Timeline) *metrics.Timeline {
	acc := make([]int64, tl.Len())
	rej := make([]int64, tl.Len())
	for i := range acc {
		acc[i], _ = tl.At(i)
	}
	out, err := metrics.TimelineOf(tl.Step(), acc, rej)
	if err != nil {
		return metrics.NewTimeline(tl.Step()) // cannot happen: the counts come from a timeline
	}
	return out
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
