package provider_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/provider"
	"github.com/sideshow/apns2"
)

// Shorthands of the classification tables.
const (
	ok   = sender.Accepted
	perm = sender.Permanent
	tran = sender.Transient
)

// at is when every answer of the tables arrived.
var at = time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)

func TestClassifyAPNs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		reason     string
		retryAfter string
		err        error
		want       sender.Result // At is always at
	}{
		// Accepted: the reason, if any, is dropped.
		{name: "200", status: 200, want: sender.Result{Outcome: ok, Status: 200}},
		// Token rejections are permanent and condemn the token.
		{name: "410 Unregistered", status: 410, reason: "Unregistered", want: sender.Result{Outcome: perm, Status: 410, Reason: "Unregistered", InvalidToken: true}},
		{name: "410 ExpiredToken", status: 410, reason: "ExpiredToken", want: sender.Result{Outcome: perm, Status: 410, Reason: "ExpiredToken", InvalidToken: true}},
		{name: "400 BadDeviceToken", status: 400, reason: "BadDeviceToken", want: sender.Result{Outcome: perm, Status: 400, Reason: "BadDeviceToken", InvalidToken: true}},
		{name: "400 DeviceTokenNotForTopic", status: 400, reason: "DeviceTokenNotForTopic", want: sender.Result{Outcome: perm, Status: 400, Reason: "DeviceTokenNotForTopic", InvalidToken: true}},
		// Message rejections are permanent too; a Retry-After on them is ignored.
		{name: "400 TopicDisallowed", status: 400, reason: "TopicDisallowed", retryAfter: "5", want: sender.Result{Outcome: perm, Status: 400, Reason: "TopicDisallowed"}},
		{name: "413 PayloadTooLarge", status: 413, reason: "PayloadTooLarge", want: sender.Result{Outcome: perm, Status: 413, Reason: "PayloadTooLarge"}},
		{name: "400 BadTopic", status: 400, reason: "BadTopic", want: sender.Result{Outcome: perm, Status: 400, Reason: "BadTopic"}},
		{name: "400 MissingTopic", status: 400, reason: "MissingTopic", want: sender.Result{Outcome: perm, Status: 400, Reason: "MissingTopic"}},
		{name: "400 BadCollapseId", status: 400, reason: "BadCollapseId", want: sender.Result{Outcome: perm, Status: 400, Reason: "BadCollapseId"}},
		{name: "400 BadPriority", status: 400, reason: "BadPriority", want: sender.Result{Outcome: perm, Status: 400, Reason: "BadPriority"}},
		{name: "400 PayloadEmpty", status: 400, reason: "PayloadEmpty", want: sender.Result{Outcome: perm, Status: 400, Reason: "PayloadEmpty"}},
		{name: "404 BadPath", status: 404, reason: "BadPath", want: sender.Result{Outcome: perm, Status: 404, Reason: "BadPath"}},
		// Throttling and server trouble are transient, with Retry-After in seconds or as a date.
		{name: "429 TooManyRequests", status: 429, reason: "TooManyRequests", retryAfter: "7", want: sender.Result{Outcome: tran, Status: 429, Reason: "TooManyRequests", RetryAfter: 7 * time.Second}},
		{name: "500", status: 500, reason: "InternalServerError", want: sender.Result{Outcome: tran, Status: 500, Reason: "InternalServerError"}},
		{name: "503 date", status: 503, reason: "ServiceUnavailable", retryAfter: at.Add(90 * time.Second).Format(http.TimeFormat),
			want: sender.Result{Outcome: tran, Status: 503, Reason: "ServiceUnavailable", RetryAfter: 90 * time.Second}},
		{name: "503 Shutdown", status: 503, reason: "Shutdown", want: sender.Result{Outcome: tran, Status: 503, Reason: "Shutdown"}},
		// A connection idle too long: retry on a fresh one.
		{name: "400 IdleTimeout", status: 400, reason: "IdleTimeout", want: sender.Result{Outcome: tran, Status: 400, Reason: "IdleTimeout"}},
		// Provider-token problems are transient (no token is pruned) and flagged by APNsAuthFailure.
		{name: "403 ExpiredProviderToken", status: 403, reason: "ExpiredProviderToken", want: sender.Result{Outcome: tran, Status: 403, Reason: "ExpiredProviderToken"}},
		{name: "403 InvalidProviderToken", status: 403, reason: "InvalidProviderToken", want: sender.Result{Outcome: tran, Status: 403, Reason: "InvalidProviderToken"}},
		{name: "403 MissingProviderToken", status: 403, reason: "MissingProviderToken", want: sender.Result{Outcome: tran, Status: 403, Reason: "MissingProviderToken"}},
		{name: "429 TooManyProviderTokenUpdates", status: 429, reason: "TooManyProviderTokenUpdates", retryAfter: "60",
			want: sender.Result{Outcome: tran, Status: 429, Reason: "TooManyProviderTokenUpdates", RetryAfter: time.Minute}},
		// Unknown reasons fall back on the status; an empty one is named after it.
		{name: "unknown 4xx", status: 400, reason: "SomethingNew", want: sender.Result{Outcome: perm, Status: 400, Reason: "SomethingNew"}},
		{name: "unknown 5xx", status: 502, want: sender.Result{Outcome: tran, Status: 502, Reason: "HTTP 502"}},
		{name: "unknown 429", status: 429, retryAfter: "1", want: sender.Result{Outcome: tran, Status: 429, Reason: "HTTP 429", RetryAfter: time.Second}},
		// Malformed, negative and past Retry-After values are ignored; huge ones are capped.
		{name: "bad retry-after", status: 503, reason: "ServiceUnavailable", retryAfter: "soon", want: sender.Result{Outcome: tran, Status: 503, Reason: "ServiceUnavailable"}},
		{name: "negative retry-after", status: 503, reason: "ServiceUnavailable", retryAfter: "-3", want: sender.Result{Outcome: tran, Status: 503, Reason: "ServiceUnavailable"}},
		{name: "past retry-after", status: 503, reason: "ServiceUnavailable", retryAfter: at.Add(-time.Hour).Format(http.TimeFormat), want: sender.Result{Outcome: tran, Status: 503, Reason: "ServiceUnavailable"}},
		{name: "huge retry-after", status: 503, reason: "ServiceUnavailable", retryAfter: "999999999", want: sender.Result{Outcome: tran, Status: 503, Reason: "ServiceUnavailable", RetryAfter: 24 * time.Hour}},
		// Transport errors: transient, no status, a short cause.
		{name: "canceled", err: fmt.Errorf("post: %w", context.Canceled), want: sender.Result{Outcome: tran, Reason: provider.ReasonCanceled}},
		{name: "deadline", err: &url.Error{Op: "Post", URL: "u", Err: context.DeadlineExceeded}, want: sender.Result{Outcome: tran, Reason: provider.ReasonTimeout}},
		{name: "net timeout", err: &net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}, want: sender.Result{Outcome: tran, Reason: provider.ReasonTimeout}},
		{name: "reset", err: &url.Error{Op: "Post", URL: "u", Err: &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}}, want: sender.Result{Outcome: tran, Reason: provider.ReasonConnectionReset}},
		{name: "refused", err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, want: sender.Result{Outcome: tran, Reason: provider.ReasonConnectionRefused}},
		{name: "goaway", err: errors.New(`http2: server sent GOAWAY and closed the connection; LastStreamID=1, ErrCode=NO_ERROR, debug=""`), want: sender.Result{Outcome: tran, Reason: provider.ReasonGoAway}},
		{name: "stream reset", err: errors.New("stream error: stream ID 3; REFUSED_STREAM"), want: sender.Result{Outcome: tran, Reason: provider.ReasonStreamReset}},
		{name: "eof", err: &url.Error{Op: "Post", URL: "u", Err: io.EOF}, want: sender.Result{Outcome: tran, Reason: provider.ReasonConnectionClosed}},
		{name: "connection lost", err: errors.New("http2: client connection lost"), want: sender.Result{Outcome: tran, Reason: provider.ReasonConnectionClosed}},
		{name: "unknown CA", err: &url.Error{Op: "Post", URL: "u", Err: x509.UnknownAuthorityError{}}, want: sender.Result{Outcome: tran, Reason: provider.ReasonTLS}},
		{name: "bad json", err: &json.SyntaxError{Offset: 1}, want: sender.Result{Outcome: tran, Reason: provider.ReasonBadResponse}},
		{name: "other", err: errors.New("something odd"), want: sender.Result{Outcome: tran, Reason: provider.ReasonTransport}},
	}
	for _, tc := range tests {
		got := provider.ClassifyAPNs(tc.status, tc.reason, tc.retryAfter, tc.err, at)
		tc.want.At = at
		if got != tc.want {
			t.Errorf("%s: ClassifyAPNs = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// TestReasonKinds checks which reasons condemn the token and which blame the credentials,
// for both providers.
func TestReasonKinds(t *testing.T) {
	t.Parallel()
	apns := [2]func(string) bool{provider.APNsInvalidToken, provider.APNsAuthFailure}
	fcm := [2]func(string) bool{provider.FCMInvalidToken, provider.FCMAuthFailure}
	tests := []struct {
		kinds          [2]func(string) bool // invalid token, auth failure
		reason         string
		invalid, authn bool
	}{
		{apns, "Unregistered", true, false},                // gone from the device
		{apns, "ExpiredToken", true, false},                // expired on the device
		{apns, "BadDeviceToken", true, false},              // not a token
		{apns, "DeviceTokenNotForTopic", true, false},      // another app's token
		{apns, "PayloadTooLarge", false, false},            // the message, not the token
		{apns, "TopicDisallowed", false, false},            // the message, not the token
		{apns, "ExpiredProviderToken", false, true},        // our JWT
		{apns, "InvalidProviderToken", false, true},        // our JWT
		{apns, "TooManyProviderTokenUpdates", false, true}, // our JWT renewals
		{apns, "TooManyRequests", false, false},            // throttled
		{apns, "", false, false},                           // no reason
		{fcm, "UNREGISTERED", true, false},                 // gone from the device
		{fcm, "SENDER_ID_MISMATCH", true, false},           // token of another project
		{fcm, "INVALID_ARGUMENT", false, false},            // message or token: not pruned
		{fcm, "UNAUTHENTICATED", false, true},              // bad access token
		{fcm, "PERMISSION_DENIED", false, true},            // service account without the right
		{fcm, "THIRD_PARTY_AUTH_ERROR", false, true},       // APNs credentials in Firebase
		{fcm, provider.FCMAccessToken, false, true},        // the token endpoint refused
		{fcm, "QUOTA_EXCEEDED", false, false},              // throttled
		{fcm, provider.FCMInvalidMessage, false, false},    // refused before sending
	}
	for _, tc := range tests {
		if got := tc.kinds[0](tc.reason); got != tc.invalid {
			t.Errorf("invalid token (%q) = %v, want %v", tc.reason, got, tc.invalid)
		}
		if got := tc.kinds[1](tc.reason); got != tc.authn {
			t.Errorf("auth failure (%q) = %v, want %v", tc.reason, got, tc.authn)
		}
	}
}

// apnsBodies are error bodies APNs (or a broken server) may send.
var apnsBodies = []string{
	``,
	`   `,
	`{"reason":"BadDeviceToken"}`,
	`{"reason":"Unregistered","timestamp":1700000000000}`,
	`{"REASON":"Shutdown"}`,
	`{"reason":"Unregistered","timestamp":"1700000000000"}`,
	`{"reason":"Unregistered","timestamp":null}`,
	`{"reason":"Unregistered","timestamp":1.5}`,
	`{"reason":42}`,
	`{"reason":"TooManyRequests"} trailing`,
	`[]`,
	`not json`,
	`{"statuscode":"x"}`,
}

// TestAPNsReason checks that APNsReason decodes error bodies exactly as apns2's client does:
// the same reason, and an error for the same bodies.
func TestAPNsReason(t *testing.T) {
	t.Parallel()
	for _, body := range apnsBodies {
		checkAPNsReason(t, []byte(body))
	}
}

// FuzzAPNsReason compares APNsReason with apns2's decoding on arbitrary bodies.
func FuzzAPNsReason(f *testing.F) {
	for _, b := range apnsBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(checkAPNsReason)
}

func checkAPNsReason(t *testing.T, body []byte) {
	got, err := provider.APNsReason(body)
	want, wantErr := apns2Reason(body)
	if got != want || (err == nil) != (wantErr == nil) {
		t.Errorf("APNsReason(%q) = %q, %v; apns2 decodes %q, %v", body, got, err, want, wantErr)
	}
}

// apns2Reason decodes body as apns2's Client.Push does (an empty body leaves the reason
// empty).
func apns2Reason(body []byte) (string, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return "", nil
	}
	var r apns2.Response
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&r); err != nil {
		return "", err
	}
	return r.Reason, nil
}
