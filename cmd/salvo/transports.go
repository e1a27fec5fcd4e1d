package main

import (
	"context"
	"errors"
	"flag"

	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/scenarios"
	"github.com/salvopush/salvo/sender/transport"
)

// transportFlags configure the push transports of a send worker: from a mock's ready file,
// or from provider credentials (real APNs/FCM for rehearsals).
type transportFlags struct {
	mockReady string
	cfg       transport.Config
	kind      string
}

func (t *transportFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.mockReady, "mock-ready", "", "ready file of `salvo mockpush`: send to the mock servers with their generated credentials")
	fs.StringVar(&t.cfg.APNs.URL, "apns-url", "https://api.push.apple.com", "APNs endpoint (api.sandbox.push.apple.com for development)")
	fs.StringVar(&t.cfg.APNs.KeyFile, "apns-key-file", "", "APNs token-auth key (.p8)")
	fs.StringVar(&t.cfg.APNs.KeyID, "apns-key-id", "", "APNs key ID")
	fs.StringVar(&t.cfg.APNs.TeamID, "apns-team-id", "", "Apple team ID")
	fs.StringVar(&t.cfg.FCM.ServiceAccountFile, "fcm-service-account", "", "FCM service-account JSON file")
	fs.StringVar(&t.cfg.FCM.ProjectID, "fcm-project", "", "FCM project ID")
	fs.StringVar(&t.cfg.FCM.Endpoint, "fcm-endpoint", "", "FCM endpoint base URL (empty: Google's)")
	fs.StringVar(&t.cfg.CAFile, "ca-file", "", "extra root CA (PEM) trusted for both providers")
	fs.IntVar(&t.cfg.Connections, "connections", 4, "HTTP/2 connections per provider")
	fs.IntVar(&t.cfg.Concurrency, "concurrency", 512, "pushes in flight per provider (stock transports)")
	fs.DurationVar(&t.cfg.Timeout, "push-timeout", 0, "bound on one push from request to answer (0: the transports' default, 10s)")
	fs.StringVar(&t.kind, "transport", string(transport.Default), "push transports: burst (frame-level HTTP/2, the production path) or stock (apns2, firebase admin: the reference)")
}

// given reports whether any flag names a provider (a mock's ready file or credentials).
func (t *transportFlags) given() bool {
	return t.mockReady != "" || t.cfg.APNs.KeyFile != "" || t.cfg.FCM.ServiceAccountFile != ""
}

// open builds the transports; the caller closes them.
func (t *transportFlags) open(ctx context.Context) (transport.Set, error) {
	kind, err := transport.ParseKind(t.kind)
	if err != nil {
		return nil, usageError("--transport: %v", err)
	}
	cfg := t.cfg
	if t.mockReady != "" {
		r, err := mockpush.ReadReadyFile(t.mockReady)
		if err != nil {
			return nil, usageError("--mock-ready: %v", err)
		}
		timeout := cfg.Timeout
		cfg = scenarios.MockTransports(r, cfg.Connections, cfg.Concurrency)
		cfg.Timeout = timeout
	}
	if cfg.Timeout < 0 {
		return nil, usageError("--push-timeout: %v is negative", cfg.Timeout)
	}
	cfg.Kind = kind
	set, err := transport.Open(ctx, cfg)
	switch {
	case errors.Is(err, transport.ErrNoProvider):
		return nil, usageError("no transport: give --mock-ready, or --apns-key-file and/or --fcm-service-account")
	case err != nil:
		return nil, usageError("%v", err)
	}
	return set, nil
}
