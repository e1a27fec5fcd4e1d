package provider

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/salvopush/salvo/sender"
)

// APNs reasons, as Apple documents them for the "reason" of an error answer.
const (
	APNsBadCollapseID               = "BadCollapseId"
	APNsBadDeviceToken              = "BadDeviceToken"
	APNsBadExpirationDate           = "BadExpirationDate"
	APNsBadMessageID                = "BadMessageId"
	APNsBadPriority                 = "BadPriority"
	APNsBadTopic                    = "BadTopic"
	APNsDeviceTokenNotForTopic      = "DeviceTokenNotForTopic"
	APNsDuplicateHeaders            = "DuplicateHeaders"
	APNsIdleTimeout                 = "IdleTimeout"
	APNsInvalidPushType             = "InvalidPushType"
	APNsMissingDeviceToken          = "MissingDeviceToken"
	APNsMissingTopic                = "MissingTopic"
	APNsPayloadEmpty                = "PayloadEmpty"
	APNsTopicDisallowed             = "TopicDisallowed"
	APNsBadCertificate              = "BadCertificate"
	APNsBadCertificateEnvironment   = "BadCertificateEnvironment"
	APNsExpiredProviderToken        = "ExpiredProviderToken"
	APNsForbidden                   = "Forbidden"
	APNsInvalidProviderToken        = "InvalidProviderToken"
	APNsMissingProviderToken        = "MissingProviderToken"
	APNsBadPath                     = "BadPath"
	APNsMethodNotAllowed            = "MethodNotAllowed"
	APNsExpiredToken                = "ExpiredToken"
	APNsUnregistered                = "Unregistered"
	APNsPayloadTooLarge             = "PayloadTooLarge"
	APNsTooManyProviderTokenUpdates = "TooManyProviderTokenUpdates"
	APNsTooManyRequests             = "TooManyRequests"
	APNsInternalServerError         = "InternalServerError"
	APNsServiceUnavailable          = "ServiceUnavailable"
	APNsShutdown                    = "Shutdown"
)

// ClassifyAPNs turns one APNs answer into a Result. status and reason are the HTTP status
// and the reason from the JSON body, retryAfter the raw Retry-After header ("" if none), err
// the transport error when no answer came, at when the answer (or the error) arrived.
//
//   - 200: Accepted.
//   - Token rejections (APNsInvalidToken): Permanent, InvalidToken set. Prune the token.
//   - Rejections of the message or request (BadTopic, MissingTopic, TopicDisallowed,
//     PayloadTooLarge, PayloadEmpty, BadCollapseId, BadPriority, BadExpirationDate,
//     BadMessageId, InvalidPushType, DuplicateHeaders, MissingDeviceToken, BadPath,
//     MethodNotAllowed): Permanent; retrying the same request cannot succeed, but the token
//     is not at fault.
//   - Provider-token and credential problems (APNsAuthFailure: 403 ExpiredProviderToken,
//     InvalidProviderToken, MissingProviderToken, ..., 429 TooManyProviderTokenUpdates):
//     Transient, so no token is pruned for them; they need an operator when they persist,
//     since retries with a broken key fail the same way.
//   - 429 TooManyRequests, 500 InternalServerError, 503 ServiceUnavailable and Shutdown,
//     400 IdleTimeout: Transient, with RetryAfter from the header.
//   - Unknown reasons fall back on the status: 403, 408, 429 and 5xx are Transient, other
//     4xx Permanent, anything else Transient. An empty reason becomes "HTTP <status>".
//   - err != nil: Failed(err, at).
func ClassifyAPNs(status int, reason, retryAfter string, err error, at time.Time) sender.Result {
	if err != nil {
		return Failed(err, at)
	}
	r := sender.Result{Status: status, Reason: reason, At: at}
	if status == http.StatusOK {
		r.Outcome, r.Reason = sender.Accepted, ""
		return r
	}
	if r.Reason == "" {
		r.Reason = "HTTP " + strconv.Itoa(status)
	}
	r.Outcome = apnsOutcome(status, reason)
	r.InvalidToken = r.Outcome == sender.Permanent && APNsInvalidToken(r.Reason)
	if r.Outcome == sender.Transient {
		r.RetryAfter = ParseRetryAfter(retryAfter, at)
	}
	return r
}

// APNsInvalidToken reports whether reason says the device token itself is no good for the
// topic (Unregistered, ExpiredToken, BadDeviceToken, DeviceTokenNotForTopic), so that the
// registry should drop it. Other Permanent reasons are about the message, not the token.
func APNsInvalidToken(reason string) bool {
	switch reason {
	case APNsUnregistered, APNsExpiredToken, APNsBadDeviceToken, APNsDeviceTokenNotForTopic:
		return true
	}
	return false
}

// APNsAuthFailure reports whether reason says the provider token or credentials were
// refused (403 ExpiredProviderToken, InvalidProviderToken, MissingProviderToken,
// BadCertificate, BadCertificateEnvironment, Forbidden; 429 TooManyProviderTokenUpdates).
// ClassifyAPNs makes these Transient.
func APNsAuthFailure(reason string) bool {
	switch reason {
	case APNsExpiredProviderToken, APNsInvalidProviderToken, APNsMissingProviderToken,
		APNsBadCertificate, APNsBadCertificateEnvironment, APNsForbidden,
		APNsTooManyProviderTokenUpdates:
		return true
	}
	return false
}

// apnsOutcome classifies a non-200 answer by reason, then by status.
func apnsOutcome(status int, reason string) sender.Outcome {
	switch {
	case APNsInvalidToken(reason):
		return sender.Permanent
	case APNsAuthFailure(reason):
		return sender.Transient
	}
	switch reason {
	case APNsBadCollapseID, APNsBadExpirationDate, APNsBadMessageID, APNsBadPriority,
		APNsBadTopic, APNsDuplicateHeaders, APNsInvalidPushType, APNsMissingDeviceToken,
		APNsMissingTopic, APNsPayloadEmpty, APNsTopicDisallowed, APNsBadPath,
		APNsMethodNotAllowed, APNsPayloadTooLarge:
		return sender.Permanent
	case APNsIdleTimeout, APNsTooManyRequests, APNsInternalServerError,
		APNsServiceUnavailable, APNsShutdown:
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

// APNsReason decodes the reason of an APNs error body the way github.com/sideshow/apns2
// decodes its Response: the first JSON value, keys matched without regard to case, a
// "timestamp" that must be an integer, and an empty body allowed (reason ""). An error means
// the body could not be decoded (ClassifyAPNs then gives ReasonBadResponse).
func APNsReason(body []byte) (string, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return "", nil
	}
	var r apnsErrorBody
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&r); err != nil {
		return "", err
	}
	return r.Reason, nil
}

// apnsErrorBody has the fields, types and decoding of apns2's Response, so that a body
// either client refuses is refused by both.
type apnsErrorBody struct {
	StatusCode   int
	Reason       string
	ApnsID       string
	Timestamp    apnsTime
	ApnsUniqueID string
}

// apnsTime is the millisecond timestamp of a 410 answer; only its form is checked.
type apnsTime struct{}

// UnmarshalJSON accepts an integer (milliseconds since the epoch), as apns2 does, and
// refuses anything else, JSON null included.
func (*apnsTime) UnmarshalJSON(b []byte) error {
	_, err := strconv.ParseInt(string(b), 10, 64)
	return err
}
