package provider_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/salvopush/salvo/sender/provider"
)

func TestTLSConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		caFile  string
		alpn    []string
		wantErr bool
		wantCA  bool
	}{
		// no CA file: system roots only (RootCAs nil), no ALPN
		{name: "system roots", caFile: ""},
		// a CA file adds its certificate; ALPN as given
		{name: "extra CA and h2", caFile: ca, alpn: []string{"h2"}, wantCA: true},
		// a missing file is an error
		{name: "missing", caFile: filepath.Join(dir, "nope.pem"), wantErr: true},
		// a file without a PEM certificate is an error
		{name: "junk", caFile: junk, wantErr: true},
	}
	for _, tc := range tests {
		cfg, err := provider.TLSConfig(tc.caFile, tc.alpn...)
		if tc.wantErr {
			if err == nil {
				t.Errorf("%s: no error", tc.name)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if cfg.MinVersion < 0x0303 || !slices.Equal(cfg.NextProtos, tc.alpn) || (cfg.RootCAs != nil) != tc.wantCA {
			t.Errorf("%s: MinVersion %x, NextProtos %q, RootCAs set %v", tc.name, cfg.MinVersion, cfg.NextProtos, cfg.RootCAs != nil)
		}
	}
}

func TestHTTPSHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url  string
		want bool
	}{
		{"https://api.push.apple.com", true}, // a provider host
		{"https://127.0.0.1:8443/", true},    // a mock, trailing slash allowed
		{"http://127.0.0.1:8443", false},     // not TLS
		{"https://host/v1", false},           // a path
		{"https://user@host", false},         // credentials
		{"https://host?x=1", false},          // a query
		{"https://", false},                  // no host
		{"api.push.apple.com", false},        // no scheme
	}
	for _, tc := range tests {
		if got := provider.HTTPSHost(tc.url); got != tc.want {
			t.Errorf("HTTPSHost(%q) = %v, want %v", tc.url, got, tc.want)
		}
	}
}
