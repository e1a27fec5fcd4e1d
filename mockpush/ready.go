package mockpush

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Ready is the content of the ready file `salvo mockpush --ready-file` writes: everything a
// client needs to reach and authenticate against the mocks. Paths are absolute.
type Ready struct {
	APNsURL               string `json:"apns_url"`
	FCMURL                string `json:"fcm_url"`
	OAuthTokenURL         string `json:"oauth_token_url"`
	ControlURL            string `json:"control_url"`
	CAFile                string `json:"ca_file"`
	APNsKeyID             string `json:"apns_key_id"`
	APNsTeamID            string `json:"apns_team_id"`
	APNsKeyFile           string `json:"apns_key_file"`
	APNsTopic             string `json:"apns_topic"`
	FCMProjectID          string `json:"fcm_project_id"`
	FCMServiceAccountFile string `json:"fcm_service_account_file"`
}

// ReadReadyFile reads a ready file written by `salvo mockpush`.
func ReadReadyFile(path string) (Ready, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Ready{}, fmt.Errorf("mockpush: ready file: %w", err)
	}
	var r Ready
	if err := json.Unmarshal(b, &r); err != nil {
		return Ready{}, fmt.Errorf("mockpush: ready file %s: %w", path, err)
	}
	if r.APNsURL == "" || r.FCMURL == "" || r.ControlURL == "" || r.CAFile == "" {
		return Ready{}, fmt.Errorf("mockpush: ready file %s: missing URLs or ca_file", path)
	}
	return r, nil
}

// WriteReadyFile writes r as JSON to path atomically (a temporary file renamed into place),
// so a reader polling for path never sees a partial file.
func WriteReadyFile(path string, r Ready) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("mockpush: ready file: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("mockpush: ready file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("mockpush: ready file: %w", err)
	}
	return nil
}

// CertPool returns a pool trusting the mock's CA (the ready file's ca_file).
func (r Ready) CertPool() (*x509.CertPool, error) {
	b, err := os.ReadFile(r.CAFile)
	if err != nil {
		return nil, fmt.Errorf("mockpush: ca file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("mockpush: ca file %s: no certificate", r.CAFile)
	}
	return pool, nil
}

// credentials are the keys and certificates one Server generated.
type credentials struct {
	serverCert tls.Certificate
	apnsKeyID  string
	apnsKey    *ecdsa.PrivateKey
	saKeyID    string
	saEmail    string
	saKey      *rsa.PrivateKey

	caFile, apnsKeyFile, saFile string
}

// randomID returns n characters from the upper-case letters and digits.
func randomID(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	for i := range b {
		v, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b[i] = alphabet[v.Int64()]
	}
	return string(b)
}

// generateCredentials creates the CA, the server certificate, the APNs key and the FCM
// service-account key, and writes the CA, the .p8 key and the service-account JSON into dir.
// tokenURL is written as the service account's token_uri.
func generateCredentials(dir, project, tokenURL string, now time.Time) (*credentials, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("mockpush: ca key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Salvo mockpush CA", Organization: []string{"Salvo"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("mockpush: ca certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("mockpush: ca certificate: %w", err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("mockpush: server key: %w", err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost", Organization: []string{"Salvo"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("mockpush: server certificate: %w", err)
	}
	c := &credentials{
		serverCert: tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: leafKey},
		apnsKeyID:  randomID(10),
		saKeyID:    fmt.Sprintf("%x", randomID(20)),
		saEmail:    "salvo-mockpush@" + project + ".iam.gserviceaccount.com",
	}
	if c.apnsKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, fmt.Errorf("mockpush: apns key: %w", err)
	}
	if c.saKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, fmt.Errorf("mockpush: service-account key: %w", err)
	}
	apnsDER, err := x509.MarshalPKCS8PrivateKey(c.apnsKey)
	if err != nil {
		return nil, fmt.Errorf("mockpush: apns key: %w", err)
	}
	saDER, err := x509.MarshalPKCS8PrivateKey(c.saKey)
	if err != nil {
		return nil, fmt.Errorf("mockpush: service-account key: %w", err)
	}
	sa := map[string]string{
		"type":                        "service_account",
		"project_id":                  project,
		"private_key_id":              c.saKeyID,
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: saDER})),
		"client_email":                c.saEmail,
		"client_id":                   "100000000000000000001",
		"auth_uri":                    tokenURL,
		"token_uri":                   tokenURL,
		"auth_provider_x509_cert_url": "",
		"client_x509_cert_url":        "",
		"universe_domain":             "googleapis.com",
	}
	saJSON, err := json.MarshalIndent(sa, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("mockpush: service account: %w", err)
	}
	c.caFile = filepath.Join(dir, "ca.pem")
	c.apnsKeyFile = filepath.Join(dir, "AuthKey_"+c.apnsKeyID+".p8")
	c.saFile = filepath.Join(dir, "service-account.json")
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{c.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644},
		{c.apnsKeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: apnsDER}), 0o600},
		{c.saFile, saJSON, 0o600},
	} {
		if err := os.WriteFile(f.path, f.data, f.mode); err != nil {
			return nil, fmt.Errorf("mockpush: write credentials: %w", err)
		}
	}
	return c, nil
}
