package scenarios

import (
	"context"

	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/apns"
	"github.com/salvopush/salvo/sender/burst"
	"github.com/salvopush/salvo/sender/fcm"
)

// newTransports builds the push transports a run selects, pointed at the mock servers:
// "stock" (apns2 and firebase admin, the reference behaviour) or "burst" (sender/burst, the
// frame-level HTTP/2 transports).
func newTransports(ctx context.Context, p Params, r mockpush.Ready) (map[sender.Platform]sender.Transport, error) {
	switch p.Transport {
	case "stock":
		a, err := apns.New(apns.Config{URL: r.APNsURL, KeyFile: r.APNsKeyFile, KeyID: r.APNsKeyID, TeamID: r.APNsTeamID,
			CAFile: r.CAFile, Connections: p.Connections, Concurrency: p.Concurrency})
		if err != nil {
			return nil, setupErr("apns transport: %v", err)
		}
		f, err := fcm.New(ctx, fcm.Config{Endpoint: r.FCMURL, ServiceAccountFile: r.FCMServiceAccountFile,
			ProjectID: r.FCMProjectID, CAFile: r.CAFile, Connections: p.Connections, Concurrency: p.Concurrency})
		if err != nil {
			_ = a.Close()
			return nil, setupErr("fcm transport: %v", err)
		}
		return map[sender.Platform]sender.Transport{sender.PlatformIOS: a, sender.PlatformAndroid: f}, nil
	case "burst":
		a, err := burst.NewAPNs(burst.APNsConfig{URL: r.APNsURL, KeyFile: r.APNsKeyFile, KeyID: r.APNsKeyID,
			TeamID: r.APNsTeamID, CAFile: r.CAFile, Connections: p.Connections})
		if err != nil {
			return nil, setupErr("burst apns transport: %v", err)
		}
		f, err := burst.NewFCM(ctx, burst.FCMConfig{Endpoint: r.FCMURL, ServiceAccountFile: r.FCMServiceAccountFile,
			ProjectID: r.FCMProjectID, CAFile: r.CAFile, Connections: p.Connections})
		if err != nil {
			_ = a.Close()
			return nil, setupErr("burst fcm transport: %v", err)
		}
		return map[sender.Platform]sender.Transport{sender.PlatformIOS: a, sender.PlatformAndroid: f}, nil
	}
	return nil, setupErr("transport %q: want stock or burst", p.Transport)
}

func closeTransports(m map[sender.Platform]sender.Transport) {
	for _, t := range m {
		_ = t.Close()
	}
}
