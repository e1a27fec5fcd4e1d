package apns

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/provider"
	"github.com/salvopush/salvo/sender/pushpool"
	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"
)

// Provider endpoints for Config.URL.
const (
	ProductionURL = apns2.HostProduction
	SandboxURL    = apns2.HostDevelopment
)

// Defaults for the zero values of Config.
const (
	DefaultConnections = 4
	DefaultConcurrency = 256
	DefaultTimeout     = 10 * time.Second
)

// Upper bounds Validate enforces, to catch typos rather than to tune.
const (
	maxConnections = 1024
	maxConcurrency = 1 << 16
)

// minTokenRenewal is how old the provider token must be before an ExpiredProviderToken
// answer makes the transport sign a new one: APNs answers 429 TooManyProviderTokenUpdates to
// tokens renewed more often than every 20 minutes, and a younger token called expired means
// a clock problem that a new token would not fix.
const minTokenRenewal = 20 * time.Minute

// ErrClosed is returned by Send after Close.
var ErrClosed = errors.New("apns: transport closed")

// Config configures a Transport. Zero Connections, Concurrency and Timeout take the defaults.
type Config struct {
	// URL is the APNs endpoint: ProductionURL, SandboxURL or a mock's https://host:port.
	URL string
	// KeyFile is the .p8 ES256 signing key for provider-token authentication; KeyID is its
	// key ID and TeamID the developer team that owns it.
	KeyFile string
	KeyID   string
	TeamID  string
	// CAFile is a PEM file of extra root certificates trusted besides the system roots
	// (a mock's CA); empty trusts the system roots only.
	CAFile string
	// Connections is the number of HTTP/2 connections (one apns2.Client each); default 4.
	Connections int
	// Concurrency bounds the pushes in flight across all connections; it is also the number
	// of sender goroutines. Default 256.
	Concurrency int
	// Timeout bounds one push, from request to answer, and each dial and TLS handshake;
	// default 10s.
	Timeout time.Duration
}

// Validate reports the first invalid field by name. It reads no files.
func (c Config) Validate() error {
	switch {
	case c.URL == "":
		return fmt.Errorf("apns: config URL: required (%s, %s or a mock's https URL)", ProductionURL, SandboxURL)
	case !provider.HTTPSHost(c.URL):
		return fmt.Errorf("apns: config URL: %q is not https://host[:port]", c.URL)
	case c.KeyFile == "":
		return errors.New("apns: config KeyFile: required (.p8 signing key)")
	case c.KeyID == "":
		return errors.New("apns: config KeyID: required")
	case c.TeamID == "":
		return errors.New("apns: config TeamID: required")
	case c.Connections < 0 || c.Connections > maxConnections:
		return fmt.Errorf("apns: config Connections: %d is out of 0..%d", c.Connections, maxConnections)
	case c.Concurrency < 0 || c.Concurrency > maxConcurrency:
		return fmt.Errorf("apns: config Concurrency: %d is out of 0..%d", c.Concurrency, maxConcurrency)
	case c.Timeout < 0:
		return fmt.Errorf("apns: config Timeout: %v is negative", c.Timeout)
	}
	if conns, conc := c.withDefaults().Connections, c.withDefaults().Concurrency; conns > conc {
		return fmt.Errorf("apns: config Connections: %d exceeds Concurrency %d", conns, conc)
	}
	return nil
}

// withDefaults returns c with its zero fields set to the defaults.
func (c Config) withDefaults() Config {
	if c.Connections == 0 {
		c.Connections = DefaultConnections
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Transport sends APNs notifications with provider-token authentication over a fixed pool of
// HTTP/2 connections. It is safe for concurrent use. Concurrency sender goroutines, started
// by New and stopped by Close, take the notifications of every Send from one channel; each
// goroutine is bound to one connection, so a slow or reconnecting connection takes fewer
// notifications while the others take the rest. The provider token is signed once and
// shared; apns2 renews it before it is 50 minutes old.
type Transport struct {
	tok   *token.Token
	conns []*http.Transport
	pool  *pushpool.Pool[*apns2.Notification]
}

var _ sender.Transport = (*Transport)(nil)

// New checks cfg, loads the signing key and the CA file, and starts the sender goroutines.
// Connections are dialled on first use. The caller must Close the Transport.
func New(cfg Config) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	key, err := token.AuthKeyFromFile(cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("apns: key file %s: %w", cfg.KeyFile, err)
	}
	tok := &token.Token{AuthKey: key, KeyID: cfg.KeyID, TeamID: cfg.TeamID}
	if _, err := tok.Generate(); err != nil {
		return nil, fmt.Errorf("apns: sign provider token: %w", err)
	}
	tlsCfg, err := provider.TLSConfig(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("apns: %w", err)
	}
	host := strings.TrimSuffix(cfg.URL, "/")
	t := &Transport{tok: tok}
	clients := make([]*apns2.Client, cfg.Connections)
	for i := range clients {
		conn, rt := pushpool.NewConnection(tlsCfg, cfg.Timeout)
		t.conns = append(t.conns, conn)
		clients[i] = &apns2.Client{
			Host:  host,
			Token: tok,
			// No http.Client.Timeout: each push carries its own deadline (see worker.push).
			HTTPClient: &http.Client{Transport: retryAfterRecorder{next: rt}},
		}
	}
	t.pool = pushpool.NewPool(cfg.Concurrency, func(i int) func(pushpool.Job[*apns2.Notification]) sender.Result {
		w := &worker{t: t, client: clients[i%len(clients)], timeout: cfg.Timeout}
		return w.push
	})
	return t, nil
}

// retryAfterKey keys the *string that retryAfterRecorder fills; apns2's Response has no
// headers, so the Retry-After of a rejection is taken on the way through.
type retryAfterKey struct{}

// retryAfterRecorder stores the Retry-After header of non-200 answers into the *string the
// request's context carries under retryAfterKey. http.Client calls RoundTrip on the caller's
// goroutine, so the sender goroutine that owns the string reads it after the push returns.
type retryAfterRecorder struct{ next http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (r retryAfterRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err == nil && resp.StatusCode != http.StatusOK {
		if p, ok := req.Context().Value(retryAfterKey{}).(*string); ok {
			*p = resp.Header.Get("Retry-After")
		}
	}
	return resp, err
}

// Send pushes every notification of b once and fills b.Results; see sender.Transport. It
// blocks while all sender goroutines are busy (backpressure) and returns when every
// notification has its Result. When ctx ends part way, the notifications not yet pushed get
// a Transient result with Reason "canceled" and Send still returns nil. Send returns an error,
// having pushed nothing, for a malformed batch, a done ctx or a closed Transport (ErrClosed).
func (t *Transport) Send(ctx context.Context, b *sender.Batch) error {
	switch {
	case b.Platform != sender.PlatformIOS:
		return fmt.Errorf("apns: send: batch platform is %v, want ios: %w", b.Platform, sender.ErrCannotSend)
	case b.APNs == nil:
		return fmt.Errorf("apns: send: batch has no APNs message: %w", sender.ErrCannotSend)
	case len(b.Results) != len(b.Tokens):
		return fmt.Errorf("apns: send: %d results for %d tokens: %w", len(b.Results), len(b.Tokens), sender.ErrCannotSend)
	}
	err := t.pool.Run(ctx, notification(b.APNs), b.Tokens, b.Results, stopped)
	switch {
	case errors.Is(err, pushpool.ErrClosed):
		return ErrClosed
	case err != nil:
		return fmt.Errorf("apns: send: %w", err)
	}
	return nil
}

// stopped is the result of a notification not pushed because the context ended.
func stopped(err error) sender.Result { return provider.Failed(err, time.Now()) }

// Close waits for the Sends in progress to finish, stops the sender goroutines and closes
// the connections. It is idempotent; Send returns ErrClosed after it.
func (t *Transport) Close() error {
	t.pool.Close()
	for _, c := range t.conns {
		c.CloseIdleConnections()
	}
	return nil
}

// notification builds the apns2 notification of m, device token left out. A zero
// m.Expiration is sent as apns-expiration 1 (a moment long past), which APNs treats like 0:
// deliver now or drop; apns2 cannot write 0 itself.
func notification(m *sender.APNsMessage) *apns2.Notification {
	exp := m.Expiration
	if exp.IsZero() {
		exp = time.Unix(1, 0)
	}
	return &apns2.Notification{
		Topic:      m.Topic,
		PushType:   apns2.EPushType(m.PushType),
		Priority:   m.Priority,
		Expiration: exp,
		CollapseID: m.CollapseID,
		Payload:    m.Payload,
	}
}

// worker is the state of one sender goroutine, which owns it.
type worker struct {
	t          *Transport
	client     *apns2.Client
	timeout    time.Duration
	n          apns2.Notification // the notification being pushed
	retryAfter string             // its answer's Retry-After, set by retryAfterRecorder
}

// push sends one notification with the worker's client and classifies the answer.
func (w *worker) push(j pushpool.Job[*apns2.Notification]) sender.Result {
	if err := j.Ctx.Err(); err != nil {
		return provider.Failed(err, time.Now())
	}
	w.n = *j.Msg
	w.n.DeviceToken = string(j.Token)
	w.retryAfter = ""
	ctx, cancel := context.WithTimeout(j.Ctx, w.timeout)
	resp, err := w.client.PushWithContext(context.WithValue(ctx, retryAfterKey{}, &w.retryAfter), &w.n)
	cancel()
	at := time.Now()
	if err != nil {
		return provider.Failed(err, at)
	}
	if resp.Reason == apns2.ReasonExpiredProviderToken {
		w.t.renewToken(at)
	}
	return provider.ClassifyAPNs(resp.StatusCode, resp.Reason, w.retryAfter, nil, at)
}

// renewToken makes the next push sign a new provider token, unless the current one is
// younger than minTokenRenewal.
func (t *Transport) renewToken(now time.Time) {
	t.tok.Lock()
	defer t.tok.Unlock()
	if now.Unix()-t.tok.IssuedAt >= int64(minTokenRenewal/time.Second) {
		t.tok.IssuedAt = 0
	}
}
