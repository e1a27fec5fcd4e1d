package provider_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/provider"
)

// fcmError renders an FCM HTTP v1 error body with a Google status and, when code is not
// empty, the FcmError detail that carries the FCM error code.
func fcmError(google, code string) []byte {
	details := ""
	if code != "" {
		details = `,"details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"` + code + `"}]`
	}
	return []byte(`{"error":{"code":0,"message":"m","status":"` + google + `"` + details + `}}`)
}

func TestClassifyFCM(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		body       []byte
		retryAfter string
		want       sender.Result // At is always at
	}{
		// Any 2xx is accepted and reported as 200.
		{name: "200", status: 200, body: []byte(`{"name":"projects/p/messages/1"}`), want: sender.Result{Outcome: ok, Status: 200}},
		// The FCM error code wins over the Google status; token rejections condemn the token.
		{name: "404 UNREGISTERED", status: 404, body: fcmError("NOT_FOUND", "UNREGISTERED"), want: sender.Result{Outcome: perm, Status: 404, Reason: "UNREGISTERED", InvalidToken: true}},
		{name: "403 SENDER_ID_MISMATCH", status: 403, body: fcmError("PERMISSION_DENIED", "SENDER_ID_MISMATCH"), want: sender.Result{Outcome: perm, Status: 403, Reason: "SENDER_ID_MISMATCH", InvalidToken: true}},
		// INVALID_ARGUMENT is about the message or the token: permanent, but no pruning.
		{name: "400 INVALID_ARGUMENT", status: 400, body: fcmError("INVALID_ARGUMENT", "INVALID_ARGUMENT"), want: sender.Result{Outcome: perm, Status: 400, Reason: "INVALID_ARGUMENT"}},
		// Quota: transient, Retry-After honoured.
		{name: "429 QUOTA_EXCEEDED", status: 429, body: fcmError("RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"), retryAfter: "3", want: sender.Result{Outcome: tran, Status: 429, Reason: "QUOTA_EXCEEDED", RetryAfter: 3 * time.Second}},
		// A 503 is UNAVAILABLE whatever its body says, with its Retry-After.
		{name: "503 any body", status: 503, body: []byte(`not json`), retryAfter: "2", want: sender.Result{Outcome: tran, Status: 503, Reason: "UNAVAILABLE", RetryAfter: 2 * time.Second}},
		{name: "500 INTERNAL", status: 500, body: fcmError("INTERNAL", "INTERNAL"), want: sender.Result{Outcome: tran, Status: 500, Reason: "INTERNAL"}},
		// APNS_AUTH_ERROR is reported as THIRD_PARTY_AUTH_ERROR, a credentials problem.
		{name: "401 APNS_AUTH_ERROR", status: 401, body: fcmError("UNAUTHENTICATED", "APNS_AUTH_ERROR"), want: sender.Result{Outcome: tran, Status: 401, Reason: "THIRD_PARTY_AUTH_ERROR"}},
		// Without an FCM code, the Google status decides.
		{name: "401 UNAUTHENTICATED", status: 401, body: fcmError("UNAUTHENTICATED", ""), want: sender.Result{Outcome: tran, Status: 401, Reason: "UNAUTHENTICATED"}},
		{name: "400 FAILED_PRECONDITION", status: 400, body: fcmError("FAILED_PRECONDITION", ""), want: sender.Result{Outcome: perm, Status: 400, Reason: "FAILED_PRECONDITION"}},
		// Without a body, the Google status of the HTTP status decides.
		{name: "404 empty body", status: 404, want: sender.Result{Outcome: perm, Status: 404, Reason: "NOT_FOUND"}},
		{name: "429 empty body", status: 429, retryAfter: "1", want: sender.Result{Outcome: tran, Status: 429, Reason: "RESOURCE_EXHAUSTED", RetryAfter: time.Second}},
		// An unknown status falls back on the HTTP status class.
		{name: "409 CONFLICT", status: 409, want: sender.Result{Outcome: perm, Status: 409, Reason: "HTTP 409"}},
		{name: "502", status: 502, body: []byte(`<html>`), want: sender.Result{Outcome: tran, Status: 502, Reason: "HTTP 502"}},
		{name: "408", status: 408, want: sender.Result{Outcome: tran, Status: 408, Reason: "HTTP 408"}},
		// A Retry-After on a permanent rejection is ignored.
		{name: "permanent ignores retry-after", status: 404, body: fcmError("NOT_FOUND", "UNREGISTERED"), retryAfter: "9", want: sender.Result{Outcome: perm, Status: 404, Reason: "UNREGISTERED", InvalidToken: true}},
	}
	for _, tc := range tests {
		got := provider.ClassifyFCM(tc.status, tc.body, tc.retryAfter, at)
		tc.want.At = at
		if got != tc.want {
			t.Errorf("%s: ClassifyFCM = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// FuzzClassifyFCM feeds arbitrary answers: the result is always classified, and a 2xx is
// always accepted.
func FuzzClassifyFCM(f *testing.F) {
	f.Add(404, fcmError("NOT_FOUND", "UNREGISTERED"), "")
	f.Add(503, []byte(`{}`), "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add(200, []byte(nil), "1")
	epoch := time.Unix(0, 0)
	f.Fuzz(func(t *testing.T, status int, body []byte, retryAfter string) {
		r := provider.ClassifyFCM(status, body, retryAfter, epoch)
		switch {
		case status >= 200 && status < 300 && r.Outcome != sender.Accepted:
			t.Fatalf("status %d: %+v, want Accepted", status, r)
		case r.Outcome != sender.Accepted && r.Reason == "":
			t.Fatalf("status %d: %+v has no reason", status, r)
		case r.RetryAfter < 0 || r.RetryAfter > 24*time.Hour:
			t.Fatalf("retry after %v out of range", r.RetryAfter)
		case r.InvalidToken && r.Outcome != sender.Permanent:
			t.Fatalf("%+v: invalid token but not permanent", r)
		}
		if status == http.StatusServiceUnavailable && r.Reason != "UNAVAILABLE" {
			t.Fatalf("503: %+v", r)
		}
	})
}
