package fcm

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/pushpool"
	"golang.org/x/oauth2"
)

// Reasons Classify gives besides the FCM error codes and the transport failures (Reason*
// constants in pool.go).
const (
	// ReasonInvalidMessage: the SDK refused the message before sending it (bad priority,
	// negative TTL, empty token).
	ReasonInvalidMessage = "invalid message"
	// ReasonAccessToken: the token endpoint refused to issue an OAuth2 access token.
	ReasonAccessToken = "access token"
)

// Classify turns the outcome of one send into a Result: err is what the SDK's
// messaging.Client.Send returned (or the transport error when no answer came), at when the
// answer arrived.
//
//   - nil: Accepted, Status 200.
//   - UNREGISTERED (404), SENDER_ID_MISMATCH (403): Permanent; IsInvalidToken: prune.
//   - INVALID_ARGUMENT (400), other 4xx: Permanent. FCM uses INVALID_ARGUMENT both for a
//     malformed token and for a malformed message, so it is not a reason to prune.
//   - QUOTA_EXCEEDED (429), UNAVAILABLE (503), INTERNAL (500), other 5xx: Transient, with
//     RetryAfter from the answer's Retry-After.
//   - UNAUTHENTICATED (401), PERMISSION_DENIED (403), THIRD_PARTY_AUTH_ERROR, an access token
//     refused by the token endpoint: Transient and IsAuthFailure (credentials, not tokens).
//   - A message the SDK refuses before sending: Permanent, ReasonInvalidMessage.
//   - No answer: Transient, Status 0, one of the Reason* transport constants.
//
// Reason is the FCM error code when the answer carries one, else the Google status
// ("NOT_FOUND", ...), else "HTTP <status>".
func Classify(err error, at time.Time) sender.Result {
	if err == nil {
		return sender.Result{Outcome: sender.Accepted, Status: http.StatusOK, At: at}
	}
	var unavailable *unavailableError
	var invalid *invalidMessageError
	var retrieve *oauth2.RetrieveError
	switch {
	case errors.As(err, &unavailable):
		return sender.Result{Outcome: sender.Transient, Status: http.StatusServiceUnavailable, Reason: "UNAVAILABLE",
			RetryAfter: pushpool.ParseRetryAfter(unavailable.header.Get("Retry-After"), at), At: at}
	case errors.As(err, &invalid):
		return sender.Result{Outcome: sender.Permanent, Reason: ReasonInvalidMessage, At: at}
	case errors.As(err, &retrieve):
		r := sender.Result{Outcome: sender.Transient, Reason: ReasonAccessToken, At: at}
		if retrieve.Response != nil {
			r.RetryAfter = pushpool.ParseRetryAfter(retrieve.Response.Header.Get("Retry-After"), at)
		}
		return r
	}
	resp := errorutils.HTTPResponse(err)
	if resp == nil {
		return sender.Result{Outcome: sender.Transient, Reason: pushpool.TransportReason(err), At: at}
	}
	r := sender.Result{Status: resp.StatusCode, At: at}
	r.Outcome, r.Reason = outcome(err, resp.StatusCode)
	r.InvalidToken = r.Outcome == sender.Permanent && IsInvalidToken(r.Reason)
	if r.Outcome == sender.Transient {
		r.RetryAfter = pushpool.ParseRetryAfter(resp.Header.Get("Retry-After"), at)
	}
	return r
}

// IsInvalidToken reports whether reason says the registration token is no good for the
// project (UNREGISTERED, SENDER_ID_MISMATCH), so that the registry should drop it.
func IsInvalidToken(reason string) bool {
	return reason == "UNREGISTERED" || reason == "SENDER_ID_MISMATCH"
}

// IsAuthFailure reports whether reason says the sender's credentials were refused
// (UNAUTHENTICATED, PERMISSION_DENIED, THIRD_PARTY_AUTH_ERROR, ReasonAccessToken). Classify
// makes these Transient; they need an operator, not a retry, when they persist.
func IsAuthFailure(reason string) bool {
	switch reason {
	case "UNAUTHENTICATED", "PERMISSION_DENIED", "THIRD_PARTY_AUTH_ERROR", "APNS_AUTH_ERROR", ReasonAccessToken:
		return true
	}
	return false
}

// outcome classifies an error answer by its FCM error code, then its Google status, then its
// HTTP status.
func outcome(err error, status int) (sender.Outcome, string) {
	switch {
	case messaging.IsUnregistered(err):
		return sender.Permanent, "UNREGISTERED"
	case messaging.IsSenderIDMismatch(err):
		return sender.Permanent, "SENDER_ID_MISMATCH"
	case messaging.IsInvalidArgument(err):
		return sender.Permanent, "INVALID_ARGUMENT"
	case messaging.IsQuotaExceeded(err):
		return sender.Transient, "QUOTA_EXCEEDED"
	case messaging.IsUnavailable(err):
		return sender.Transient, "UNAVAILABLE"
	case messaging.IsInternal(err):
		return sender.Transient, "INTERNAL"
	case messaging.IsThirdPartyAuthError(err):
		return sender.Transient, "THIRD_PARTY_AUTH_ERROR"
	case errorutils.IsUnauthenticated(err):
		return sender.Transient, "UNAUTHENTICATED"
	case errorutils.IsPermissionDenied(err):
		return sender.Transient, "PERMISSION_DENIED"
	case errorutils.IsResourceExhausted(err):
		return sender.Transient, "RESOURCE_EXHAUSTED"
	case errorutils.IsUnavailable(err):
		return sender.Transient, "UNAVAILABLE"
	case errorutils.IsInternal(err):
		return sender.Transient, "INTERNAL"
	case errorutils.IsDeadlineExceeded(err):
		return sender.Transient, "DEADLINE_EXCEEDED"
	case errorutils.IsInvalidArgument(err):
		return sender.Permanent, "INVALID_ARGUMENT"
	case errorutils.IsNotFound(err):
		return sender.Permanent, "NOT_FOUND"
	case errorutils.IsFailedPrecondition(err):
		return sender.Permanent, "FAILED_PRECONDITION"
	}
	reason := "HTTP " + strconv.Itoa(status)
	switch {
	case status == http.StatusUnauthorized, status == http.StatusForbidden,
		status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		return sender.Transient, reason
	case status >= 400:
		return sender.Permanent, reason
	}
	return sender.Transient, reason
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
