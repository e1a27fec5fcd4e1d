package fcm

import (
	"errors"
	"net/http"
	"time"

	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/provider"
	"golang.org/x/oauth2"
)

// Classify turns the outcome of one send into a Result: err is what the SDK's
// messaging.Client.Send returned (or the transport error when no answer came), at when the
// answer arrived. The table is provider.FCMOutcome's, fed with the FCM error code and the
// Google status the SDK read from the answer:
//
//   - nil: Accepted, Status 200.
//   - UNREGISTERED (404), SENDER_ID_MISMATCH (403): Permanent and InvalidToken: prune.
//   - INVALID_ARGUMENT (400), other 4xx: Permanent. FCM uses INVALID_ARGUMENT both for a
//     malformed token and for a malformed message, so it is not a reason to prune.
//   - QUOTA_EXCEEDED (429), UNAVAILABLE (503), INTERNAL (500), other 5xx: Transient, with
//     RetryAfter from the answer's Retry-After.
//   - UNAUTHENTICATED (401), PERMISSION_DENIED (403), THIRD_PARTY_AUTH_ERROR, an access token
//     refused by the token endpoint (provider.FCMAccessToken): Transient and
//     provider.FCMAuthFailure (credentials, not tokens).
//   - A message the SDK refuses before sending: Permanent, provider.FCMInvalidMessage.
//   - No answer: provider.Failed (Transient, Status 0, one of the provider.Reason*).
func Classify(err error, at time.Time) sender.Result {
	if err == nil {
		return sender.Result{Outcome: sender.Accepted, Status: http.StatusOK, At: at}
	}
	var unavailable *unavailableError
	var invalid *invalidMessageError
	var retrieve *oauth2.RetrieveError
	switch {
	case errors.As(err, &unavailable):
		return provider.FCMResult(sender.Transient, "UNAVAILABLE", http.StatusServiceUnavailable,
			unavailable.header.Get("Retry-After"), at)
	case errors.As(err, &invalid):
		return sender.Result{Outcome: sender.Permanent, Reason: provider.FCMInvalidMessage, At: at}
	case errors.As(err, &retrieve):
		return accessTokenRefused(retrieve, at)
	}
	resp := errorutils.HTTPResponse(err)
	if resp == nil {
		return provider.Failed(err, at)
	}
	outcome, reason := provider.FCMOutcome(errorCode(err), googleStatus(err), resp.StatusCode)
	return provider.FCMResult(outcome, reason, resp.StatusCode, resp.Header.Get("Retry-After"), at)
}

// accessTokenRefused is the Result of a send without an access token because the token
// endpoint refused one: Transient, provider.FCMAccessToken, Status 0, with the refusal's
// Retry-After.
func accessTokenRefused(e *oauth2.RetrieveError, at time.Time) sender.Result {
	retryAfter := ""
	if e.Response != nil {
		retryAfter = e.Response.Header.Get("Retry-After")
	}
	return provider.FCMResult(sender.Transient, provider.FCMAccessToken, 0, retryAfter, at)
}

// errorCode is the FCM error code of an SDK error ("" when it has none the table knows).
func errorCode(err error) string {
	switch {
	case messaging.IsUnregistered(err):
		return "UNREGISTERED"
	case messaging.IsSenderIDMismatch(err):
		return "SENDER_ID_MISMATCH"
	case messaging.IsInvalidArgument(err):
		return "INVALID_ARGUMENT"
	case messaging.IsQuotaExceeded(err):
		return "QUOTA_EXCEEDED"
	case messaging.IsUnavailable(err):
		return "UNAVAILABLE"
	case messaging.IsInternal(err):
		return "INTERNAL"
	case messaging.IsThirdPartyAuthError(err):
		return "THIRD_PARTY_AUTH_ERROR"
	}
	return ""
}

// googleStatus is the Google status of an SDK error ("" when it has none the table knows).
func googleStatus(err error) string {
	switch {
	case errorutils.IsUnauthenticated(err):
		return "UNAUTHENTICATED"
	case errorutils.IsPermissionDenied(err):
		return "PERMISSION_DENIED"
	case errorutils.IsResourceExhausted(err):
		return "RESOURCE_EXHAUSTED"
	case errorutils.IsUnavailable(err):
		return "UNAVAILABLE"
	case errorutils.IsInternal(err):
		return "INTERNAL"
	case errorutils.IsDeadlineExceeded(err):
		return "DEADLINE_EXCEEDED"
	case errorutils.IsInvalidArgument(err):
		return "INVALID_ARGUMENT"
	case errorutils.IsNotFound(err):
		return "NOT_FOUND"
	case errorutils.IsFailedPrecondition(err):
		return "FAILED_PRECONDITION"
	}
	return ""
}
