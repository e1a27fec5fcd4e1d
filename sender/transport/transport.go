// Package transport builds the push transports of one kind from one configuration: the
// frame-level HTTP/2 transports of sender/burst (Burst, the default: the production path),
// or the stock ones on apns2 and the Firebase Admin SDK (Stock: sender/apns and sender/fcm,
// the reference behaviour). Every command and scenario that sends builds its transports
// here, so the choice is made in one place.
//
// Usage:
//
//	set, err := transport.Open(ctx, transport.Config{
//		APNs: transport.APNs{URL: "https://api.push.apple.com", KeyFile: "AuthKey.p8",
//			KeyID: "ABC123", TeamID: "TEAM"},
//		FCM: transport.FCM{ServiceAccountFile: "sa.json"},
//	})
//	if err != nil {
//		return err
//	}
//	defer set.Close()
//	worker := sender.WorkerConfig{Transports: set, ...}
package transport

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/apns"
	"github.com/salvopush/salvo/sender/burst"
	"github.com/salvopush/salvo/sender/fcm"
)

// Kind names a family of push transports.
type Kind string

// The kinds Open builds.
const (
	// Burst is sender/burst: HTTP/2 written at the frame level, a fixed set of goroutines per
	// connection. The production path and the default.
	Burst Kind = "burst"
	// Stock is sender/apns (github.com/sideshow/apns2) and sender/fcm (the Firebase Admin
	// SDK): the reference behaviour burst is tested against.
	Stock Kind = "stock"
)

// Default is the kind a Config with an empty Kind gets.
const Default = Burst

// ErrNoProvider is returned by Open for a Config that names neither provider.
var ErrNoProvider = errors.New("transport: no provider: give an APNs key file, an FCM service account, or both")

// Kinds lists the kinds Open builds, the default first.
func Kinds() []Kind { return []Kind{Burst, Stock} }

// ParseKind returns the kind named s; "" is Default.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case "":
		return Default, nil
	case Burst, Stock:
		return k, nil
	}
	return "", fmt.Errorf("transport: kind %q: want burst or stock", s)
}

// Config is what Open needs to build the transports of one kind. Zero Connections and
// Concurrency take each transport's defaults.
type Config struct {
	// Kind is Burst or Stock; empty means Default.
	Kind Kind
	// APNs is the iOS provider; an empty KeyFile builds no iOS transport.
	APNs APNs
	// FCM is the Android provider; an empty ServiceAccountFile builds no Android transport.
	FCM FCM
	// CAFile is a PEM file of root certificates trusted besides the system roots for both
	// providers (a mock's CA); empty trusts the system roots only.
	CAFile string
	// Connections is the number of HTTP/2 connections per provider.
	Connections int
	// Concurrency bounds the pushes in flight per provider for Stock (its number of sender
	// goroutines); Burst is bounded by the servers' stream limits instead and ignores it.
	Concurrency int
	// Timeout bounds one push from request to answer, and each dial and handshake; zero
	// takes the transports' default (10 s).
	Timeout time.Duration
}

// APNs locates and authenticates the APNs endpoint (token auth).
type APNs struct {
	// URL is the endpoint: https://api.push.apple.com, the sandbox, or a mock's.
	URL string
	// KeyFile is the .p8 signing key, KeyID its key ID and TeamID the team that owns it.
	KeyFile, KeyID, TeamID string
}

// FCM locates and authenticates the FCM HTTP v1 endpoint.
type FCM struct {
	// Endpoint is the base URL without "/v1"; empty means Google's.
	Endpoint string
	// ServiceAccountFile is the service account JSON key; ProjectID, when empty, is its
	// project_id.
	ServiceAccountFile string
	ProjectID          string
	// ValidateOnly sends every message as an FCM dry run (validate_only): checked by the
	// service and answered, never delivered.
	ValidateOnly bool
}

// Set is the transports of a run, one per platform. Close closes them all.
type Set map[sender.Platform]sender.Transport

// Close closes every transport of the set and returns the first error.
func (s Set) Close() error {
	var errs []error
	for _, t := range s {
		errs = append(errs, t.Close())
	}
	return errors.Join(errs...)
}

// Open builds the transports cfg names: one for iOS when cfg.APNs.KeyFile is set, one for
// Android when cfg.FCM.ServiceAccountFile is set, at least one of them (ErrNoProvider
// otherwise). It checks the
// configurations, reads the key files and, for FCM, fetches a first access token with ctx
// (so that bad credentials fail here); ctx bounds only Open. The caller closes the Set.
func Open(ctx context.Context, cfg Config) (Set, error) {
	kind, err := ParseKind(string(cfg.Kind))
	if err != nil {
		return nil, err
	}
	if cfg.APNs.KeyFile == "" && cfg.FCM.ServiceAccountFile == "" {
		return nil, ErrNoProvider
	}
	set := Set{}
	if cfg.APNs.KeyFile != "" {
		t, err := openAPNs(kind, cfg)
		if err != nil {
			return nil, fmt.Errorf("transport: %s apns: %w", kind, err)
		}
		set[sender.PlatformIOS] = t
	}
	if cfg.FCM.ServiceAccountFile != "" {
		t, err := openFCM(ctx, kind, cfg)
		if err != nil {
			_ = set.Close() // the error that matters is the one returned
			return nil, fmt.Errorf("transport: %s fcm: %w", kind, err)
		}
		set[sender.PlatformAndroid] = t
	}
	return set, nil
}

// openAPNs builds the iOS transport of kind.
func openAPNs(kind Kind, cfg Config) (sender.Transport, error) {
	a := cfg.APNs
	if kind == Stock {
		return apns.New(apns.Config{URL: a.URL, KeyFile: a.KeyFile, KeyID: a.KeyID, TeamID: a.TeamID,
			CAFile: cfg.CAFile, Connections: cfg.Connections, Concurrency: cfg.Concurrency, Timeout: cfg.Timeout})
	}
	return burst.NewAPNs(burst.APNsConfig{URL: a.URL, KeyFile: a.KeyFile, KeyID: a.KeyID, TeamID: a.TeamID,
		CAFile: cfg.CAFile, Connections: cfg.Connections, Timeout: cfg.Timeout})
}

// openFCM builds the Android transport of kind.
func openFCM(ctx context.Context, kind Kind, cfg Config) (sender.Transport, error) {
	f := cfg.FCM
	if kind == Stock {
		return fcm.New(ctx, fcm.Config{Endpoint: f.Endpoint, ServiceAccountFile: f.ServiceAccountFile,
			ProjectID: f.ProjectID, CAFile: cfg.CAFile, Connections: cfg.Connections, Concurrency: cfg.Concurrency,
			Timeout: cfg.Timeout, ValidateOnly: f.ValidateOnly})
	}
	return burst.NewFCM(ctx, burst.FCMConfig{Endpoint: f.Endpoint, ServiceAccountFile: f.ServiceAccountFile,
		ProjectID: f.ProjectID, CAFile: cfg.CAFile, Connections: cfg.Connections, Timeout: cfg.Timeout,
		ValidateOnly: f.ValidateOnly})
}
