package gameday

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/salvopush/salvo/sender"
)

// ErrRefused marks a rehearsal refused before any push: a bad or unsafe config, a token
// outside the allowlist, an audience over max_recipients, a failed preflight, a declined
// confirmation. `salvo gameday` exits 2 on it.
var ErrRefused = errors.New("refused before any push")

// refuse wraps a reason in ErrRefused.
func refuse(err error) error { return fmt.Errorf("%w: %w", ErrRefused, err) }

// checkAudience applies the rails that need no network: every token on the allowlist (when
// there is one), no more recipients than max_recipients, a provider section for every
// platform of the audience.
func checkAudience(cfg *Config, toks *Tokens, allow *Tokens) error {
	n := len(toks.List)
	switch {
	case n == 0:
		return configErr("tokens_file", "no device in %s", cfg.TokensFile)
	case n > cfg.MaxRecipients:
		return configErr("max_recipients", "the audience has %d recipients, more than max_recipients %d", n, cfg.MaxRecipients)
	case cfg.APNs == nil && toks.Count(sender.PlatformIOS) > 0:
		return configErr("apns", "the audience has %d ios tokens and the config no apns section", toks.Count(sender.PlatformIOS))
	case cfg.FCM == nil && toks.Count(sender.PlatformAndroid) > 0:
		return configErr("fcm", "the audience has %d android tokens and the config no fcm section", toks.Count(sender.PlatformAndroid))
	}
	if allow == nil {
		return nil
	}
	ok := make(map[string]bool, len(allow.List))
	for _, t := range allow.List {
		ok[t.Platform.String()+","+t.Token] = true
	}
	outside, first := 0, Token{}
	for _, t := range toks.List {
		if !ok[t.Platform.String()+","+t.Token] {
			if outside == 0 {
				first = t
			}
			outside++
		}
	}
	if outside > 0 {
		return configErr("allowlist_file", "%d tokens of tokens_file are not on the allowlist, the first on line %d (%s token %s)",
			outside, first.Line, first.Platform, tail(first.Token))
	}
	return nil
}

// Plan is what a rehearsal will do, printed before GO.
type Plan struct {
	Name    string
	Mode    string // "embedded" or "process (API ...)"
	DryRun  bool
	IOS     int
	Android int
	APNsURL string
	FCMURL  string
	Rate    float64
	// Duration and Longest are estimated from the rate (0 with no cap): with both providers
	// busy at once (as GO enqueues ranges spread over the audience, both platforms' batches
	// are there from the start), and with one after the other (the worst case: every send
	// loop waiting on one provider's bucket).
	Duration, Longest time.Duration
	Preflight         []Check
	// Abort says how to stop the run from elsewhere.
	Abort string
}

// newPlan describes cfg's run over toks.
func newPlan(cfg *Config, toks *Tokens, checks []Check) Plan {
	p := Plan{Name: cfg.Name, Mode: "embedded (the pipeline runs in this process)", DryRun: cfg.DryRun,
		IOS: toks.Count(sender.PlatformIOS), Android: toks.Count(sender.PlatformAndroid), Rate: cfg.RatePerSecond, Preflight: checks}
	if cfg.API != nil {
		p.Mode = "process (the deployed API at " + cfg.API.URL + " and its workers)"
	}
	if cfg.APNs != nil {
		p.APNsURL = cfg.APNs.URL
	}
	if cfg.FCM != nil {
		p.FCMURL = cfg.FCM.URL
	}
	if p.Rate > 0 {
		at := func(n int) time.Duration { return time.Duration(math.Ceil(float64(n)/p.Rate*1000)) * time.Millisecond }
		p.Duration, p.Longest = at(max(p.IOS, p.Android)), at(p.IOS+p.Android)
		if cfg.DryRun {
			p.Duration, p.Longest = at(p.Android), at(p.Android)
		}
	}
	return p
}

// Print writes the plan for a person to read before pressing GO.
func (p Plan) Print(w io.Writer) {
	kind := "SILENT pushes (APNs background, priority 5; FCM data-only)"
	if p.DryRun {
		kind = "DRY RUN: FCM validate_only for every Android token, APNs preflight only; nothing is delivered"
	}
	fmt.Fprintf(w, "\n== game-day plan: %s\n", p.Name)
	fmt.Fprintf(w, "  what:        %s\n", kind)
	fmt.Fprintf(w, "  pipeline:    %s\n", p.Mode)
	fmt.Fprintf(w, "  audience:    %d iOS, %d Android (%d recipients)\n", p.IOS, p.Android, p.IOS+p.Android)
	if p.APNsURL != "" {
		fmt.Fprintf(w, "  APNs:        %s\n", p.APNsURL)
	}
	if p.FCMURL != "" {
		fmt.Fprintf(w, "  FCM:         %s\n", p.FCMURL)
	}
	if p.Rate > 0 {
		fmt.Fprintf(w, "  rate cap:    %g pushes/s per provider: %s at the cap, up to %s if the providers take turns\n",
			p.Rate, p.Duration.Round(100*time.Millisecond), p.Longest.Round(100*time.Millisecond))
	} else {
		fmt.Fprintf(w, "  rate cap:    none: as fast as the pipeline goes\n")
	}
	for _, c := range p.Preflight {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  preflight:   %s %s: %s\n", mark, c.Name, c.Detail)
	}
	if p.Abort != "" {
		fmt.Fprintf(w, "  abort:       %s\n", p.Abort)
	}
	fmt.Fprintln(w)
}

// confirm asks for the rehearsal's name on in; anything else declines. It returns early,
// declined, when done is closed first (the read is then left to end with the process: a
// terminal read cannot be cancelled).
func confirm(in io.Reader, out io.Writer, name string, done <-chan struct{}) error {
	if in == nil {
		return refuse(errors.New("confirmation: no terminal to ask on (use --yes to skip it knowingly)"))
	}
	fmt.Fprintf(out, "Type the rehearsal's name (%s) to press GO: ", name)
	answer := make(chan string, 1)
	go func() {
		var b strings.Builder
		one := make([]byte, 1)
		for {
			n, err := in.Read(one)
			if n == 1 && one[0] != '\n' {
				b.WriteByte(one[0])
			}
			if err != nil || (n == 1 && one[0] == '\n') {
				break
			}
		}
		answer <- strings.TrimSpace(b.String())
	}()
	select {
	case <-done:
		fmt.Fprintln(out)
		return refuse(errors.New("confirmation: interrupted"))
	case a := <-answer:
		if a != name {
			return refuse(fmt.Errorf("confirmation: %q is not the rehearsal's name", a))
		}
	}
	return nil
}
