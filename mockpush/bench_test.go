package mockpush

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"testing"
	"time"

	jwt "github.com/golang-jwt/jwt/v5"

	"golang.org/x/net/http2/hpack"

	"github.com/salvopush/salvo/loadgen/h2flood"
)

// BenchmarkAPNsFlood floods the mock APNs from the same process with the lean client; one op
// is one accepted request. Whole-process CPU figures come from `salvo load` (docs/mockpush.md).
func BenchmarkAPNsFlood(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Dir = b.TempDir()
	s, err := Start(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := s.Ready()
	pool, err := r.CertPool()
	if err != nil {
		b.Fatal(err)
	}
	key := s.creds.apnsKey
	bearer := signES256ForBench(b, key, r.APNsKeyID, r.APNsTeamID)
	b.ReportAllocs()
	b.ResetTimer()
	res, err := h2flood.Run(context.Background(), h2flood.Config{
		URL: r.APNsURL, TLS: &tls.Config{RootCAs: pool}, Conns: 4, Streams: 500,
		Duration: time.Minute, MaxRequests: int64(b.N), PathPrefix: "/3/device/",
		Header: [][2]string{{"authorization", "bearer " + bearer}, {"apns-topic", r.APNsTopic},
			{"apns-push-type", "background"}, {"apns-priority", "5"}, {"apns-collapse-id", "bench"}},
		Body: []byte(`{"aps":{"content-available":1}}`),
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if res.Status[200] != int64(b.N) {
		b.Fatalf("accepted %d of %d: %+v", res.Status[200], b.N, res)
	}
}

func signES256ForBench(b *testing.B, key *ecdsa.PrivateKey, kid, team string) string {
	j := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": team, "iat": time.Now().Unix()})
	j.Header["kid"] = kid
	s, err := j.SignedString(key)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkAcceptedPath runs the handlers of both mocks on one accepted request each, with
// no network: what an accepted request costs once its frames are decoded.
func BenchmarkAcceptedPath(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Dir = b.TempDir()
	cfg.FCMQuotaPerMinute = 1 << 40
	s, err := Start(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := s.Ready()
	const token = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000000000000010000000000000001"
	b.Run("apns", func(b *testing.B) {
		c := newH2Conn(s.apnsSrv, nil)
		bearer := signES256ForBench(b, s.creds.apnsKey, r.APNsKeyID, r.APNsTeamID)
		req := request{method: "POST", path: "/3/device/" + token, body: []byte(`{"aps":{"content-available":1}}`),
			fields: []hpack.HeaderField{hfield("authorization", "bearer "+bearer), hfield("apns-topic", r.APNsTopic),
				hfield("apns-push-type", "background"), hfield("apns-priority", "5"), hfield("apns-collapse-id", "bench")}}
		req.bodyLen = len(req.body)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			req.at = time.Now()
			c.resp.reset()
			s.apnsH.serve(c, &req, &c.resp)
			if c.resp.status != 200 {
				b.Fatalf("status %d: %s", c.resp.status, c.resp.body)
			}
		}
	})
	b.Run("fcm", func(b *testing.B) {
		access := "ya29.mock.bench"
		s.fcmH.tokens.add(access, time.Now().Add(time.Hour))
		body := []byte(`{"message":{"token":"` + token + `","data":{"campaign_id":"c"},"android":{"collapse_key":"bench","priority":"high"}}}`)
		req := request{method: "POST", path: "/v1/projects/" + r.FCMProjectID + "/messages:send", body: body, bodyLen: len(body),
			fields: []hpack.HeaderField{hfield("content-type", "application/json"), hfield("authorization", "Bearer "+access)}}
		var p peerState
		var w response
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			req.at = time.Now()
			w.reset()
			s.fcmH.handle(&p, &req, &w)
			if w.status != 200 {
				b.Fatalf("status %d: %s", w.status, w.body)
			}
		}
	})
}
