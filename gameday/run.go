package gameday

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/salvopush/salvo/results"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
	"github.com/salvopush/salvo/sender/prom"
	"github.com/salvopush/salvo/sender/ratelimit"
)

// FeedbackFile is the name, in the output folder, of the invalid-token file: one
// "platform,token,reason" row per token a provider condemned (Unregistered, BadDeviceToken,
// UNREGISTERED, SENDER_ID_MISMATCH), for pruning the registry.
const FeedbackFile = "invalid-tokens.csv"

// Options are how a rehearsal runs on this machine, not what it does (that is the Config).
type Options struct {
	// Out is the folder of report.json, the human-readable files and FeedbackFile.
	Out string
	// Yes skips the typed confirmation; otherwise the rehearsal's name is read from Confirm
	// (the terminal).
	Yes     bool
	Confirm io.Reader
	// Progress receives the plan and a progress line per second (nil: silent).
	Progress io.Writer
	Log      *slog.Logger
	// Getenv reads the AWS environment in process mode (os.Getenv).
	Getenv func(string) string
	// Metrics, when set, counts the embedded pipeline's pushes and figures.
	Metrics *prom.Metrics
	// APIAddr is where the embedded pipeline's API listens (default 127.0.0.1:0).
	APIAddr string
}

func (o *Options) defaults() {
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Run plays a rehearsal end to end and writes its report in opts.Out. Cancelling ctx (the
// command's Ctrl-C or SIGTERM) aborts the campaign through its abort route if GO was pressed
// (no new push within a second; the report is still written, with aborted true); before GO,
// it stops the run with nothing pushed.
//
// The error wraps ErrRefused when the run was refused before any push (a bad or unsafe
// config, the rails, a failed preflight, a declined confirmation); any other error means the
// run could not be carried out. Otherwise the report says whether the criteria held.
func Run(ctx context.Context, cfg *Config, opts Options) (*results.Report, error) {
	opts.defaults()
	if opts.Out == "" {
		return nil, errors.New("gameday: no output folder")
	}
	if err := cfg.Validate(); err != nil {
		return nil, refuse(err)
	}
	toks, err := ReadTokens(cfg.TokensFile)
	if err != nil {
		return nil, refuse(configErr("tokens_file", "%v", err))
	}
	var allow *Tokens
	if cfg.AllowlistFile != "" {
		if allow, err = ReadTokens(cfg.AllowlistFile); err != nil {
			return nil, refuse(configErr("allowlist_file", "%v", err))
		}
	}
	if err := checkAudience(cfg, toks, allow); err != nil {
		return nil, refuse(err)
	}
	startedAt := time.Now()
	prov, checks := openProviders(ctx, cfg)
	defer prov.close()
	if failedChecks(checks) == nil {
		checks = append(checks, preflight(ctx, cfg, toks, prov)...)
	}
	if err := failedChecks(checks); err != nil {
		newPlan(cfg, toks, checks).Print(opts.Progress)
		return nil, refuse(err)
	}
	if cfg.DryRun {
		return dryRun(ctx, cfg, toks, prov, checks, startedAt, opts)
	}
	return live(ctx, cfg, toks, prov, checks, startedAt, opts)
}

// sendSet wraps each transport for the run: a tally closest to the wire (the report's
// figures per provider), the metrics, then the rate cap outermost, so that pushes it holds
// back are never counted as pushes.
func sendSet(cfg *Config, push map[sender.Platform]sender.Transport, epoch time.Time, m *prom.Metrics) (map[sender.Platform]sender.Transport, map[sender.Platform]*tally, error) {
	tallies := map[sender.Platform]*tally{}
	set := map[sender.Platform]sender.Transport{}
	for p, t := range push {
		tallies[p] = newTally(t, epoch)
		set[p] = tallies[p]
	}
	if m != nil {
		set = m.Transports(set)
	}
	set, err := ratelimit.Wrap(set, ratelimit.Config{PerSecond: cfg.RatePerSecond})
	if err != nil {
		return nil, nil, configErr("rate_per_second", "%v", err)
	}
	return set, tallies, nil
}

// live runs the rehearsal through the pipeline: campaign, resolution, prepare, plan and
// confirmation, GO, watch, report.
func live(ctx context.Context, cfg *Config, toks *Tokens, prov *providers, checks []Check, startedAt time.Time, opts Options) (*results.Report, error) {
	var (
		pl      pipeline
		tallies map[sender.Platform]*tally // per provider, where this process pushes
		err     error
	)
	if cfg.API == nil {
		var set map[sender.Platform]sender.Transport
		if set, tallies, err = sendSet(cfg, prov.push, time.Now(), opts.Metrics); err != nil {
			return nil, refuse(err)
		}
		pl, err = startEmbedded(ctx, cfg, toks, set, opts)
	} else {
		pl, err = startProcess(ctx, cfg, toks, opts)
	}
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			return nil, refuse(err)
		}
		return nil, err
	}
	defer pl.close()
	client := pl.api()
	// work outlives ctx: after an interrupt the campaign is still aborted, watched and reported.
	work := context.WithoutCancel(ctx)

	id, st, err := createCampaign(ctx, cfg, toks, client, startedAt)
	if err != nil {
		return nil, err
	}
	prepStart := time.Now()
	if err := client.Prepare(ctx, id, pl.workers()); err != nil {
		return nil, fmt.Errorf("gameday: prepare: %w", err)
	}
	if st, err = waitStatus(ctx, client, id, 10*time.Minute, func(s *sender.Status) bool { return s.Prepared }); err != nil {
		return nil, stopBeforeGO(work, client, id, fmt.Errorf("prepare: %w", err))
	}
	prepareMs := float64(time.Since(prepStart).Microseconds()) / 1000
	plan := newPlan(cfg, toks, checks)
	plan.Abort = pl.abortHint(id)
	plan.Print(opts.Progress)
	if !opts.Yes {
		if err := confirm(opts.Confirm, opts.Progress, cfg.Name, ctx.Done()); err != nil {
			return nil, stopBeforeGO(work, client, id, err)
		}
	}
	if ctx.Err() != nil {
		return nil, stopBeforeGO(work, client, id, refuse(errors.New("interrupted before GO")))
	}
	press, err := client.Press(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("gameday: GO: %w", err)
	}
	fmt.Fprintf(opts.Progress, "GO pressed at %s (campaign %s, send %s)\n", press.PressedAt.UTC().Format(time.RFC3339Nano), id, press.SendID)
	aborted, final, err := watch(ctx, work, client, id, press.PressedAt, opts.Progress)
	if err != nil {
		return nil, err
	}
	stats, reporting, err := settledFigures(work, pl, id, press.SendID, final)
	if err != nil {
		return nil, err
	}
	rows, err := pl.feedback(work, id)
	if err != nil {
		return nil, err
	}
	if err := writeFeedback(opts.Out, rows); err != nil {
		return nil, err
	}
	in := liveInputs(cfg, toks, final, st, stats, tallies, press.PressedAt, startedAt, aborted, len(rows), prepareMs)
	in.WorkersExpected, in.WorkersReporting = pl.workers(), reporting
	rep := results.Build(in)
	if err := results.WriteRun(opts.Out, rep, in); err != nil {
		return rep, fmt.Errorf("gameday: write report: %w", err)
	}
	return rep, nil
}

// createCampaign uploads the audience (the devices' user IDs), creates the rehearsal
// campaign and waits for its resolution, which must give exactly the tokens file's devices.
func createCampaign(ctx context.Context, cfg *Config, toks *Tokens, client *api.Client, startedAt time.Time) (string, *sender.Status, error) {
	users, _ := toks.Devices("", "")
	key := fmt.Sprintf("audiences/gameday-%s-%d.csv", cfg.Name, startedAt.UnixNano())
	if err := client.PutObject(ctx, key, []byte("user_id\n"+strings.Join(users, "\n")+"\n")); err != nil {
		return "", nil, fmt.Errorf("gameday: upload the audience: %w", err)
	}
	spec := sender.CampaignSpec{Name: "gameday " + cfg.Name, Audience: sender.AudienceSource{Object: key, Format: "csv"},
		Silent: true, Rehearsal: true, TTLSeconds: cfg.TTLSeconds, DeliveryDeadlineSeconds: cfg.DeliveryDeadlineSeconds}
	if cfg.APNs != nil {
		spec.Message.APNs = &sender.APNsSpec{Payload: cfg.APNsPayload, PushType: "background", Priority: 5, Topic: cfg.APNs.Topic}
	}
	if cfg.FCM != nil {
		spec.Message.FCM = &sender.FCMSpec{Data: cfg.FCMData, Priority: "normal"}
	}
	created, err := client.Create(ctx, "", spec)
	if err != nil {
		var ae *api.APIError
		if errors.As(err, &ae) && ae.Status == 400 {
			return "", nil, refuse(fmt.Errorf("the API refused the campaign: %w", err))
		}
		return "", nil, fmt.Errorf("gameday: create the campaign: %w", err)
	}
	id := created.ID
	st, err := waitStatus(ctx, client, id, 10*time.Minute, func(s *sender.Status) bool { return s.Campaign.State != sender.StateResolving })
	if err != nil {
		return "", nil, fmt.Errorf("gameday: resolution: %w", err)
	}
	if st.Campaign.State == sender.StateFailed {
		return "", nil, fmt.Errorf("gameday: resolution failed: %s", st.Campaign.Error)
	}
	res := st.Campaign.Resolution
	ios, android := toks.Count(sender.PlatformIOS), toks.Count(sender.PlatformAndroid)
	switch {
	case res.UnknownUsers > 0:
		return "", nil, refuse(fmt.Errorf("resolution: %d users of the tokens file are not in the registry", res.UnknownUsers))
	case int(res.Recipients) != len(toks.List) || res.IOS != ios || res.Android != android:
		return "", nil, refuse(fmt.Errorf("resolution: the registry gave %d recipients (%d iOS, %d Android) for a tokens file of %d (%d iOS, %d Android): refusing devices outside the file",
			res.Recipients, res.IOS, res.Android, len(toks.List), ios, android))
	case int(res.Recipients) > cfg.MaxRecipients:
		return "", nil, refuse(configErr("max_recipients", "the campaign has %d recipients, more than %d", res.Recipients, cfg.MaxRecipients))
	}
	return id, st, nil
}

// waitStatus polls the campaign every 100 ms until cond holds, ctx ends or timeout passes.
func waitStatus(ctx context.Context, client *api.Client, id string, timeout time.Duration, cond func(*sender.Status) bool) (*sender.Status, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, err := client.Status(ctx, id)
		if err == nil && cond(st) {
			return st, nil
		}
		if ctx.Err() != nil {
			return nil, refuse(errors.New("interrupted before GO"))
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("still %s after %s", st.Campaign.State, timeout)
			}
			return nil, err
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopBeforeGO aborts a campaign that will not be pressed (so that deployed workers drop
// it) and returns why.
func stopBeforeGO(work context.Context, client *api.Client, id string, why error) error {
	_, _ = client.Abort(work, id, "gameday: stopped before GO") // nothing was pushed either way
	return why
}

// watch follows the send once a second on the progress writer until the campaign ends.
// When ctx ends first it aborts the campaign through the API and waits (up to 30 s) for
// its final counts; a campaign someone else aborted counts as aborted too.
func watch(ctx, work context.Context, client *api.Client, id string, pressedAt time.Time, out io.Writer) (aborted bool, final *sender.Status, err error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	interrupt := ctx.Done()
	var giveUpAt time.Time
	lastPrint, lastDone, failures := time.Now(), int64(0), 0
	for {
		st, err := client.Status(work, id)
		switch {
		case err != nil:
			if failures++; failures >= 50 {
				return aborted, nil, fmt.Errorf("gameday: campaign status: %w", err)
			}
		case st.Campaign.State == sender.StateAborted:
			aborted = true
			if st.Campaign.Result != nil {
				return true, st, nil
			}
		case st.Campaign.Terminal() && st.Campaign.Result != nil:
			return aborted, st, nil
		}
		if err == nil {
			failures = 0
			if p := st.Progress; p != nil && time.Since(lastPrint) >= time.Second {
				done := p.Accepted + p.Rejected + p.Failed
				rate := float64(done-lastDone) / time.Since(lastPrint).Seconds()
				fmt.Fprintf(out, "t+%5.1fs  accepted %d / %d, rejected %d, failed %d, in flight %d, retries %d  (%.0f/s)\n",
					time.Since(pressedAt).Seconds(), p.Accepted, p.Recipients, p.Rejected, p.Failed, p.InFlight, p.Retries, rate)
				lastPrint, lastDone = time.Now(), done
			}
		}
		if !giveUpAt.IsZero() && time.Now().After(giveUpAt) {
			return true, st, nil
		}
		select {
		case <-interrupt:
			interrupt = nil
			aborted, giveUpAt = true, time.Now().Add(30*time.Second)
			fmt.Fprintf(out, "interrupted: aborting campaign %s (no new push within a second); the report follows\n", id)
			if _, err := client.Abort(work, id, "gameday: interrupted"); err != nil {
				var ae *api.APIError
				if !errors.As(err, &ae) || ae.Status != 409 { // 409: it had ended already
					fmt.Fprintf(out, "abort: %v\n", err)
				}
			}
		case <-tick.C:
		}
	}
}

// settledFigures reads the send's figures once they agree with the ledger's final counts
// (deployed workers publish theirs at least once a second), waiting up to 20 s.
func settledFigures(work context.Context, pl pipeline, id, send string, final *sender.Status) (*sender.SendStats, int, error) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, n, err := pl.figures(work, id, send)
		if err != nil {
			return nil, 0, fmt.Errorf("gameday: figures: %w", err)
		}
		r := final.Campaign.Result
		if r == nil || (st.Accepted >= r.Accepted && st.RejectedTotal() >= r.Rejected) || time.Now().After(deadline) {
			return st, n, nil
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// writeFeedback writes FeedbackFile (0600: device tokens) with a header, even when empty.
func writeFeedback(dir string, rows []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("gameday: %w", err)
	}
	var b strings.Builder
	b.WriteString("platform,token,reason\n")
	for _, r := range rows {
		b.WriteString(r)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(dir, FeedbackFile), []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("gameday: %w", err)
	}
	return nil
}
