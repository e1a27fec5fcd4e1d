package provider

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/salvopush/salvo/sender"
)

// FCM reasons besides the FCM error codes ("UNREGISTERED", "QUOTA_EXCEEDED"...), the
// Google statuses ("NOT_FOUND"...) and the transport failures (Reason*).
const (
	// FCMInvalidMessage: the message was refused before any request (bad priority, negative
	// TTL, empty token), as the Firebase Admin SDK refuses it.
	FCMInvalidMessage = "invalid message"
	// FCMAccessToken: the token endpoint refused to issue an OAuth2 access token.
	FCMAccessToken = "access token"
)

// fcmErrorType is the @type of the FCM error detail that carries the FCM error code.
const fcmErrorType = "type.googleapis.com/google.firebase.fcm.v1.FcmError"

// FCMInvalidToken reports whether reason says the registration token is no good for the
// project (UNREGISTERED, SENDER_ID_MISMATCH), so that the registry should drop it.
func FCMInvalidToken(reason string) bool {
	return reason == "UNREGISTERED" || reason == "SENDER_ID_MISMATCH"
}

// FCMAuthFailure reports whether reason says the sender's credentials were refused
// (UNAUTHENTICATED, PERMISSION_DENIED, THIRD_PARTY_AUTH_ERROR, FCMAccessToken). The
// classification makes these Transient; they need an operator, not a retry, when they
// persist.
func FCMAuthFailure(reason string) bool {
	switch reason {
	case "UNAUTHENTICATED", "PERMISSION_DENIED", "THIRD_PARTY_AUTH_ERROR", "APNS_AUTH_ERROR", FCMAccessToken:
		return true
	}
	return false
}

// FCMOutcome classifies an FCM error answer, in the order of the Firebase Admin SDK's error
// model: by its FCM error code (code, "" when the answer has none), then by its Google
// status (google, "" when none), then by its HTTP status. It returns the outcome and the
// reason to report: the code, else the Google status, else "HTTP <status>".
//
//   - UNREGISTERED, SENDER_ID_MISMATCH, INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION,
//     other 4xx: Permanent.
//   - QUOTA_EXCEEDED, UNAVAILABLE, INTERNAL, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, 401,
//     403, 408, 429, 5xx: Transient.
//   - THIRD_PARTY_AUTH_ERROR (and APNS_AUTH_ERROR, reported as THIRD_PARTY_AUTH_ERROR),
//     UNAUTHENTICATED, PERMISSION_DENIED: Transient and FCMAuthFailure.
func FCMOutcome(code, google string, status int) (sender.Outcome, string) {
	switch code {
	case "UNREGISTERED", "SENDER_ID_MISMATCH", "INVALID_ARGUMENT":
		return sender.Permanent, code
	case "QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL":
		return sender.Transient, code
	case "THIRD_PARTY_AUTH_ERROR", "APNS_AUTH_ERROR":
		return sender.Transient, "THIRD_PARTY_AUTH_ERROR"
	}
	switch google {
	case "UNAUTHENTICATED", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED":
		return sender.Transient, google
	case "INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION":
		return sender.Permanent, google
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

// FCMResult builds the Result of an FCM error answer whose outcome and reason FCMOutcome
// gave: InvalidToken for Permanent token rejections, RetryAfter (from the raw Retry-After
// header) for Transient ones.
func FCMResult(outcome sender.Outcome, reason string, status int, retryAfter string, at time.Time) sender.Result {
	r := sender.Result{Outcome: outcome, Status: status, Reason: reason, At: at}
	r.InvalidToken = outcome == sender.Permanent && FCMInvalidToken(reason)
	if outcome == sender.Transient {
		r.RetryAfter = ParseRetryAfter(retryAfter, at)
	}
	return r
}

// ClassifyFCM turns one FCM HTTP v1 answer into a Result as the Firebase Admin SDK and
// sender/fcm would: a 2xx is Accepted (Status 200); a 503 is Transient UNAVAILABLE with
// RetryAfter, whatever its body (the stock transport takes a 503 before the SDK reads it);
// any other answer is decoded from its JSON error body (the FcmError detail's error code,
// the Google status, else the Google status of the HTTP status; an undecodable body leaves
// the HTTP status) and classified by FCMOutcome.
func ClassifyFCM(status int, body []byte, retryAfter string, at time.Time) sender.Result {
	switch {
	case status >= 200 && status < 300:
		return sender.Result{Outcome: sender.Accepted, Status: http.StatusOK, At: at}
	case status == http.StatusServiceUnavailable:
		return sender.Result{Outcome: sender.Transient, Status: status, Reason: "UNAVAILABLE",
			RetryAfter: ParseRetryAfter(retryAfter, at), At: at}
	}
	var e struct {
		Error struct {
			Status  string `json:"status"`
			Details []struct {
				Type      string `json:"@type"`
				ErrorCode string `json:"errorCode"`
			} `json:"details"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &e) // as the SDK: an undecodable body leaves the HTTP status
	code := ""
	for _, d := range e.Error.Details {
		if d.Type == fcmErrorType {
			code = d.ErrorCode
			break
		}
	}
	google := e.Error.Status
	if google == "" {
		google = googleStatus(status)
	}
	outcome, reason := FCMOutcome(code, google, status)
	return FCMResult(outcome, reason, status, retryAfter, at)
}

// googleStatus is the SDK's Google status for an HTTP status without one in the body.
func googleStatus(status int) string {
	switch status {
	case 400:
		return "INVALID_ARGUMENT"
	case 401:
		return "UNAUTHENTICATED"
	case 403:
		return "PERMISSION_DENIED"
	case 404:
		return "NOT_FOUND"
	case 409:
		return "CONFLICT"
	case 429:
		return "RESOURCE_EXHAUSTED"
	case 500:
		return "INTERNAL"
	case 503:
		return "UNAVAILABLE"
	}
	return "UNKNOWN"
}
