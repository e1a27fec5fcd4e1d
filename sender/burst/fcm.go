package burst

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/provider"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

// FCMEndpoint is Google's FCM HTTP v1 base URL, the default of FCMConfig.Endpoint.
const FCMEndpoint = "https://fcm.googleapis.com"

// accessTokenEarly is how long before its expiry an access token is replaced.
const accessTokenEarly = 5 * time.Minute

// FCMConfig configures an FCM transport. Zero Connections, Timeout and PingInterval take the
// defaults.
type FCMConfig struct {
	// Endpoint is the base URL of the FCM HTTP v1 API without "/v1"; empty means FCMEndpoint.
	Endpoint string
	// ServiceAccountFile is the service account JSON key; access tokens come from its
	// token_uri through the OAuth2 JWT-bearer grant.
	ServiceAccountFile string
	// ProjectID is the Firebase project; empty takes the service account's project_id.
	ProjectID string
	// CAFile is a PEM file of extra trusted root certificates, for the FCM endpoint and the
	// token endpoint; empty trusts the system roots only.
	CAFile string
	// Connections is the number of HTTP/2 connections; default 4.
	Connections int
	// MaxStreams, when > 0, caps the streams in flight per connection.
	MaxStreams int
	// Timeout bounds one send, each access-token fetch, each dial and handshake; default 10s.
	Timeout time.Duration
	// PingInterval is how often an HTTP/2 PING checks each connection; default 15s.
	PingInterval time.Duration
	// ValidateOnly sends every message as a dry run (FCM validate_only: checked by the
	// service, answered, never delivered).
	ValidateOnly bool
}

// Validate reports the first invalid field by name. It reads no files.
func (c FCMConfig) Validate() error {
	if c.Endpoint != "" && !provider.HTTPSHost(c.Endpoint) {
		return fmt.Errorf("burst: fcm config Endpoint: %q is not https://host[:port] (the transport adds /v1)", c.Endpoint)
	}
	if c.ServiceAccountFile == "" {
		return errors.New("burst: fcm config ServiceAccountFile: required (service account JSON key)")
	}
	return validateCommon("fcm", c.Connections, c.MaxStreams, c.Timeout, c.PingInterval)
}

// FCM sends FCM HTTP v1 messages, one request per message, over a pool of HTTP/2
// connections driven at the frame level. It is safe for concurrent use. Its results are
// those of the stock transport sender/fcm for every answer.
type FCM struct {
	pool      *pool
	project   string
	authority string
	tokens    oauth2.TokenSource
	cache     atomic.Pointer[fcmRendered]
	bodyStart string // the request body up to the token
}

var _ sender.Transport = (*FCM)(nil)

// fcmRendered is the last message rendered, for the next Send of the same message.
type fcmRendered struct {
	msg    *sender.FCMMessage
	access string
	req    *request
}

// NewFCM checks cfg, reads the service account and the CA file, fetches a first access token
// with ctx (so that bad credentials fail here) and starts the connections. ctx bounds only
// NewFCM; the caller must Close the transport.
func NewFCM(ctx context.Context, cfg FCMConfig) (*FCM, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	defaults(&cfg.Connections, &cfg.Timeout, &cfg.PingInterval)
	if cfg.Endpoint == "" {
		cfg.Endpoint = FCMEndpoint
	}
	key, err := os.ReadFile(cfg.ServiceAccountFile)
	if err != nil {
		return nil, fmt.Errorf("burst: fcm service account: %w", err)
	}
	jwtCfg, err := google.JWTConfigFromJSON(key, "https://www.googleapis.com/auth/cloud-platform",
		"https://www.googleapis.com/auth/firebase.messaging")
	if err != nil {
		return nil, fmt.Errorf("burst: fcm service account %s: %w", cfg.ServiceAccountFile, err)
	}
	project := cfg.ProjectID
	if project == "" {
		var f struct {
			ProjectID string `json:"project_id"`
		}
		if err := json.Unmarshal(key, &f); err != nil || f.ProjectID == "" {
			return nil, fmt.Errorf("burst: fcm config ProjectID: empty, and %s has no project_id", cfg.ServiceAccountFile)
		}
		project = f.ProjectID
	}
	addr, authority, serverName, _ := hostPort(strings.TrimSuffix(cfg.Endpoint, "/"))
	tlsCfg, err := provider.TLSConfig(cfg.CAFile, "h2")
	if err != nil {
		return nil, fmt.Errorf("burst: fcm: %w", err)
	}
	tlsCfg.ServerName = serverName
	tokTLS := tlsCfg.Clone()
	tokTLS.NextProtos, tokTLS.ServerName = nil, ""
	hc := &http.Client{Timeout: cfg.Timeout, Transport: &http.Transport{TLSClientConfig: tokTLS, ForceAttemptHTTP2: true}}
	first, err := jwtCfg.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, hc)).Token()
	if err != nil {
		return nil, fmt.Errorf("burst: fcm fetch access token: %w", err)
	}
	renew := jwtCfg.TokenSource(context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, hc))
	f := &FCM{project: project, authority: authority,
		tokens: oauth2.ReuseTokenSourceWithExpiry(first, renew, accessTokenEarly), bodyStart: `{"message":{"token":"`}
	if cfg.ValidateOnly {
		f.bodyStart = `{"validate_only":true,"message":{"token":"`
	}
	f.pool = newPool(poolConfig{addr: addr, authority: authority, tls: tlsCfg, conns: cfg.Connections,
		timeout: cfg.Timeout, ping: cfg.PingInterval, maxStreams: cfg.MaxStreams}, fcmProvider{})
	return f, nil
}

// Send pushes every message of b once and fills b.Results; see sender.Transport and
// APNs.Send. An access token that cannot be had gives every message a Transient result
// (Reason "access token" when the token endpoint refused).
func (f *FCM) Send(ctx context.Context, b *sender.Batch) error {
	switch {
	case b.Platform != sender.PlatformAndroid:
		return fmt.Errorf("burst: fcm send: batch platform is %v, want android: %w", b.Platform, sender.ErrCannotSend)
	case b.FCM == nil:
		return fmt.Errorf("burst: fcm send: batch has no FCM message: %w", sender.ErrCannotSend)
	case b.FCM.Project != "" && b.FCM.Project != f.project:
		return fmt.Errorf("burst: fcm send: batch is for project %q, transport for %q: %w", b.FCM.Project, f.project, sender.ErrCannotSend)
	case len(b.Results) != len(b.Tokens):
		return fmt.Errorf("burst: fcm send: %d results for %d tokens: %w", len(b.Results), len(b.Tokens), sender.ErrCannotSend)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("burst: fcm send: %w", err)
	}
	tok, err := f.tokens.Token()
	if err != nil {
		now := time.Now()
		r := sender.Result{Outcome: sender.Transient, Reason: transportReason(err), At: now}
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			retryAfter := ""
			if re.Response != nil {
				retryAfter = re.Response.Header.Get("Retry-After")
			}
			r = provider.FCMResult(sender.Transient, provider.FCMAccessToken, 0, retryAfter, now)
		}
		for i := range b.Results {
			b.Results[i] = r
		}
		return nil
	}
	return sendErr("fcm", f.pool.send(ctx, f.render(b.FCM, tok.AccessToken), b.Tokens, b.Results))
}

// Close waits for the Sends in progress, then closes the connections. It is idempotent.
func (f *FCM) Close() error {
	f.pool.close()
	return nil
}

// render returns the request template of m with the access token.
func (f *FCM) render(m *sender.FCMMessage, access string) *request {
	if r := f.cache.Load(); r != nil && r.msg == m && r.access == access {
		return r.req
	}
	fields := []field{
		{static: staticAuthority, name: ":authority", value: f.authority},
		{static: staticPath, name: ":path", value: "/v1/projects/" + f.project + "/messages:send"},
		{static: staticContentType, name: "content-type", value: "application/json"},
		{static: staticAuthorization, name: "authorization", value: "Bearer " + access},
	}
	req := &request{hdr: newHeaderTemplate(fields), bodySplice: true,
		body: []byte(f.bodyStart)}
	rest, invalid := fcmBodyRest(m)
	switch {
	case invalid:
		req.bad = func([]byte) (sender.Result, bool) {
			return sender.Result{Outcome: sender.Permanent, Reason: provider.FCMInvalidMessage, At: time.Now()}, true
		}
	default:
		req.bad = fcmBadToken
	}
	req.bodySuffix = rest
	f.cache.Store(&fcmRendered{msg: m, access: access, req: req})
	return req
}

// fcmBodyRest renders the JSON after the token, as the Firebase Admin SDK would send the
// message, and reports a message the SDK refuses before sending (bad priority, negative TTL).
func fcmBodyRest(m *sender.FCMMessage) ([]byte, bool) {
	if m.Priority != "" && m.Priority != "normal" && m.Priority != "high" || m.TTL < 0 {
		return nil, true
	}
	type notification struct {
		Title string `json:"title,omitempty"`
		Body  string `json:"body,omitempty"`
	}
	type android struct {
		CollapseKey string `json:"collapse_key,omitempty"`
		Priority    string `json:"priority,omitempty"`
		TTL         string `json:"ttl,omitempty"`
	}
	var msg struct {
		Data         map[string]string `json:"data,omitempty"`
		Notification *notification     `json:"notification,omitempty"`
		Android      android           `json:"android"`
	}
	msg.Data = m.Data
	if m.Title != "" || m.Body != "" {
		msg.Notification = &notification{Title: m.Title, Body: m.Body}
	}
	msg.Android = android{CollapseKey: m.CollapseKey, Priority: m.Priority}
	if m.TTL > 0 {
		msg.Android.TTL = durationString(m.TTL)
	}
	b, _ := json.Marshal(msg) // strings and a map of strings: cannot fail
	return append([]byte(`",`), append(b[1:], '}')...), false
}

// durationString writes a TTL as FCM's protobuf duration ("3s", "1.500000000s").
func durationString(d time.Duration) string {
	s := int64(d / time.Second)
	ns := int64(d % time.Second)
	if ns > 0 {
		return fmt.Sprintf("%d.%09ds", s, ns)
	}
	return strconv.FormatInt(s, 10) + "s"
}

// fcmBadToken refuses tokens that cannot be spliced into JSON as they are: an empty one (the
// SDK refuses it before sending) and one with characters JSON would escape (no registration
// token has them; the service would answer INVALID_ARGUMENT).
func fcmBadToken(tok []byte) (sender.Result, bool) {
	if len(tok) == 0 {
		return sender.Result{Outcome: sender.Permanent, Reason: provider.FCMInvalidMessage, At: time.Now()}, true
	}
	if jsonEscapes(tok) {
		return sender.Result{Outcome: sender.Permanent, Status: http.StatusBadRequest, Reason: "INVALID_ARGUMENT", At: time.Now()}, true
	}
	return sender.Result{}, false
}

// jsonEscapes reports whether tok holds a byte JSON would escape or that is not printable
// ASCII: below 0x20, '"', '\\', 0x7f or above. It tests eight bytes at a time (a token is
// checked for every FCM request): for a word x, (x - 0x01..01*n) &^ x & 0x80..80 is not zero
// exactly when some byte of x is below n (n <= 0x80), and a byte equal to b is a zero byte
// of x ^ 0x01..01*b.
func jsonEscapes(tok []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for len(tok) >= 8 {
		x := binary.LittleEndian.Uint64(tok)
		q, b, d := x^(ones*'"'), x^(ones*'\\'), x^(ones*0x7f)
		if (x|(x-ones*0x20)&^x|(q-ones)&^q|(b-ones)&^b|(d-ones)&^d)&highs != 0 {
			return true
		}
		tok = tok[8:]
	}
	for _, c := range tok {
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			return true
		}
	}
	return false
}

// fcmProvider classifies FCM answers as sender/fcm does with the Firebase Admin SDK
// (provider.ClassifyFCM).
type fcmProvider struct{}

// result implements classifier.
func (fcmProvider) result(status int, body, retryAfter []byte, at time.Time) sender.Result {
	return provider.ClassifyFCM(status, body, string(retryAfter), at)
}
