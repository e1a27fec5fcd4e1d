package provider

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
)

// TLSConfig returns the TLS settings for a provider endpoint: TLS 1.2 or later, the system
// roots plus the certificates in caFile (a mock's CA; empty: the system roots only), and
// the ALPN protocols given, if any (the frame-level transports offer only "h2"). The caller
// may edit the result; each call returns a new one.
func TLSConfig(caFile string, alpn ...string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: alpn}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate", caFile)
	}
	cfg.RootCAs = roots
	return cfg, nil
}

// HTTPSHost reports whether s is an https URL with a host and no path, query or user: the
// form of a provider endpoint in a transport's configuration.
func HTTPSHost(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != "" && u.User == nil &&
		(u.Path == "" || u.Path == "/") && u.RawQuery == "" && u.Fragment == ""
}
