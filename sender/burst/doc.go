// Package burst holds Salvo's fast push transports for APNs and FCM: HTTP/2 clients written
// at the frame level on golang.org/x/net/http2 and its HPACK, for bursts of millions of
// notifications. They implement sender.Transport and give, for every answer, the same
// Results as the stock transports sender/apns and sender/fcm, which stay the reference
// behaviour: both classify through sender/provider (provider.ClassifyAPNs, and
// provider.ClassifyFCM, the Firebase Admin SDK's error model). The package imports neither
// apns2 nor the Firebase Admin SDK.
//
// Each transport keeps a fixed pool of connections; each connection has one writer, one
// reader and one ticker goroutine and nothing per notification. A Send queues its tokens;
// writers take as many as the server's MAX_CONCURRENT_STREAMS allows and write the frames of
// many requests in one socket write. The request header fields common to a message (and
// the provider token) are inserted into the connection's HPACK table once and referred to by
// one-byte indexes afterwards; only the token is spliced in (APNs: into :path; FCM: into the
// JSON body). Answers are parsed without allocation when accepted. Streams the server never
// processed (REFUSED_STREAM, above a GOAWAY's last stream) are sent again on another
// connection.
//
// Usage:
//
//	a, err := burst.NewAPNs(burst.APNsConfig{URL: "https://api.push.apple.com",
//		KeyFile: "AuthKey.p8", KeyID: "ABC123", TeamID: "TEAM", Connections: 4})
//	if err != nil { ... }
//	defer a.Close()
//	err = a.Send(ctx, &sender.Batch{Platform: sender.PlatformIOS, APNs: msg,
//		Tokens: tokens, Results: make([]sender.Result, len(tokens))})
//
//	f, err := burst.NewFCM(ctx, burst.FCMConfig{ServiceAccountFile: "sa.json"})
//
// docs/burst.md describes the design, the protocol handling and the measured figures.
package burst
