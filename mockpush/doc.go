// Package mockpush runs mock APNs and FCM servers that standard clients (sideshow/apns2,
// firebase admin, golang.org/x/oauth2/google) cannot tell from the real services on the
// behaviours Salvo depends on, injects seeded faults, and counts what it receives on its own
// (received, accepted, unique, duplicates, rejected by reason, and each accepted arrival
// time), so a benchmark never trusts the sender's own counters.
//
// The mock APNs is a framer-level HTTP/2 server (one read goroutine per connection, no
// goroutine per request, HEADERS and DATA frames handled in its read buffer, its own HPACK
// decoder, the golang.org/x/net/http2 Framer for the other frames, one write per batch of
// answers); the mock FCM shares that core for h2 and uses net/http for HTTP/1.1. A plain-HTTP control API serves
// GET /stats, POST /reset, PUT and GET /faults and GET /receipts; Control is its client.
// docs/mockpush.md documents every field, the receipts format and the measured speed.
//
// Example:
//
//	srv, err := mockpush.Start(ctx, mockpush.DefaultConfig())
//	if err != nil {
//		return err
//	}
//	defer srv.Close()
//	r := srv.Ready() // URLs, CA file, APNs key, FCM service account
//	// ... point apns2 at r.APNsURL and firebase admin at r.FCMURL+"/v1" ...
//	ctl := &mockpush.Control{URL: r.ControlURL}
//	stats, err := ctl.Stats(ctx)
//	receipts, err := ctl.Receipts(ctx, "apns")
//	fromPress := receipts.Since(press) // arrival times relative to the GO press
package mockpush
