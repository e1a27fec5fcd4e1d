package main

import (
	"context"
	"flag"

	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/apns"
	"github.com/salvopush/salvo/sender/burst"
	"github.com/salvopush/salvo/sender/fcm"
)

// transportFlags configure the push transports of a send worker: from a mock's ready file,
// or from provider credentials (real APNs/FCM for rehearsals).
type transportFlags struct {
	mockReady   string
	apns        apns.Config
	fcm         fcm.Config
	connections int
	concurrency int
	// transport is "stock" (apns2, firebase admin) or "burst" (sender/burst).
	transport string
}

func (t *transportFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.mockReady, "mock-ready", "", "ready file of `salvo mockpush`: send to the mock servers with their generated credentials")
	fs.StringVar(&t.apns.URL, "apns-url", "https://api.push.apple.com", "APNs endpoint (api.sandbox.push.apple.com for development)")
	fs.StringVar(&t.apns.KeyFile, "apns-key-file", "", "APNs token-auth key (.p8)")
	fs.StringVar(&t.apns.KeyID, "apns-key-id", "", "APNs key ID")
	fs.StringVar(&t.apns.TeamID, "apns-team-id", "", "Apple team ID")
	fs.StringVar(&t.fcm.ServiceAccountFile, "fcm-service-account", "", "FCM service-account JSON file")
	fs.StringVar(&t.fcm.ProjectID, "fcm-project", "", "FCM project ID")
	fs.StringVar(&t.fcm.Endpoint, "fcm-endpoint", "", "FCM endpoint base URL (empty: Google's)")
	fs.StringVar(&t.apns.CAFile, "ca-file", "", "extra root CA (PEM) trusted for both providers")
	fs.IntVar(&t.connections, "connections", 4, "HTTP/2 connections per provider")
	fs.IntVar(&t.concurrency, "concurrency", 512, "pushes in flight per provider")
	fs.StringVar(&t.transport, "transport", "stock", "push transports: stock (apns2, firebase admin) or burst (frame-level HTTP/2)")
}

// open builds the transports; the caller closes them.
func (t *transportFlags) open(ctx context.Context) (map[sender.Platform]sender.Transport, error) {
	a, f := t.apns, t.fcm
	f.CAFile = a.CAFile
	if t.mockReady != "" {
		r, err := mockpush.ReadReadyFile(t.mockReady)
		if err != nil {
			return nil, usageError("--mock-ready: %v", err)
		}
		a = apns.Config{URL: r.APNsURL, KeyFile: r.APNsKeyFile, KeyID: r.APNsKeyID, TeamID: r.APNsTeamID, CAFile: r.CAFile}
		f = fcm.Config{Endpoint: r.FCMURL, ServiceAccountFile: r.FCMServiceAccountFile, ProjectID: r.FCMProjectID, CAFile: r.CAFile}
	}
	a.Connections, a.Concurrency = t.connections, t.concurrency
	f.Connections, f.Concurrency = t.connections, t.concurrency
	switch t.transport {
	case "stock":
	case "burst":
		return t.openBurst(ctx, a, f)
	default:
		return nil, usageError("--transport %q: want stock or burst", t.transport)
	}
	out := map[sender.Platform]sender.Transport{}
	if a.KeyFile != "" {
		tr, err := apns.New(a)
		if err != nil {
			return nil, usageError("apns: %v", err)
		}
		out[sender.PlatformIOS] = tr
	}
	if f.ServiceAccountFile != "" {
		tr, err := fcm.New(ctx, f)
		if err != nil {
			for _, o := range out {
				_ = o.Close()
			}
			return nil, usageError("fcm: %v", err)
		}
		out[sender.PlatformAndroid] = tr
	}
	if len(out) == 0 {
		return nil, usageError("no transport: give --mock-ready, or --apns-key-file and/or --fcm-service-account")
	}
	return out, nil
}

// openBurst builds the burst transports from the same settings as the stock ones.
func (t *transportFlags) openBurst(ctx context.Context, a apns.Config, f fcm.Config) (map[sender.Platform]sender.Transport, error) {
	out := map[sender.Platform]sender.Transport{}
	if a.KeyFile != "" {
		tr, err := burst.NewAPNs(burst.APNsConfig{URL: a.URL, KeyFile: a.KeyFile, KeyID: a.KeyID, TeamID: a.TeamID,
			CAFile: a.CAFile, Connections: t.connections})
		if err != nil {
			return nil, usageError("apns: %v", err)
		}
		out[sender.PlatformIOS] = tr
	}
	if f.ServiceAccountFile != "" {
		tr, err := burst.NewFCM(ctx, burst.FCMConfig{Endpoint: f.Endpoint, ServiceAccountFile: f.ServiceAccountFile,
			ProjectID: f.ProjectID, CAFile: f.CAFile, Connections: t.connections})
		if err != nil {
			closeAll(out)
			return nil, usageError("fcm: %v", err)
		}
		out[sender.PlatformAndroid] = tr
	}
	if len(out) == 0 {
		return nil, usageError("no transport: give --mock-ready, or --apns-key-file and/or --fcm-service-account")
	}
	return out, nil
}

func closeAll(m map[sender.Platform]sender.Transport) {
	for _, t := range m {
		_ = t.Close() // nothing useful to do with a failed close at shutdown
	}
}
