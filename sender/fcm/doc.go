// Package fcm is the sender.Transport for Firebase Cloud Messaging HTTP v1, built on the
// Firebase Admin SDK (firebase.google.com/go/v4/messaging), one request per message.
//
// A Transport keeps Config.Connections HTTP/2 connections, one messaging client each, all
// sharing one OAuth2 access token from the service account. Config.Concurrency sender
// goroutines, started by New and stopped by Close, send the messages of every batch, so the
// requests in flight never exceed Concurrency and Send blocks while they are all busy. Each
// message is tried once (the SDK's own retries are cut short); Classify turns the answer into
// a sender.Result, and the send worker decides about retries.
//
// Usage:
//
//	t, err := fcm.New(ctx, fcm.Config{ServiceAccountFile: "service-account.json"})
//	if err != nil {
//		return err
//	}
//	defer t.Close()
//	b := &sender.Batch{
//		Campaign: "spring-sale",
//		Platform: sender.PlatformAndroid,
//		FCM: &sender.FCMMessage{
//			Data:        map[string]string{"campaign_id": "spring-sale"},
//			CollapseKey: "spring-sale", Priority: "normal", TTL: time.Hour,
//		},
//		Tokens:  tokens,
//		Results: make([]sender.Result, len(tokens)),
//	}
//	if err := t.Send(ctx, b); err != nil {
//		return err // nothing was sent
//	}
//	for i, r := range b.Results {
//		if r.InvalidToken { // a token rejection: Permanent, provider.FCMInvalidToken
//			prune(tokens[i])
//		}
//	}
package fcm
