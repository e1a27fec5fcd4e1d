package mockpush

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"
	"golang.org/x/net/http2"
)

// startServer starts a mock with the default configuration changed by edit.
func startServer(t *testing.T, edit func(*Config)) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	if edit != nil {
		edit(&cfg)
	}
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// tlsConfig trusts the mock's CA.
func tlsConfig(t *testing.T, r Ready) *tls.Config {
	t.Helper()
	pool, err := r.CertPool()
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: pool}
}

// apnsToken returns an apns2 provider token for the mock's generated key.
func apnsToken(t *testing.T, r Ready) *token.Token {
	t.Helper()
	key, err := token.AuthKeyFromFile(r.APNsKeyFile)
	if err != nil {
		t.Fatalf("AuthKeyFromFile: %v", err)
	}
	return &token.Token{AuthKey: key, KeyID: r.APNsKeyID, TeamID: r.APNsTeamID}
}

// apnsClient returns an apns2 token client pointed at the mock.
func apnsClient(t *testing.T, r Ready, tok *token.Token) *apns2.Client {
	t.Helper()
	var c *apns2.Client
	if tok == nil {
		c = apns2.NewClient(tls.Certificate{})
	} else {
		c = apns2.NewTokenClient(tok)
	}
	tr := &http2.Transport{TLSClientConfig: tlsConfig(t, r)}
	c.HTTPClient = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	c.Host = r.APNsURL
	t.Cleanup(tr.CloseIdleConnections)
	return c
}

// hexToken returns a valid 64-hex-character device token numbered i.
func hexToken(i int) string {
	const digits = "0123456789abcdef"
	b := []byte(strings.Repeat("a", 64))
	for j := 63; i > 0 && j >= 0; j-- {
		b[j] = digits[i%16]
		i /= 16
	}
	return string(b)
}
