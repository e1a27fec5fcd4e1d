package gameday

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/provider"
	"github.com/salvopush/salvo/sender/transport"
)

// Check is one preflight check and its outcome.
type Check struct {
	Name   string
	OK     bool
	Detail string
}

// failedChecks joins the failed checks into one error, nil when all passed.
func failedChecks(checks []Check) error {
	var errs []error
	for _, c := range checks {
		if !c.OK {
			errs = append(errs, fmt.Errorf("preflight: %s: %s", c.Name, c.Detail))
		}
	}
	return errors.Join(errs...)
}

// preflightTimeout bounds each network check.
const preflightTimeout = 15 * time.Second

// providers are the transports of a rehearsal: one per platform of the config, and for FCM
// a second one sending validate_only (the preflight sample and the dry run).
type providers struct {
	push     map[sender.Platform]sender.Transport
	validate sender.Transport
	sets     []transport.Set
}

// close closes every transport.
func (p *providers) close() {
	for _, s := range p.sets {
		_ = s.Close() // nothing is left to send
	}
}

// transportConfig is the transport configuration of the config's providers; apns and fcm
// say which of them it builds.
func transportConfig(cfg *Config, apns, fcm, validateOnly bool) transport.Config {
	tc := transport.Config{Kind: transport.Kind(cfg.Transport), Connections: cfg.Connections,
		Timeout: time.Duration(cfg.PushTimeoutSeconds) * time.Second}
	if apns {
		a := cfg.APNs
		tc.APNs = transport.APNs{URL: a.URL, KeyFile: a.KeyFile, KeyID: a.KeyID, TeamID: a.TeamID}
		tc.CAFile = a.CAFile
	}
	if fcm {
		f := cfg.FCM
		tc.FCM = transport.FCM{Endpoint: f.URL, ServiceAccountFile: f.ServiceAccountFile, ProjectID: f.ProjectID, ValidateOnly: validateOnly}
		tc.CAFile = f.CAFile
	}
	return tc
}

// openProviders builds the transports (each provider on its own, with its own CA): reading
// the APNs key, fetching a first FCM OAuth access token. Each step is a check.
func openProviders(ctx context.Context, cfg *Config) (*providers, []Check) {
	p := &providers{push: map[sender.Platform]sender.Transport{}}
	var checks []Check
	open := func(name string, tc transport.Config) sender.Transport {
		octx, cancel := context.WithTimeout(ctx, preflightTimeout)
		defer cancel()
		set, err := transport.Open(octx, tc)
		if err != nil {
			checks = append(checks, Check{Name: name, Detail: err.Error()})
			return nil
		}
		p.sets = append(p.sets, set)
		checks = append(checks, Check{Name: name, OK: true, Detail: "ok"})
		for _, t := range set {
			return t
		}
		return nil
	}
	if cfg.APNs != nil {
		if t := open("apns key (.p8 read, JWT signed)", transportConfig(cfg, true, false, false)); t != nil {
			p.push[sender.PlatformIOS] = t
		}
	}
	if cfg.FCM != nil {
		if t := open("fcm OAuth access token fetched", transportConfig(cfg, false, true, false)); t != nil {
			p.push[sender.PlatformAndroid] = t
		}
		if t := open("fcm validate_only transport", transportConfig(cfg, false, true, true)); t != nil {
			p.validate = t
		}
	}
	return p, checks
}

// preflight checks, without delivering anything, that the providers can be reached and take
// the credentials and the message: TLS with ALPN h2 to each endpoint, an APNs push to a
// token that cannot exist (answered BadDeviceToken when the JWT and topic are accepted), FCM
// validate_only on a sample of the Android tokens.
func preflight(ctx context.Context, cfg *Config, toks *Tokens, p *providers) []Check {
	var checks []Check
	if a := cfg.APNs; a != nil {
		checks = append(checks, alpnCheck(ctx, "apns endpoint reachable (TLS, ALPN h2)", a.URL, a.CAFile))
		if t := p.push[sender.PlatformIOS]; t != nil {
			checks = append(checks, apnsProbe(ctx, cfg, t))
		}
	}
	if f := cfg.FCM; f != nil {
		checks = append(checks, alpnCheck(ctx, "fcm endpoint reachable (TLS, ALPN h2)", f.URL, f.CAFile))
		if p.validate != nil {
			checks = append(checks, fcmSample(ctx, cfg, toks, p.validate))
		}
	}
	return checks
}

// alpnCheck dials the endpoint of rawURL over TLS offering only h2.
func alpnCheck(ctx context.Context, name, rawURL, caFile string) Check {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Check{Name: name, Detail: err.Error()}
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "443"
	}
	tc, err := provider.TLSConfig(caFile, "h2")
	if err != nil {
		return Check{Name: name, Detail: err.Error()}
	}
	tc.ServerName = host
	dctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	d := tls.Dialer{Config: tc}
	conn, err := d.DialContext(dctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return Check{Name: name, Detail: err.Error()}
	}
	defer conn.Close()
	if got := conn.(*tls.Conn).ConnectionState().NegotiatedProtocol; got != "h2" {
		return Check{Name: name, Detail: fmt.Sprintf("the server chose ALPN %q, not h2", got)}
	}
	return Check{Name: name, OK: true, Detail: net.JoinHostPort(host, port) + " speaks h2"}
}

// probeToken is an APNs device token no device can have: 64 characters, not hex. APNs
// answers it 400 BadDeviceToken once the provider token (JWT) and the topic pass; nothing
// can be delivered.
var probeToken = []byte(strings.Repeat("zz", 32))

// apnsProbe pushes the silent payload to probeToken.
func apnsProbe(ctx context.Context, cfg *Config, t sender.Transport) Check {
	const name = "apns token auth (JWT accepted)"
	b := &sender.Batch{Campaign: "gameday-preflight", Platform: sender.PlatformIOS, Tokens: [][]byte{probeToken},
		Results: make([]sender.Result, 1),
		APNs: &sender.APNsMessage{Topic: cfg.APNs.Topic, PushType: "background", Priority: 5,
			CollapseID: "gameday-preflight", Payload: cfg.APNsPayload}}
	pctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	if err := t.Send(pctx, b); err != nil {
		return Check{Name: name, Detail: err.Error()}
	}
	r := b.Results[0]
	if r.Outcome == sender.Permanent && r.Reason == "BadDeviceToken" {
		return Check{Name: name, OK: true, Detail: "a push to an impossible token was answered BadDeviceToken: key, team and topic accepted"}
	}
	return Check{Name: name, Detail: fmt.Sprintf("a push to an impossible token was answered %s %d %q, want 400 BadDeviceToken",
		r.Outcome, r.Status, r.Reason)}
}

// fcmSample sends validate_only for the first PreflightSample Android tokens.
func fcmSample(ctx context.Context, cfg *Config, toks *Tokens, t sender.Transport) Check {
	const name = "fcm validate_only on a sample"
	b := &sender.Batch{Campaign: "gameday-preflight", Platform: sender.PlatformAndroid,
		FCM: &sender.FCMMessage{Project: cfg.FCM.ProjectID, Data: cfg.FCMData, CollapseKey: "gameday-preflight", Priority: "normal"}}
	for _, tok := range toks.List {
		if tok.Platform == sender.PlatformAndroid && len(b.Tokens) < cfg.PreflightSample {
			b.Tokens = append(b.Tokens, []byte(tok.Token))
		}
	}
	if len(b.Tokens) == 0 {
		return Check{Name: name, OK: true, Detail: "no Android token in the audience"}
	}
	b.Results = make([]sender.Result, len(b.Tokens))
	pctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	if err := t.Send(pctx, b); err != nil {
		return Check{Name: name, Detail: err.Error()}
	}
	answers := map[string]int{}
	validated, invalidArg, transient := 0, 0, 0
	for _, r := range b.Results {
		switch {
		case r.Outcome == sender.Accepted:
			validated++
			answers["validated"]++
		case r.Outcome == sender.Transient:
			transient++
			answers[r.Reason]++
		default:
			if r.Reason == "INVALID_ARGUMENT" || r.Reason == provider.FCMInvalidMessage {
				invalidArg++
			}
			answers[r.Reason]++
		}
	}
	detail := summarize(answers)
	switch {
	case transient > 0:
		return Check{Name: name, Detail: "not answered for good (credentials, quota or reachability): " + detail}
	case invalidArg == len(b.Results):
		return Check{Name: name, Detail: "every message refused as INVALID_ARGUMENT (the message, not the tokens): " + detail}
	}
	return Check{Name: name, OK: true, Detail: fmt.Sprintf("%d of %d: %s", validated, len(b.Results), detail)}
}

// summarize writes counts by answer, sorted.
func summarize(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
