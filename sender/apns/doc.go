// Package apns is the sender.Transport for Apple Push Notification service, built on
// github.com/sideshow/apns2 with provider-token (.p8, ES256) authentication.
//
// A Transport keeps Config.Connections HTTP/2 connections, one apns2.Client each, all sharing
// one signed provider token. Config.Concurrency sender goroutines, started by New and stopped
// by Close, push the notifications of every batch, so the pushes in flight never exceed
// Concurrency however many batches are sent at once, and Send blocks while they are all busy.
// Each notification is tried once; provider.ClassifyAPNs turns the answer into a
// sender.Result, and the send worker decides about retries.
//
// Usage:
//
//	t, err := apns.New(apns.Config{
//		URL:     apns.ProductionURL,
//		KeyFile: "AuthKey_ABC123DEFG.p8",
//		KeyID:   "ABC123DEFG",
//		TeamID:  "DEF123GHIJ",
//	})
//	if err != nil {
//		return err
//	}
//	defer t.Close()
//	b := &sender.Batch{
//		Campaign: "spring-sale",
//		Platform: sender.PlatformIOS,
//		APNs: &sender.APNsMessage{
//			Topic: "com.example.app", PushType: "background", Priority: 5,
//			CollapseID: "spring-sale", Payload: []byte(`{"aps":{"content-available":1}}`),
//		},
//		Tokens:  tokens,
//		Results: make([]sender.Result, len(tokens)),
//	}
//	if err := t.Send(ctx, b); err != nil {
//		return err // nothing was pushed
//	}
//	for i, r := range b.Results {
//		if r.InvalidToken { // a token rejection: Permanent, provider.APNsInvalidToken
//			prune(tokens[i])
//		}
//	}
package apns
