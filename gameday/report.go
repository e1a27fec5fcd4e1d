package gameday

import (
	"fmt"
	"time"

	"github.com/salvopush/salvo/results"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/prom"
	"github.com/salvopush/salvo/sender/transport"
)

// Notes every rehearsal report carries.
const (
	noteNotDisplay = "Acceptance by a provider is not display on a device: APNs and FCM took these pushes; " +
		"whether and when each phone received them is not measured here."
	noteSilent = "Silent pushes only: APNs background pushes (priority 5, content-available 1, no alert, sound or badge), " +
		"FCM data-only messages; the campaign carried the rehearsal flag, which the API and every send worker enforce on their own."
)

// reportConfig describes the run for the report: no key, token or file path.
func reportConfig(cfg *Config, toks *Tokens, workers int) results.Config {
	n := int64(len(toks.List))
	share := 0.0
	if n > 0 {
		share = float64(toks.Count(sender.PlatformIOS)) / float64(n)
	}
	kind, _ := transport.ParseKind(cfg.Transport)
	extra := map[string]any{"name": cfg.Name, "rate_per_second": cfg.RatePerSecond, "dry_run": cfg.DryRun,
		"max_recipients": cfg.MaxRecipients, "allowlist": cfg.AllowlistFile != "", "mode": "embedded"}
	if cfg.API != nil {
		extra["mode"] = "process"
	}
	if cfg.APNs != nil {
		extra["apns_url"] = cfg.APNs.URL
	}
	if cfg.FCM != nil {
		extra["fcm_url"] = cfg.FCM.URL
	}
	if cfg.API == nil && !cfg.DryRun {
		loops, chunk := sendShape(cfg.RatePerSecond)
		extra["send_loops"], extra["chunk"] = loops, chunk
	}
	return results.Config{Audience: n, IOSShare: share, Transport: string(kind), Workers: workers, Extra: extra}
}

// criteria are a rehearsal's pass criteria: everyone accepted or rejected for good, none
// given up on, none accepted twice, the rate cap held, and the target when required. An
// aborted run fails for the abort itself; what it did not push is not also counted lost.
func criteria(cfg *Config, aborted bool) results.Criteria {
	c := results.Criteria{RequireTarget: cfg.RequireTarget, MaxRatePerS: cfg.RatePerSecond}
	if aborted {
		c.MaxLost, c.MaxFailed = -1, -1
	}
	return c
}

// feedbackNote says what the invalid-token file holds and what to do with it.
func feedbackNote(n int) string {
	if n == 0 {
		return fmt.Sprintf("No token was condemned by a provider (%s has only its header).", FeedbackFile)
	}
	return fmt.Sprintf("%d tokens were condemned by the providers (Unregistered, BadDeviceToken, UNREGISTERED, SENDER_ID_MISMATCH): "+
		"they are listed in %s (platform,token,reason). Remove them from the registry before the day "+
		"(docs/gameday.md, \"After\"); the file holds device tokens: keep it as private as the registry.", n, FeedbackFile)
}

// liveInputs turns a live run's measurements into the report's inputs: counts from the
// ledger (the campaign's final result; duplicates are its repeated acceptances), reasons and latencies from the workers' figures,
// figures per provider from the tallies where this process pushed.
func liveInputs(cfg *Config, toks *Tokens, final, resolved *sender.Status, stats *sender.SendStats, tallies map[sender.Platform]*tally,
	pressedAt, startedAt time.Time, aborted bool, invalid int, prepareMs float64) results.Inputs {
	res := resolved.Campaign.Resolution
	in := results.Inputs{Scenario: "gameday/" + cfg.Name, StartedAt: startedAt, Mode: results.ModeGameday, Aborted: &aborted,
		Config:   reportConfig(cfg, toks, 0),
		Audience: results.Audience{Recipients: int64(res.Recipients), IOS: int64(res.IOS), Android: int64(res.Android)},
		Delivery: results.Delivery{Rejected: stats.Rejected, Retries: stats.Retries},
		Latency:  stats.Latency, Timeline: stats.Timeline, Criteria: criteria(cfg, aborted),
		Resources: results.Resources{PrepareMs: prepareMs},
		Notes:     []string{noteNotDisplay, noteSilent},
	}
	if r := final.Campaign.Result; r != nil {
		in.Delivery.Accepted, in.Delivery.Failed, in.Delivery.Duplicates = r.Accepted, r.Failed, r.Repeated
		if aborted {
			in.Notes = append(in.Notes, fmt.Sprintf("Aborted: %d recipients were never pushed.", r.Unsent))
		}
	}
	if len(tallies) > 0 {
		in.Providers = map[string]results.ProviderInputs{}
		for p, t := range tallies {
			in.Providers[prom.Provider(p)] = t.figures(pressedAt, int64(toks.Count(p)))
		}
	} else {
		in.Notes = append(in.Notes, "Process mode: the figures per provider and the rate check need the embedded mode "+
			"(the deployed workers' figures are per send, not per provider); the cap there is each worker's --rate-per-second.",
			"Process mode: "+FeedbackFile+" holds what the workers had written when the report was made "+
				"(they write every 10,000 rows and when they stop).")
	}
	in.Config.Workers = max(len(final.Ready), 1)
	in.Notes = append(in.Notes, preflightNote(cfg), feedbackNote(invalid))
	return in
}

// preflightNote says what the preflight pushed.
func preflightNote(cfg *Config) string {
	s := "Preflight:"
	if cfg.APNs != nil {
		s += " one APNs push to an impossible device token (answered BadDeviceToken: nothing can be delivered);"
	}
	if cfg.FCM != nil {
		s += fmt.Sprintf(" FCM validate_only for up to %d Android tokens (validated, never delivered);", cfg.PreflightSample)
	}
	return s + " TLS with ALPN h2 to each endpoint."
}
