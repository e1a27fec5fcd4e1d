package apns

import (
	"net/http"
	"strconv"
	"time"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/pushpool"
	"github.com/sideshow/apns2"
)

// Classify turns one APNs answer into a Result. status and reason are the HTTP status and
// the reason from the JSON body, retryAfter the raw Retry-After header ("" if none), err the
// transport error when no answer came, at when the answer (or the error) arrived.
//
//   - 200: Accepted.
//   - Token rejections (IsInvalidToken): Permanent. Prune the token.
//   - Rejections of the message or request (BadTopic, MissingTopic, TopicDisallowed,
//     PayloadTooLarge, PayloadEmpty, BadCollapseId, BadPriority, BadExpirationDate,
//     BadMessageId, InvalidPushType, DuplicateHeaders, MissingDeviceToken, BadPath,
//     MethodNotAllowed): Permanent; retrying the same request cannot succeed, but the token
//     is not at fault.
//   - Provider-token and credential problems (IsAuthFailure: 403 ExpiredProviderToken,
//     InvalidProviderToken, MissingProviderToken, ..., 429 TooManyProviderTokenUpdates):
//     Transient, so no token is pruned for them; the send worker should count them apart
//     and alert, since retries with a broken key fail the same way.
//   - 429 TooManyRequests, 500 InternalServerError, 503 ServiceUnavailable and Shutdown,
//     400 IdleTimeout: Transient, with RetryAfter from the header.
//   - Unknown reasons fall back on the status: 403, 408, 429 and 5xx are Transient, other
//     4xx Permanent, anything else Transient. An empty reason becomes "HTTP <status>".
//   - err != nil: Transient, Status 0, Reason one of the Reason* constants (ReasonTimeout,
//     ReasonGoAway, ReasonConnectionReset, ...).
func Classify(status int, reason, retryAfter string, err error, at time.Time) sender.Result {
	if err != nil {
		return sender.Result{Outcome: sender.Transient, Reason: pushpool.TransportReason(err), At: at}
	}
	r := sender.Result{Status: status, Reason: reason, At: at}
	if status == http.StatusOK {
		r.Outcome, r.Reason = sender.Accepted, ""
		return r
	}
	if r.Reason == "" {
		r.Reason = "HTTP " + strconv.Itoa(status)
	}
	r.Outcome = outcome(status, reason)
	r.InvalidToken = r.Outcome == sender.Permanent && IsInvalidToken(r.Reason)
	if r.Outcome == sender.Transient {
		r.RetryAfter = pushpool.ParseRetryAfter(retryAfter, at)
	}
	return r
}

// IsInvalidToken reports whether reason says the device token itself is no good for the
// topic (Unregistered, ExpiredToken, BadDeviceToken, DeviceTokenNotForTopic), so that the
// registry should drop it. Other Permanent reasons are about the message, not the token.
func IsInvalidToken(reason string) bool {
	switch reason {
	case apns2.ReasonUnregistered, apns2.ReasonExpiredToken, apns2.ReasonBadDeviceToken,
		apns2.ReasonDeviceTokenNotForTopic:
		return true
	}
	return false
}

// IsAuthFailure reports whether reason says the provider token or credentials were refused
// (403 ExpiredProviderToken, InvalidProviderToken, MissingProviderToken, BadCertificate,
// BadCertificateEnvironment, Forbidden; 429 TooManyProviderTokenUpdates). Classify makes
// these Transient; they need an operator, not a retry, when they persist.
func IsAuthFailure(reason string) bool {
	switch reason {
	case apns2.ReasonExpiredProviderToken, apns2.ReasonInvalidProviderToken,
		apns2.ReasonMissingProviderToken, apns2.ReasonBadCertificate,
		apns2.ReasonBadCertificateEnvironment, apns2.ReasonForbidden,
		apns2.ReasonTooManyProviderTokenUpdates:
		return true
	}
	return false
}

// outcome classifies a non-200 answer by reason, then by status.
func outcome(status int, reason string) sender.Outcome {
	switch {
	case IsInvalidToken(reason):
		return sender.Permanent
	case IsAuthFailure(reason):
		return sender.Transient
	}
	switch reason {
	case apns2.ReasonBadCollapseID, apns2.ReasonBadExpirationDate, apns2.ReasonBadMessageID,
		apns2.ReasonBadPriority, apns2.ReasonBadTopic, apns2.ReasonDuplicateHeaders,
		apns2.ReasonInvalidPushType, apns2.ReasonMissingDeviceToken, apns2.ReasonMissingTopic,
		apns2.ReasonPayloadEmpty, apns2.ReasonTopicDisallowed, apns2.ReasonBadPath,
		apns2.ReasonMethodNotAllowed, apns2.ReasonPayloadTooLarge:
		return sender.Permanent
	case apns2.ReasonIdleTimeout, apns2.ReasonTooManyRequests, apns2.ReasonInternalServerError,
		apns2.ReasonServiceUnavailable, apns2.ReasonShutdown:
		return sender.Transient
	}
	switch {
	case status == http.StatusForbidden, status == http.StatusRequestTimeout,
		status == http.StatusTooManyRequests, status >= 500:
		return sender.Transient
	case status >= 400:
		return sender.Permanent
	}
	return sender.Transient
}

// Reasons for pushes that got no answer from the provider, as put in Result.Reason (the
// same in every transport; see sender/pushpool).
const (
	ReasonCanceled          = pushpool.ReasonCanceled
	ReasonTimeout           = pushpool.ReasonTimeout
	ReasonGoAway            = pushpool.ReasonGoAway
	ReasonConnectionReset   = pushpool.ReasonConnectionReset
	ReasonConnectionRefused = pushpool.ReasonConnectionRefused
	ReasonConnectionClosed  = pushpool.ReasonConnectionClosed
	ReasonStreamReset       = pushpool.ReasonStreamReset
	ReasonTLS               = pushpool.ReasonTLS
	ReasonBadResponse       = pushpool.ReasonBadResponse
	ReasonTransport         = pushpool.ReasonTransport
)
