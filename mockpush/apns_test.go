package mockpush

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jwt "github.com/golang-jwt/jwt/v5"
	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/payload"
	"github.com/sideshow/apns2/token"
	"golang.org/x/net/http2"
)

func TestAPNsReasonsWithApns2(t *testing.T) {
	s := startServer(t, nil)
	r := s.Ready()
	client := apnsClient(t, r, apnsToken(t, r))
	silent := payload.NewPayload().ContentAvailable()
	base := func() *apns2.Notification {
		return &apns2.Notification{DeviceToken: hexToken(1), Topic: r.APNsTopic, Payload: silent,
			PushType: apns2.PushTypeBackground, Priority: apns2.PriorityLow, CollapseID: "campaign-1"}
	}
	tests := []struct {
		name   string
		edit   func(n *apns2.Notification)
		status int
		reason string
	}{
		// A silent push as the sender makes it is accepted.
		{"accepted background push", func(n *apns2.Notification) {}, 200, ""},
		// An alert push at priority 10 is accepted.
		{"accepted alert push", func(n *apns2.Notification) {
			n.PushType, n.Priority, n.Payload = apns2.PushTypeAlert, apns2.PriorityHigh, payload.NewPayload().Alert("hi")
		}, 200, ""},
		// A 160-character token (seen in the wild) is accepted.
		{"long token", func(n *apns2.Notification) { n.DeviceToken = strings.Repeat("ab", 80) }, 200, ""},
		// The registry's unregistered marker gives 410 with a timestamp.
		{"unregistered token", func(n *apns2.Notification) { n.DeviceToken = UnregisteredMarker + hexToken(2)[8:] }, 410, apns2.ReasonUnregistered},
		// Non-hex characters are a bad token.
		{"non-hex token", func(n *apns2.Notification) { n.DeviceToken = strings.Repeat("zz", 32) }, 400, apns2.ReasonBadDeviceToken},
		// A token shorter than 64 characters is a bad token.
		{"short token", func(n *apns2.Notification) { n.DeviceToken = "abcd" }, 400, apns2.ReasonBadDeviceToken},
		// An odd number of hex digits is a bad token.
		{"odd token", func(n *apns2.Notification) { n.DeviceToken = hexToken(1) + "a" }, 400, apns2.ReasonBadDeviceToken},
		// No token at all.
		{"missing token", func(n *apns2.Notification) { n.DeviceToken = "" }, 400, apns2.ReasonMissingDeviceToken},
		// apns-topic is required.
		{"missing topic", func(n *apns2.Notification) { n.Topic = "" }, 400, apns2.ReasonMissingTopic},
		// A topic of another app.
		{"wrong topic", func(n *apns2.Notification) { n.Topic = "com.example.other" }, 400, apns2.ReasonDeviceTokenNotForTopic},
		// VoIP pushes need the .voip topic.
		{"voip without voip topic", func(n *apns2.Notification) { n.PushType, n.Priority = apns2.PushTypeVOIP, 10 }, 400, apns2.ReasonDeviceTokenNotForTopic},
		// VoIP push on the .voip topic is accepted.
		{"voip topic", func(n *apns2.Notification) {
			n.PushType, n.Priority, n.Topic = apns2.PushTypeVOIP, 10, r.APNsTopic+".voip"
		}, 200, ""},
		// An unknown push type.
		{"bad push type", func(n *apns2.Notification) { n.PushType = "telepathy" }, 400, apns2.ReasonInvalidPushType},
		// Background pushes must use priority 5.
		{"background at priority 10", func(n *apns2.Notification) { n.Priority = 10 }, 400, apns2.ReasonBadPriority},
		// Priority must be 1, 5 or 10.
		{"priority 7", func(n *apns2.Notification) { n.Priority = 7 }, 400, apns2.ReasonBadPriority},
		// apns-collapse-id is at most 64 bytes.
		{"collapse id too long", func(n *apns2.Notification) { n.CollapseID = strings.Repeat("c", 65) }, 400, apns2.ReasonBadCollapseID},
		// 64 bytes is fine.
		{"collapse id of 64", func(n *apns2.Notification) { n.CollapseID = strings.Repeat("c", 64) }, 200, ""},
		// apns-id must be a UUID.
		{"bad apns-id", func(n *apns2.Notification) { n.ApnsID = "not-a-uuid" }, 400, apns2.ReasonBadMessageID},
		// A payload over 4096 bytes.
		{"payload too large", func(n *apns2.Notification) {
			n.Payload = []byte(`{"aps":{"content-available":1},"x":"` + strings.Repeat("x", 4100) + `"}`)
		}, 413, apns2.ReasonPayloadTooLarge},
		// Exactly 4096 bytes is accepted.
		{"payload of 4096", func(n *apns2.Notification) {
			n.Payload = []byte(`{"x":"` + strings.Repeat("x", 4096-8) + `"}`)
		}, 200, ""},
		// An expiration in the future is fine.
		{"expiration", func(n *apns2.Notification) { n.Expiration = time.Now().Add(time.Hour) }, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := base()
			tc.edit(n)
			res, err := client.Push(n)
			if err != nil {
				t.Fatalf("Push: %v", err)
			}
			if res.StatusCode != tc.status || res.Reason != tc.reason {
				t.Fatalf("got %d %q, want %d %q", res.StatusCode, res.Reason, tc.status, tc.reason)
			}
			if res.Sent() != (tc.status == 200) {
				t.Errorf("Sent() = %v", res.Sent())
			}
			if !isUUID(res.ApnsID) {
				t.Errorf("apns-id %q is not a UUID", res.ApnsID)
			}
			if tc.status == 410 && (res.Timestamp.IsZero() || res.Timestamp.After(time.Now())) {
				t.Errorf("410 timestamp %v", res.Timestamp)
			}
		})
	}
	// The apns-id the client chose is echoed back.
	n := base()
	n.ApnsID = "123e4567-e89b-12d3-a456-426614174000"
	res, err := client.Push(n)
	if err != nil || res.ApnsID != n.ApnsID {
		t.Fatalf("echo apns-id: %v %+v", err, res)
	}
}

// rawAPNs sends one request with the given method, path, headers and body over HTTP/2.
func rawAPNs(t *testing.T, hc *http.Client, r Ready, method, path string, header http.Header, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, r.APNsURL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v struct{ Reason string }
	if len(b) > 0 {
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("body %q: %v", b, err)
		}
	}
	return resp.StatusCode, v.Reason
}

func TestAPNsRawRequests(t *testing.T) {
	s := startServer(t, nil)
	r := s.Ready()
	tok := apnsToken(t, r)
	bearer := func() string { return "bearer " + tok.GenerateIfExpired() }
	hc := &http.Client{Transport: &http2.Transport{TLSClientConfig: tlsConfig(t, r)}}
	good := func() http.Header {
		return http.Header{"Authorization": {bearer()}, "Apns-Topic": {r.APNsTopic}}
	}
	tests := []struct {
		name   string
		method string
		path   string
		header http.Header
		body   string
		status int
		reason string
	}{
		// A minimal valid request (no push type, default priority 10) is accepted.
		{"minimal", "POST", "/3/device/" + hexToken(3), good(), `{"aps":{}}`, 200, ""},
		// An empty body.
		{"empty payload", "POST", "/3/device/" + hexToken(3), good(), "", 400, "PayloadEmpty"},
		// A body that is not JSON.
		{"not json", "POST", "/3/device/" + hexToken(3), good(), "hello", 400, "PayloadEmpty"},
		// A JSON array is not a payload dictionary.
		{"json array", "POST", "/3/device/" + hexToken(3), good(), "[1]", 400, "PayloadEmpty"},
		// Only POST is allowed.
		{"GET", "GET", "/3/device/" + hexToken(3), good(), "", 405, "MethodNotAllowed"},
		// Unknown paths.
		{"bad path", "POST", "/2/device/" + hexToken(3), good(), `{}`, 404, "BadPath"},
		// The same apns header twice.
		{"duplicate headers", "POST", "/3/device/" + hexToken(3),
			http.Header{"Authorization": {bearer()}, "Apns-Topic": {r.APNsTopic, r.APNsTopic}}, `{}`, 400, "DuplicateHeaders"},
		// A bad expiration.
		{"bad expiration", "POST", "/3/device/" + hexToken(3),
			http.Header{"Authorization": {bearer()}, "Apns-Topic": {r.APNsTopic}, "Apns-Expiration": {"soon"}}, `{}`, 400, "BadExpirationDate"},
		// No provider token.
		{"missing provider token", "POST", "/3/device/" + hexToken(3),
			http.Header{"Apns-Topic": {r.APNsTopic}}, `{}`, 403, "MissingProviderToken"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, reason := rawAPNs(t, hc, r, tc.method, tc.path, tc.header, []byte(tc.body))
			if status != tc.status || reason != tc.reason {
				t.Fatalf("got %d %q, want %d %q", status, reason, tc.status, tc.reason)
			}
		})
	}
}

// signAPNs makes an ES256 provider token with the given key, key ID, team and iat.
func signAPNs(t *testing.T, key *ecdsa.PrivateKey, kid, team string, iat time.Time) string {
	t.Helper()
	j := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": team, "iat": iat.Unix()})
	j.Header["kid"] = kid
	s, err := j.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAPNsProviderTokens(t *testing.T) {
	s := startServer(t, nil)
	r := s.Ready()
	key, err := token.AuthKeyFromFile(r.APNsKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	n := &apns2.Notification{DeviceToken: hexToken(9), Topic: r.APNsTopic, Payload: []byte(`{"aps":{}}`)}
	tests := []struct {
		name   string
		bearer string
		status int
		reason string
	}{
		// A token signed by the mock's key is accepted.
		{"valid", signAPNs(t, key, r.APNsKeyID, r.APNsTeamID, now), 200, ""},
		// Signed by an unknown key.
		{"wrong key", signAPNs(t, other, r.APNsKeyID, r.APNsTeamID, now), 403, apns2.ReasonInvalidProviderToken},
		// An unknown key ID.
		{"unknown kid", signAPNs(t, key, "NOSUCHKEY1", r.APNsTeamID, now), 403, apns2.ReasonInvalidProviderToken},
		// Another team.
		{"wrong team", signAPNs(t, key, r.APNsKeyID, "OTHERTEAM1", now), 403, apns2.ReasonInvalidProviderToken},
		// Garbage.
		{"garbage", "not.a.jwt", 403, apns2.ReasonInvalidProviderToken},
		// Issued more than an hour ago.
		{"expired", signAPNs(t, key, r.APNsKeyID, r.APNsTeamID, now.Add(-61*time.Minute)), 403, apns2.ReasonExpiredProviderToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A fresh client (so a fresh connection) per row; IssuedAt now keeps apns2 from
			// replacing the token.
			tok := apnsToken(t, r)
			tok.Bearer, tok.IssuedAt = tc.bearer, time.Now().Unix()
			res, err := apnsClient(t, r, tok).Push(n)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tc.status || res.Reason != tc.reason {
				t.Fatalf("got %d %q, want %d %q", res.StatusCode, res.Reason, tc.status, tc.reason)
			}
		})
	}

	t.Run("missing token with apns2", func(t *testing.T) {
		res, err := apnsClient(t, r, nil).Push(n)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 403 || res.Reason != apns2.ReasonMissingProviderToken {
			t.Fatalf("got %d %q", res.StatusCode, res.Reason)
		}
	})

	t.Run("too many token updates on one connection", func(t *testing.T) {
		tok := apnsToken(t, r)
		tok.Bearer, tok.IssuedAt = signAPNs(t, key, r.APNsKeyID, r.APNsTeamID, now), time.Now().Unix()
		c := apnsClient(t, r, tok)
		if res, err := c.Push(n); err != nil || !res.Sent() {
			t.Fatalf("first push: %v %+v", err, res)
		}
		// A second, different valid token on the same connection within 20 minutes.
		tok.Bearer = signAPNs(t, key, r.APNsKeyID, r.APNsTeamID, now.Add(-time.Minute))
		res, err := c.Push(n)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 429 || res.Reason != apns2.ReasonTooManyProviderTokenUpdates {
			t.Fatalf("got %d %q", res.StatusCode, res.Reason)
		}
	})

	t.Run("token ages past an hour on a connection", func(t *testing.T) {
		clock := time.Now()
		var offset atomic.Int64
		s2 := startServer(t, func(c *Config) { c.Now = func() time.Time { return clock.Add(time.Duration(offset.Load())) } })
		r2 := s2.Ready()
		c := apnsClient(t, r2, apnsToken(t, r2))
		n := &apns2.Notification{DeviceToken: hexToken(9), Topic: r2.APNsTopic, Payload: []byte(`{"aps":{}}`)}
		if res, err := c.Push(n); err != nil || !res.Sent() {
			t.Fatalf("first push: %v %+v", err, res)
		}
		offset.Store(int64(2 * time.Hour))
		res, err := c.Push(n)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 403 || res.Reason != apns2.ReasonExpiredProviderToken {
			t.Fatalf("got %d %q", res.StatusCode, res.Reason)
		}
	})

	t.Run("extra configured key", func(t *testing.T) {
		s3 := startServer(t, func(c *Config) {
			c.APNsKeys = []APNsKey{{KeyID: "EXTRAKEY01", TeamID: "EXTRATEAM1", Public: &other.PublicKey}}
		})
		r3 := s3.Ready()
		tok := &token.Token{AuthKey: other, KeyID: "EXTRAKEY01", TeamID: "EXTRATEAM1"}
		res, err := apnsClient(t, r3, tok).Push(&apns2.Notification{DeviceToken: hexToken(9), Topic: r3.APNsTopic, Payload: []byte(`{}`)})
		if err != nil || !res.Sent() {
			t.Fatalf("push: %v %+v", err, res)
		}
	})
}

// TestASCIIClasses compares the eight-at-a-time checks with the byte checks on every byte at
// every position.
func TestASCIIClasses(t *testing.T) {
	isHex := func(b byte) bool { return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F' }
	isFCMTokenChar := func(b byte) bool {
		return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '_' || b == '-' || b == ':' || b == '.'
	}
	classes := []struct {
		name  string
		class charClass
		one   func(byte) bool
		base  string
	}{
		{"hex", classHex, isHex, "0123456789abcdefABCD"},
		{"fcm token", classFCMToken, isFCMTokenChar, "aZ09_:.-zA9a_b:c.d-e"},
	}
	for _, cl := range classes {
		for c := 0; c < 256; c++ {
			for pos := 0; pos < len(cl.base); pos++ {
				b := []byte(cl.base)
				b[pos] = byte(c)
				want := true
				for _, x := range b {
					want = want && cl.one(x)
				}
				if got := allOf(string(b), cl.class); got != want {
					t.Fatalf("%s: byte %#x at %d: %v, want %v", cl.name, c, pos, got, want)
				}
			}
		}
	}
}
