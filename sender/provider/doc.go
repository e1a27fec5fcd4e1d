// Package provider holds what every push transport knows of the push providers, APNs and
// FCM, with no provider SDK: their reason tables, how an answer or a failed request becomes a
// sender.Result (outcome and retry class), the Retry-After header, and the TLS settings for
// their endpoints. The stock transports (sender/apns on apns2, sender/fcm on the Firebase
// Admin SDK) and the frame-level ones (sender/burst) classify through this package, so that
// the same answer gives the same Result whichever transport received it.
//
// Usage, in a transport that has read an answer:
//
//	r := provider.ClassifyAPNs(status, reason, retryAfter, nil, time.Now())
//	if r.Outcome == sender.Permanent && r.InvalidToken {
//		prune(token)
//	}
//
// and for a request that got no answer:
//
//	r := provider.ClassifyAPNs(0, "", "", err, time.Now()) // Reason: provider.ReasonTimeout, ...
package provider
