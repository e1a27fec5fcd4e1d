package mockpush

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"testing"
	"time"

	jwt "github.com/golang-jwt/jwt/v5"

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
