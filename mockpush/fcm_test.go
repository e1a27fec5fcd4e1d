package mockpush

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/option"
)

// fcmToken returns a registration-token-shaped string numbered i.
func fcmToken(i int) string {
	return "fcm" + hexToken(i) + strings.Repeat("_x", 44)
}

// oauthClient returns an HTTP client that trusts the mock and authenticates with the
// generated service account through the mock's token endpoint, as golang.org/x/oauth2/google
// does against Google.
func oauthClient(t *testing.T, r Ready, h2 bool) *http.Client {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: tlsConfig(t, r), ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	t.Cleanup(tr.CloseIdleConnections)
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: tr})
	sa, err := os.ReadFile(r.FCMServiceAccountFile)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := google.CredentialsFromJSON(ctx, sa, "https://www.googleapis.com/auth/firebase.messaging")
	if err != nil {
		t.Fatalf("CredentialsFromJSON: %v", err)
	}
	return oauth2.NewClient(ctx, creds.TokenSource)
}

// fcmClient returns a firebase admin messaging client whose requests reach the mock.
func fcmClient(t *testing.T, r Ready, project string, hc *http.Client) *messaging.Client {
	t.Helper()
	ctx := context.Background()
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: project},
		option.WithHTTPClient(hc), option.WithEndpoint(r.FCMURL+"/v1"))
	if err != nil {
		t.Fatalf("NewApp: %v", err)
	}
	c, err := app.Messaging(ctx)
	if err != nil {
		t.Fatalf("Messaging: %v", err)
	}
	return c
}

func TestFCMWithFirebaseAdmin(t *testing.T) {
	s := startServer(t, func(c *Config) { c.FCMQuotaPerMinute = 1000 })
	r := s.Ready()
	hc := oauthClient(t, r, true)
	client := fcmClient(t, r, r.FCMProjectID, hc)
	ctx := context.Background()
	msg := func(token string) *messaging.Message {
		return &messaging.Message{Token: token, Data: map[string]string{"campaign_id": "c1"},
			Android: &messaging.AndroidConfig{CollapseKey: "c1", Priority: "high"}}
	}
	tests := []struct {
		name  string
		m     *messaging.Message
		check func(error) bool // nil means success
	}{
		// A data-only message, as the sender makes it, is accepted.
		{"accepted", msg(fcmToken(1)), nil},
		// A topic message is accepted.
		{"topic", &messaging.Message{Topic: "news", Data: map[string]string{"a": "b"}}, nil},
		// The registry's unregistered marker gives 404 UNREGISTERED.
		{"unregistered", msg(UnregisteredMarker + fcmToken(2)), messaging.IsUnregistered},
		// A token with characters no registration token has.
		{"malformed token", msg("not a token!"), messaging.IsInvalidArgument},
		// Data over 4096 bytes.
		{"too big", &messaging.Message{Token: fcmToken(3), Data: map[string]string{"x": strings.Repeat("x", 4100)}}, messaging.IsInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name, err := client.Send(ctx, tc.m)
			if tc.check == nil {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				if !strings.HasPrefix(name, "projects/"+r.FCMProjectID+"/messages/") {
					t.Fatalf("name %q", name)
				}
				return
			}
			if err == nil || !tc.check(err) {
				t.Fatalf("Send error %v not classified", err)
			}
		})
	}

	t.Run("dry run is answered and not counted", func(t *testing.T) {
		before := s.Stats().FCM
		name, err := client.SendDryRun(ctx, msg(fcmToken(5)))
		if err != nil || !strings.HasSuffix(name, "/fake_message_id") {
			t.Fatalf("SendDryRun: %q %v", name, err)
		}
		after := s.Stats().FCM
		if after.Received != before.Received {
			t.Fatalf("received %d -> %d", before.Received, after.Received)
		}
		if after.ValidateOnly != before.ValidateOnly+1 {
			t.Fatalf("validate_only %d -> %d, want one more", before.ValidateOnly, after.ValidateOnly)
		}
	})

	t.Run("wrong project", func(t *testing.T) {
		_, err := fcmClient(t, r, "other-project", hc).Send(ctx, msg(fcmToken(1)))
		if !messaging.IsSenderIDMismatch(err) {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("no access token", func(t *testing.T) {
		plain := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig(t, r), ForceAttemptHTTP2: true}}
		_, err := fcmClient(t, r, r.FCMProjectID, plain).Send(ctx, msg(fcmToken(1)))
		if !errorutils.IsUnauthenticated(err) {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("injected errors", func(t *testing.T) {
		tests := []struct {
			name  string
			fault ErrorFault
			check func(error) bool
		}{
			// 503 with a Retry-After beyond the SDK's 2-minute cap, so it does not retry.
			{"unavailable", ErrorFault{Reason: "UNAVAILABLE", Rate: 1, RetryAfterSeconds: 300}, messaging.IsUnavailable},
			// 500.
			{"internal", ErrorFault{Reason: "INTERNAL", Rate: 1}, messaging.IsInternal},
			// 429.
			{"quota", ErrorFault{Reason: "QUOTA_EXCEEDED", Rate: 1, RetryAfterSeconds: 1}, messaging.IsQuotaExceeded},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if err := s.SetFaults(Faults{FCM: PlatformFaults{Errors: []ErrorFault{tc.fault}}}); err != nil {
					t.Fatal(err)
				}
				defer s.SetFaults(Faults{})
				_, err := client.Send(ctx, msg(fcmToken(1)))
				if err == nil || !tc.check(err) {
					t.Fatalf("got %v", err)
				}
			})
		}
	})

	t.Run("stats", func(t *testing.T) {
		s.Reset()
		for i := 0; i < 3; i++ {
			if _, err := client.Send(ctx, msg(fcmToken(7))); err != nil {
				t.Fatal(err)
			}
		}
		client.Send(ctx, msg(UnregisteredMarker+fcmToken(7)))
		st := s.Stats().FCM
		want := PlatformStats{Received: 4, Accepted: 3, Unique: 1, Duplicates: 2, Rejected: map[string]int64{"UNREGISTERED": 1}}
		if !equalStats(st, want) {
			t.Fatalf("got %+v, want %+v", st, want)
		}
	})
}

func equalStats(a, b PlatformStats) bool {
	if a.Received != b.Received || a.Accepted != b.Accepted || a.Unique != b.Unique || a.Duplicates != b.Duplicates || len(a.Rejected) != len(b.Rejected) {
		return false
	}
	for k, v := range b.Rejected {
		if a.Rejected[k] != v {
			return false
		}
	}
	return true
}

func TestFCMQuota(t *testing.T) {
	s := startServer(t, func(c *Config) { c.FCMQuotaPerMinute = 3 })
	r := s.Ready()
	client := fcmClient(t, r, r.FCMProjectID, oauthClient(t, r, true))
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := client.Send(ctx, &messaging.Message{Token: fcmToken(i)}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	_, err := client.Send(ctx, &messaging.Message{Token: fcmToken(9)})
	if !messaging.IsQuotaExceeded(err) {
		t.Fatalf("got %v", err)
	}
	if got := s.Stats().FCM.Rejected["QUOTA_EXCEEDED"]; got != 1 {
		t.Fatalf("QUOTA_EXCEEDED = %d", got)
	}
}

// rawFCM posts body to the mock's send endpoint with hc and returns the status, the FCM error
// code and the Retry-After header.
func rawFCM(t *testing.T, hc *http.Client, r Ready, body string) (status int, code, proto string) {
	t.Helper()
	resp, err := hc.Post(r.FCMURL+"/v1/projects/"+r.FCMProjectID+"/messages:send", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e fcmSendError
	json.Unmarshal(b, &e)
	for _, d := range e.Error.Details {
		if d.Type == fcmErrorType {
			code = d.ErrorCode
		}
	}
	return resp.StatusCode, code, resp.Proto
}

type fcmSendError struct {
	Error struct {
		Code    int
		Status  string
		Details []struct {
			Type      string `json:"@type"`
			ErrorCode string `json:"errorCode"`
		}
	}
}

func TestFCMRawBodies(t *testing.T) {
	s := startServer(t, nil)
	r := s.Ready()
	tok := fcmToken(1)
	tests := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		// A valid body.
		{"valid", `{"message":{"token":"` + tok + `","data":{"k":"v"}}}`, 200, ""},
		// No target.
		{"no target", `{"message":{"data":{"k":"v"}}}`, 400, "INVALID_ARGUMENT"},
		// Token and topic together.
		{"several targets", `{"message":{"token":"` + tok + `","topic":"t"}}`, 400, "INVALID_ARGUMENT"},
		// A number in data.
		{"non-string data", `{"message":{"token":"` + tok + `","data":{"k":1}}}`, 400, "INVALID_ARGUMENT"},
		// A nested object in android.data.
		{"non-string android data", `{"message":{"token":"` + tok + `","android":{"data":{"k":{}}}}}`, 400, "INVALID_ARGUMENT"},
		// Not JSON.
		{"not json", `{"message":`, 400, "INVALID_ARGUMENT"},
		// No message.
		{"no message", `{}`, 400, "INVALID_ARGUMENT"},
	}
	for _, proto := range []struct {
		name string
		h2   bool
		want string
	}{{"h2", true, "HTTP/2.0"}, {"http1", false, "HTTP/1.1"}} {
		hc := oauthClient(t, r, proto.h2)
		for _, tc := range tests {
			t.Run(proto.name+"/"+tc.name, func(t *testing.T) {
				status, code, got := rawFCM(t, hc, r, tc.body)
				if status != tc.status || code != tc.code {
					t.Fatalf("got %d %q, want %d %q", status, code, tc.status, tc.code)
				}
				if got != proto.want {
					t.Fatalf("protocol %s, want %s", got, proto.want)
				}
			})
		}
	}
}

func TestOAuthTokenEndpoint(t *testing.T) {
	s := startServer(t, nil)
	r := s.Ready()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig(t, r)}}
	tests := []struct {
		name   string
		form   url.Values
		status int
		err    string
	}{
		// Another grant type.
		{"client credentials", url.Values{"grant_type": {"client_credentials"}}, 400, "unsupported_grant_type"},
		// A JWT-bearer grant with a garbage assertion.
		{"bad assertion", url.Values{"grant_type": {jwtBearerGrant}, "assertion": {"a.b.c"}}, 400, "invalid_grant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := hc.PostForm(r.OAuthTokenURL, tc.form)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var v struct{ Error string }
			b, _ := io.ReadAll(resp.Body)
			json.Unmarshal(b, &v)
			if resp.StatusCode != tc.status || v.Error != tc.err {
				t.Fatalf("got %d %s", resp.StatusCode, b)
			}
		})
	}
	// A bogus bearer token is refused with 401.
	req, _ := http.NewRequest("POST", r.FCMURL+"/v1/projects/"+r.FCMProjectID+"/messages:send", bytes.NewReader([]byte(`{}`)))
	req.Header.Set("Authorization", "Bearer ya29.bogus")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("bogus token: %d", resp.StatusCode)
	}
}

// TestFCMScan checks which bodies the fast FCM parser decides and that parseFCMSend answers
// as the encoding/json reference for each.
func TestFCMScan(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		body string
		fast bool // the fast parser decides it
	}{
		// The shape the burst transport and the firebase SDK send.
		{`{"message":{"token":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000001","data":{"campaign_id":"c"},"android":{"collapse_key":"k","priority":"high"}}}`, true},
		// A dry run to a topic with a notification of every JSON kind.
		{`{"validate_only":true,"message":{"topic":"t","notification":{"title":"x","n":[1,-2.5e3,true,false,null,{}]}}}`, true},
		// Whitespace everywhere.
		{` { "validate_only" : false , "message" : { "condition" : "'a' in topics" , "android" : { } } } `, true},
		// A key that is a known field in another case: left to the reference.
		{`{"message":{"token":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000001","Token":"x"}}`, false},
		// A repeated field: left to the reference.
		{`{"message":{"token":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000001"},"message":{"topic":"t"}}`, false},
		// An escape in the token: left to the reference.
		{`{"message":{"token":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\u0030000001"}}`, false},
		// A null data value: rejected by the reference.
		{`{"message":{"token":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000001","data":{"a":null}}}`, false},
		// Two targets: rejected.
		{`{"message":{"token":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000001","topic":"t"}}`, false},
		// A token that is too short: rejected.
		{`{"message":{"token":"short"}}`, false},
		// Trailing data: rejected.
		{`{"message":{"topic":"t"}} {}`, false},
		// Not an object: rejected.
		{`null`, false},
	} {
		body := []byte(c.body)
		_, ok := parseFCMSendFast(body)
		if ok != c.fast {
			t.Errorf("%s: fast parser decided %v, want %v", c.body, ok, c.fast)
		}
		gm, gmsg := parseFCMSend(body, len(body))
		rm, rmsg := parseFCMSendJSON(body)
		if gm != rm || gmsg != rmsg {
			t.Errorf("%s: got %+v %q, reference %+v %q", c.body, gm, gmsg, rm, rmsg)
		}
	}
}

// TestQuotaWindowSums checks the cached quota window against a plain sum of the buckets
// over a clock that mostly moves forward, sometimes back a second, and jumps.
func TestQuotaWindowSums(t *testing.T) {
	t.Parallel()
	var q quotaWindow
	var ref struct{ counts, secs [60]int64 }
	rng := rand.New(rand.NewPCG(1, 2))
	sec := int64(1_000_000)
	const limit = 500
	for n := range 200000 {
		switch r := rng.IntN(1000); {
		case r < 30:
			sec++
		case r < 33:
			sec--
		case r < 34:
			sec += int64(rng.IntN(120))
		case r < 35:
			q.reset()
			ref.counts, ref.secs = [60]int64{}, [60]int64{}
		}
		// The reference: the window summed on every request.
		var total int64
		oldest := int64(-1)
		for i := range ref.counts {
			if ref.secs[i] > sec-60 && ref.counts[i] > 0 {
				total += ref.counts[i]
				if oldest < 0 || ref.secs[i] < oldest {
					oldest = ref.secs[i]
				}
			}
		}
		wantOK, wantRetry := total < limit, 0
		if !wantOK {
			wantRetry = int(max(1, oldest+60-sec))
		} else {
			i := sec % 60
			if ref.secs[i] != sec {
				ref.secs[i], ref.counts[i] = sec, 0
			}
			ref.counts[i]++
		}
		ok, retry := q.allow(time.Unix(sec, 0), limit)
		if ok != wantOK || retry != wantRetry {
			t.Fatalf("request %d at %d: got %v %d, want %v %d", n, sec, ok, retry, wantOK, wantRetry)
		}
	}
}
