package scenarios

import (
	"context"
	"time"

	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender/transport"
)

// MockTransports is the transport configuration that sends to the mock servers of r with
// the credentials they generated and trust; its Kind is left empty (the default).
func MockTransports(r mockpush.Ready, connections, concurrency int) transport.Config {
	return transport.Config{
		APNs:        transport.APNs{URL: r.APNsURL, KeyFile: r.APNsKeyFile, KeyID: r.APNsKeyID, TeamID: r.APNsTeamID},
		FCM:         transport.FCM{Endpoint: r.FCMURL, ServiceAccountFile: r.FCMServiceAccountFile, ProjectID: r.FCMProjectID},
		CAFile:      r.CAFile,
		Connections: connections,
		Concurrency: concurrency,
	}
}

// newTransports builds the push transports a run selects (p.Transport), pointed at the
// mock servers.
func newTransports(ctx context.Context, p Params, r mockpush.Ready) (transport.Set, error) {
	cfg := MockTransports(r, p.Connections, p.Concurrency)
	cfg.Kind = transport.Kind(p.Transport)
	cfg.Timeout = time.Duration(p.PushTimeoutSeconds) * time.Second
	set, err := transport.Open(ctx, cfg)
	if err != nil {
		return nil, setupErr("%v", err)
	}
	return set, nil
}
