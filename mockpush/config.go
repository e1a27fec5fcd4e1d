package mockpush

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"net"
	"regexp"
	"time"
)

// Config configures the mock APNs and FCM servers and their control API. Fill it from
// DefaultConfig, change what is needed, and pass it to Start, which calls Validate.
type Config struct {
	// APNsAddr, FCMAddr and ControlAddr are the listen addresses ("127.0.0.1:0" picks a free
	// port). The mocks only ever listen on loopback addresses.
	APNsAddr    string
	FCMAddr     string
	ControlAddr string

	// Dir receives the generated files (CA certificate, APNs .p8 key, FCM service-account
	// JSON). Empty means a new temporary folder, removed by Close.
	Dir string

	// APNsTopic is the only apns-topic the mock accepts (the app's bundle ID).
	APNsTopic string
	// APNsTeamID is the team ID of the generated APNs signing key.
	APNsTeamID string
	// APNsKeys are extra ES256 provider-token keys the mock trusts besides the one it
	// generates.
	APNsKeys []APNsKey

	// FCMProject is the Firebase project ID the mock serves and the generated service account
	// belongs to.
	FCMProject string
	// FCMQuotaPerMinute is the per-project quota of send requests over a sliding one-minute
	// window (FCM's default is 600,000); beyond it the mock answers 429 QUOTA_EXCEEDED.
	FCMQuotaPerMinute int

	// MaxConcurrentStreams is the SETTINGS_MAX_CONCURRENT_STREAMS each mock advertises.
	MaxConcurrentStreams uint32

	// Faults is the initial fault injection (see Faults); SetFaults replaces it.
	Faults Faults

	// KeepAccepted keeps the device token of every accepted request, per campaign, for
	// Server.Accepted and GET /accepted: the identity of what was delivered, not only its
	// count. It costs the tokens' bytes (about 65 per APNs and 160 per FCM request) and CPU
	// (BenchmarkConnAccepted on 2 cores: about 330 CPU-ns per accepted request without, 410
	// to 690 with), so it is off unless asked for.
	KeepAccepted bool

	// Permissive turns off APNs provider-token checks and accepts any request path with a
	// 404 BadPath answer, for HTTP/2 conformance tools that cannot sign requests. Never for
	// benchmarks.
	Permissive bool

	// Now returns the current time; nil means time.Now. Tests use it to age tokens.
	Now func() time.Time
}

// APNsKey is an extra provider-token signing key the mock APNs trusts.
type APNsKey struct {
	KeyID  string
	TeamID string
	Public *ecdsa.PublicKey
}

// DefaultConfig returns the configuration `salvo mockpush` uses without flags.
func DefaultConfig() Config {
	return Config{
		APNsAddr:             "127.0.0.1:0",
		FCMAddr:              "127.0.0.1:0",
		ControlAddr:          "127.0.0.1:0",
		APNsTopic:            "com.salvo.bench",
		APNsTeamID:           "SALVOTEAM1",
		FCMProject:           "salvo-bench",
		FCMQuotaPerMinute:    600000,
		MaxConcurrentStreams: 1000,
	}
}

var (
	teamIDPattern  = regexp.MustCompile(`^[A-Z0-9]{10}$`)
	projectPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{3,61}[a-z0-9]$`)
)

// Validate reports the first invalid field by name.
func (c Config) Validate() error {
	for _, a := range []struct{ name, addr string }{
		{"APNsAddr", c.APNsAddr}, {"FCMAddr", c.FCMAddr}, {"ControlAddr", c.ControlAddr},
	} {
		host, _, err := net.SplitHostPort(a.addr)
		if err != nil {
			return fmt.Errorf("mockpush: config %s: %w", a.name, err)
		}
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("mockpush: config %s: %q is not a loopback address", a.name, a.addr)
		}
	}
	switch {
	case c.APNsTopic == "":
		return errors.New("mockpush: config APNsTopic: empty")
	case !teamIDPattern.MatchString(c.APNsTeamID):
		return fmt.Errorf("mockpush: config APNsTeamID: %q is not 10 upper-case letters or digits", c.APNsTeamID)
	case !projectPattern.MatchString(c.FCMProject):
		return fmt.Errorf("mockpush: config FCMProject: %q is not a project ID", c.FCMProject)
	case c.FCMQuotaPerMinute <= 0:
		return fmt.Errorf("mockpush: config FCMQuotaPerMinute: %d is not positive", c.FCMQuotaPerMinute)
	case c.MaxConcurrentStreams == 0 || c.MaxConcurrentStreams > 1<<20:
		return fmt.Errorf("mockpush: config MaxConcurrentStreams: %d is out of 1..1048576", c.MaxConcurrentStreams)
	}
	for i, k := range c.APNsKeys {
		if k.KeyID == "" || k.Public == nil || !teamIDPattern.MatchString(k.TeamID) {
			return fmt.Errorf("mockpush: config APNsKeys[%d]: needs KeyID, a 10-character TeamID and Public", i)
		}
	}
	if err := c.Faults.Validate(); err != nil {
		return fmt.Errorf("mockpush: config Faults: %w", err)
	}
	return nil
}

func (c Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}
