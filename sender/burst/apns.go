package burst

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/provider"
)

// Defaults for the zero values of the configurations.
const (
	DefaultConnections  = 4
	DefaultTimeout      = 10 * time.Second
	DefaultPingInterval = 15 * time.Second
)

// Provider-token ages: the token is signed again once it is jwtRenewAge old, inside APNs's
// 20-60 minute window, and never younger than jwtMinAge (APNs answers 429
// TooManyProviderTokenUpdates to faster renewals).
const (
	jwtRenewAge = 50 * time.Minute
	jwtMinAge   = 20 * time.Minute
)

// maxConnections bounds Connections, to catch typos.
const maxConnections = 1024

// ErrClosed is returned by Send after Close.
var ErrClosed = errors.New("burst: transport closed")

// APNsConfig configures an APNs transport. Zero Connections, Timeout and PingInterval take
// the defaults.
type APNsConfig struct {
	// URL is the APNs endpoint (https://api.push.apple.com, the sandbox, or a mock's
	// https://host:port).
	URL string
	// KeyFile is the .p8 ES256 key for provider-token auth; KeyID its key ID, TeamID the team.
	KeyFile, KeyID, TeamID string
	// CAFile is a PEM file of extra trusted root certificates (a mock's CA); empty trusts the
	// system roots only.
	CAFile string
	// Connections is the number of HTTP/2 connections; default 4.
	Connections int
	// MaxStreams, when > 0, caps the streams in flight per connection below the server's
	// SETTINGS_MAX_CONCURRENT_STREAMS.
	MaxStreams int
	// Timeout bounds one push from request to answer, and each dial and TLS handshake;
	// default 10s.
	Timeout time.Duration
	// PingInterval is how often an HTTP/2 PING checks each connection; default 15s.
	PingInterval time.Duration
}

// Validate reports the first invalid field by name. It reads no files.
func (c APNsConfig) Validate() error {
	_, _, _, urlErr := hostPort(c.URL) // checked below
	switch {
	case c.URL == "":
		return errors.New("burst: apns config URL: required")
	case urlErr != nil || !provider.HTTPSHost(c.URL):
		return fmt.Errorf("burst: apns config URL: %q is not https://host[:port]", c.URL)
	case c.KeyFile == "":
		return errors.New("burst: apns config KeyFile: required (.p8 signing key)")
	case c.KeyID == "":
		return errors.New("burst: apns config KeyID: required")
	case c.TeamID == "":
		return errors.New("burst: apns config TeamID: required")
	}
	return validateCommon("apns", c.Connections, c.MaxStreams, c.Timeout, c.PingInterval)
}

// validateCommon checks the fields both configurations share.
func validateCommon(name string, conns, streams int, timeout, ping time.Duration) error {
	switch {
	case conns < 0 || conns > maxConnections:
		return fmt.Errorf("burst: %s config Connections: %d is out of 0..%d", name, conns, maxConnections)
	case streams < 0:
		return fmt.Errorf("burst: %s config MaxStreams: %d is negative", name, streams)
	case timeout < 0:
		return fmt.Errorf("burst: %s config Timeout: %v is negative", name, timeout)
	case ping < 0:
		return fmt.Errorf("burst: %s config PingInterval: %v is negative", name, ping)
	}
	return nil
}

// defaults fills the zero common fields.
func defaults(conns *int, timeout, ping *time.Duration) {
	if *conns == 0 {
		*conns = DefaultConnections
	}
	if *timeout == 0 {
		*timeout = DefaultTimeout
	}
	if *ping == 0 {
		*ping = DefaultPingInterval
	}
}

// APNs sends APNs notifications with provider-token auth over a pool of HTTP/2 connections
// driven at the frame level. It is safe for concurrent use. Its results are those of the
// stock transport sender/apns for every answer (provider.ClassifyAPNs).
type APNs struct {
	pool      *pool
	signer    *jwtSigner
	authority string
	cache     atomic.Pointer[apnsRendered]
}

var _ sender.Transport = (*APNs)(nil)

// apnsRendered is the last message rendered, for the next Send of the same message.
type apnsRendered struct {
	msg sender.APNsMessage
	gen uint64
	req *request
}

// NewAPNs checks cfg, loads the key and the CA file, signs the first provider token and
// starts the connections, which dial at once. The caller must Close the transport.
func NewAPNs(cfg APNsConfig) (*APNs, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	defaults(&cfg.Connections, &cfg.Timeout, &cfg.PingInterval)
	key, err := loadP8(cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("burst: apns key file %s: %w", cfg.KeyFile, err)
	}
	signer := &jwtSigner{key: key, keyID: cfg.KeyID, teamID: cfg.TeamID}
	if _, _, err := signer.current(time.Now()); err != nil {
		return nil, err
	}
	addr, authority, serverName, _ := hostPort(cfg.URL)
	tlsCfg, err := provider.TLSConfig(cfg.CAFile, "h2")
	if err != nil {
		return nil, fmt.Errorf("burst: apns: %w", err)
	}
	tlsCfg.ServerName = serverName
	a := &APNs{signer: signer, authority: authority}
	a.pool = newPool(poolConfig{addr: addr, authority: authority, tls: tlsCfg, conns: cfg.Connections,
		timeout: cfg.Timeout, ping: cfg.PingInterval, maxStreams: cfg.MaxStreams}, apnsProvider{signer})
	return a, nil
}

// Send pushes every notification of b once and fills b.Results; see sender.Transport. It
// returns when every notification has its Result. When ctx ends part way, the notifications
// without an answer get a Transient result with Reason "canceled" and Send returns nil.
// Send returns an error, having pushed nothing, for a malformed batch, a done ctx or a
// closed transport (ErrClosed).
func (a *APNs) Send(ctx context.Context, b *sender.Batch) error {
	switch {
	case b.Platform != sender.PlatformIOS:
		return fmt.Errorf("burst: apns send: batch platform is %v, want ios: %w", b.Platform, sender.ErrCannotSend)
	case b.APNs == nil:
		return fmt.Errorf("burst: apns send: batch has no APNs message: %w", sender.ErrCannotSend)
	case len(b.Results) != len(b.Tokens):
		return fmt.Errorf("burst: apns send: %d results for %d tokens: %w", len(b.Results), len(b.Tokens), sender.ErrCannotSend)
	}
	req, err := a.render(b.APNs, time.Now())
	if err != nil {
		return err
	}
	return sendErr("apns", a.pool.send(ctx, req, b.Tokens, b.Results))
}

// sendErr wraps a pool error for Send.
func sendErr(name string, err error) error {
	switch {
	case errors.Is(err, errClosed):
		return ErrClosed
	case err != nil:
		return fmt.Errorf("burst: %s send: %w", name, err)
	}
	return nil
}

// Close waits for the Sends in progress, then closes the connections. It is idempotent.
func (a *APNs) Close() error {
	a.pool.close()
	return nil
}

// render returns the request template of m with the current provider token.
func (a *APNs) render(m *sender.APNsMessage, now time.Time) (*request, error) {
	tok, gen, err := a.signer.current(now)
	if err != nil {
		return nil, err
	}
	if r := a.cache.Load(); r != nil && r.gen == gen && sameAPNs(&r.msg, m) {
		return r.req, nil
	}
	exp := "0"
	if !m.Expiration.IsZero() {
		exp = strconv.FormatInt(m.Expiration.Unix(), 10)
	}
	fields := []field{
		{static: staticAuthority, name: ":authority", value: a.authority},
		{static: staticContentType, name: "content-type", value: "application/json; charset=utf-8"},
		{name: "apns-topic", value: m.Topic},
		{name: "apns-expiration", value: exp},
		{static: staticAuthorization, name: "authorization", value: "bearer " + tok},
	}
	if m.PushType != "" {
		fields = append(fields, field{name: "apns-push-type", value: m.PushType})
	}
	if m.Priority > 0 {
		fields = append(fields, field{name: "apns-priority", value: strconv.Itoa(m.Priority)})
	}
	if m.CollapseID != "" {
		fields = append(fields, field{name: "apns-collapse-id", value: m.CollapseID})
	}
	req := &request{hdr: newHeaderTemplate(fields), pathPrefix: "/3/device/", body: m.Payload}
	r := &apnsRendered{msg: *m, gen: gen, req: req}
	r.msg.Payload = bytes.Clone(m.Payload)
	req.body = r.msg.Payload
	a.cache.Store(r)
	return req, nil
}

// sameAPNs reports whether two messages render the same.
func sameAPNs(a, b *sender.APNsMessage) bool {
	return a.Topic == b.Topic && a.PushType == b.PushType && a.Priority == b.Priority &&
		a.Expiration.Equal(b.Expiration) && a.CollapseID == b.CollapseID && bytes.Equal(a.Payload, b.Payload)
}

// apnsProvider classifies APNs answers as sender/apns does (provider.ClassifyAPNs) and
// renews the provider token after an ExpiredProviderToken answer.
type apnsProvider struct{ signer *jwtSigner }

// result implements classifier.
func (p apnsProvider) result(status int, body, retryAfter []byte, at time.Time) sender.Result {
	if status == 200 {
		return provider.ClassifyAPNs(200, "", "", nil, at)
	}
	reason, err := provider.APNsReason(body)
	if err != nil {
		return provider.Failed(err, at)
	}
	if reason == provider.APNsExpiredProviderToken {
		p.signer.expired(at)
	}
	return provider.ClassifyAPNs(status, reason, string(retryAfter), nil, at)
}

// jwtSigner keeps the APNs provider token: signed once, renewed when jwtRenewAge old, or
// sooner after an ExpiredProviderToken answer but never before jwtMinAge.
type jwtSigner struct {
	key           *ecdsa.PrivateKey
	keyID, teamID string

	mu  sync.Mutex
	tok string
	iat time.Time
	gen uint64
}

// current returns the token to use now and its generation.
func (s *jwtSigner) current(now time.Time) (string, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != "" && now.Sub(s.iat) < jwtRenewAge {
		return s.tok, s.gen, nil
	}
	tok, err := signES256(s.key, s.keyID, s.teamID, now)
	if err != nil {
		return "", 0, fmt.Errorf("burst: apns: sign provider token: %w", err)
	}
	s.tok, s.iat = tok, now
	s.gen++
	return s.tok, s.gen, nil
}

// expired makes the next call to current sign anew, if the token is old enough.
func (s *jwtSigner) expired(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.iat) >= jwtMinAge {
		s.tok = ""
	}
}

// signES256 makes an APNs provider token (JWT, ES256, kid + iss + iat).
func signES256(key *ecdsa.PrivateKey, keyID, teamID string, now time.Time) (string, error) {
	hdr, _ := json.Marshal(map[string]string{"alg": "ES256", "kid": keyID})
	claims, _ := json.Marshal(map[string]any{"iss": teamID, "iat": now.Unix()})
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(hdr) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	r, sv, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		return "", err
	}
	size := (key.Curve.Params().BitSize + 7) / 8
	sig := make([]byte, 2*size)
	r.FillBytes(sig[:size])
	sv.FillBytes(sig[size:])
	return signing + "." + enc.EncodeToString(sig), nil
}

// loadP8 reads an ECDSA private key from a PEM (PKCS#8 or SEC 1) file.
func loadP8(path string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(data)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	if k, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
		if ek, ok := k.(*ecdsa.PrivateKey); ok {
			return ek, nil
		}
		return nil, errors.New("not an ECDSA key")
	}
	return x509.ParseECPrivateKey(blk.Bytes)
}
