package fcm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/messaging"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/provider"
	"github.com/salvopush/salvo/sender/pushpool"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"golang.org/x/oauth2/jwt"
	"google.golang.org/api/option"
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

// OAuth2 scopes of the access tokens the transport asks for.
const (
	scopeCloudPlatform = "https://www.googleapis.com/auth/cloud-platform"
	scopeMessaging     = "https://www.googleapis.com/auth/firebase.messaging"
)

// ErrClosed is returned by Send after Close.
var ErrClosed = errors.New("fcm: transport closed")

// Config configures a Transport. Zero Connections, Concurrency and Timeout take the defaults.
type Config struct {
	// Endpoint is the base URL of the FCM HTTP v1 API, without the "/v1" (a mock's
	// https://127.0.0.1:P); empty means Google's, https://fcm.googleapis.com.
	Endpoint string
	// ServiceAccountFile is the service account JSON key. Access tokens come from its
	// token_uri (Google's, or a mock's) through the OAuth2 JWT-bearer flow.
	ServiceAccountFile string
	// ProjectID is the Firebase project; empty takes the project_id of the service account.
	ProjectID string
	// CAFile is a PEM file of extra root certificates trusted besides the system roots (a
	// mock's CA), for both the FCM endpoint and the token endpoint; empty trusts the system
	// roots only.
	CAFile string
	// Connections is the number of HTTP/2 connections (one messaging client each); default 4.
	Connections int
	// Concurrency bounds the sends in flight across all connections; it is also the number
	// of sender goroutines. Default 256.
	Concurrency int
	// Timeout bounds one send from request to answer, each access-token fetch, and each
	// dial and TLS handshake; default 10s.
	Timeout time.Duration
	// ValidateOnly sends every message as a dry run (FCM validate_only: checked by the
	// service, answered, never delivered).
	ValidateOnly bool
}

// Validate reports the first invalid field by name. It reads no files.
func (c Config) Validate() error {
	switch {
	case c.Endpoint != "" && !provider.HTTPSHost(c.Endpoint):
		return fmt.Errorf("fcm: config Endpoint: %q is not https://host[:port] (the transport adds /v1)", c.Endpoint)
	case c.ServiceAccountFile == "":
		return errors.New("fcm: config ServiceAccountFile: required (service account JSON key)")
	case c.Connections < 0 || c.Connections > maxConnections:
		return fmt.Errorf("fcm: config Connections: %d is out of 0..%d", c.Connections, maxConnections)
	case c.Concurrency < 0 || c.Concurrency > maxConcurrency:
		return fmt.Errorf("fcm: config Concurrency: %d is out of 0..%d", c.Concurrency, maxConcurrency)
	case c.Timeout < 0:
		return fmt.Errorf("fcm: config Timeout: %v is negative", c.Timeout)
	}
	if d := c.withDefaults(); d.Connections > d.Concurrency {
		return fmt.Errorf("fcm: config Connections: %d exceeds Concurrency %d", d.Connections, d.Concurrency)
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

// Transport sends FCM HTTP v1 messages, one request per message, with the Firebase Admin SDK
// over a fixed pool of HTTP/2 connections. It is safe for concurrent use. Concurrency sender
// goroutines, started by New and stopped by Close, take the messages of every Send from one
// channel; each goroutine is bound to one connection. One OAuth2 access token is shared and
// renewed shortly before it expires.
//
// The SDK retries 503 answers and network errors by itself (up to 4 times, waiting up to two
// minutes); the Transport stops it after the first attempt, so each message is tried once
// and the send worker owns retries.
type Transport struct {
	project string
	conns   []*http.Transport
	pool    *pushpool.Pool[*messaging.Message]
}

var _ sender.Transport = (*Transport)(nil)

// New checks cfg, reads the service account and the CA file, fetches a first access token
// (with ctx, so that bad credentials fail here) and starts the sender goroutines. ctx only
// bounds New; the Transport lives until Close, which the caller must call.
func New(ctx context.Context, cfg Config) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	key, err := os.ReadFile(cfg.ServiceAccountFile)
	if err != nil {
		return nil, fmt.Errorf("fcm: service account: %w", err)
	}
	jwtCfg, err := google.JWTConfigFromJSON(key, scopeCloudPlatform, scopeMessaging)
	if err != nil {
		return nil, fmt.Errorf("fcm: service account %s: %w", cfg.ServiceAccountFile, err)
	}
	project := cfg.ProjectID
	if project == "" {
		var f struct {
			ProjectID string `json:"project_id"`
		}
		if err := json.Unmarshal(key, &f); err != nil || f.ProjectID == "" {
			return nil, fmt.Errorf("fcm: config ProjectID: empty, and %s has no project_id", cfg.ServiceAccountFile)
		}
		project = f.ProjectID
	}
	tlsCfg, err := provider.TLSConfig(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("fcm: %w", err)
	}
	t := &Transport{project: project}
	rts := make([]http.RoundTripper, cfg.Connections)
	for i := range rts {
		var conn *http.Transport
		conn, rts[i] = pushpool.NewConnection(tlsCfg, cfg.Timeout)
		t.conns = append(t.conns, conn)
	}
	tokens, err := tokenSource(ctx, jwtCfg, &http.Client{Transport: t.conns[0], Timeout: cfg.Timeout})
	if err != nil {
		t.closeConnections()
		return nil, err
	}
	opts := []option.ClientOption(nil)
	if cfg.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(strings.TrimSuffix(cfg.Endpoint, "/")+"/v1"))
	}
	clients := make([]*messaging.Client, cfg.Connections)
	for i := range clients {
		// No http.Client.Timeout: each send carries its own deadline (see worker.push).
		hc := &http.Client{Transport: oneAttempt{next: &oauth2.Transport{Source: tokens, Base: rts[i]}}}
		app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: project}, append(slices.Clip(opts), option.WithHTTPClient(hc))...)
		if err == nil {
			clients[i], err = app.Messaging(ctx)
		}
		if err != nil {
			t.closeConnections()
			return nil, fmt.Errorf("fcm: messaging client: %w", err)
		}
	}
	t.pool = pushpool.NewPool(cfg.Concurrency, func(i int) func(pushpool.Job[*messaging.Message]) sender.Result {
		w := &worker{client: clients[i%len(clients)], timeout: cfg.Timeout, dryRun: cfg.ValidateOnly}
		return w.push
	})
	return t, nil
}

// tokenSource fetches a first access token with ctx and returns a source that renews it
// through hc, independently of ctx, for the life of the Transport.
func tokenSource(ctx context.Context, cfg *jwt.Config, hc *http.Client) (oauth2.TokenSource, error) {
	first, err := cfg.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, hc)).Token()
	if err != nil {
		return nil, fmt.Errorf("fcm: fetch access token: %w", err)
	}
	renew := cfg.TokenSource(context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, hc))
	return oauth2.ReuseTokenSource(first, renew), nil
}

// Send pushes every message of b once and fills b.Results; see sender.Transport. It blocks
// while all sender goroutines are busy (backpressure) and returns when every message has its
// Result. When ctx ends part way, the messages not yet sent get a Transient result with
// Reason "canceled" and Send still returns nil. Send returns an error, having sent nothing,
// for a malformed batch (wrong platform, no FCM message, another project), a done ctx or a
// closed Transport (ErrClosed).
func (t *Transport) Send(ctx context.Context, b *sender.Batch) error {
	switch {
	case b.Platform != sender.PlatformAndroid:
		return fmt.Errorf("fcm: send: batch platform is %v, want android: %w", b.Platform, sender.ErrCannotSend)
	case b.FCM == nil:
		return fmt.Errorf("fcm: send: batch has no FCM message: %w", sender.ErrCannotSend)
	case b.FCM.Project != "" && b.FCM.Project != t.project:
		return fmt.Errorf("fcm: send: batch is for project %q, transport for %q: %w", b.FCM.Project, t.project, sender.ErrCannotSend)
	case len(b.Results) != len(b.Tokens):
		return fmt.Errorf("fcm: send: %d results for %d tokens: %w", len(b.Results), len(b.Tokens), sender.ErrCannotSend)
	}
	err := t.pool.Run(ctx, message(b.FCM), b.Tokens, b.Results, stopped)
	switch {
	case errors.Is(err, pushpool.ErrClosed):
		return ErrClosed
	case err != nil:
		return fmt.Errorf("fcm: send: %w", err)
	}
	return nil
}

// stopped is the result of a message not sent because the context ended.
func stopped(err error) sender.Result { return Classify(err, time.Now()) }

// Close waits for the Sends in progress to finish, stops the sender goroutines and closes
// the connections. It is idempotent; Send returns ErrClosed after it.
func (t *Transport) Close() error {
	t.pool.Close()
	t.closeConnections()
	return nil
}

func (t *Transport) closeConnections() {
	for _, c := range t.conns {
		c.CloseIdleConnections()
	}
}

// message builds the messaging.Message of f, token left out: a notification when f has a
// title or body (data-only otherwise, for silent pushes), and the Android collapse key,
// priority and TTL.
func message(f *sender.FCMMessage) *messaging.Message {
	m := &messaging.Message{
		Data:    f.Data,
		Android: &messaging.AndroidConfig{CollapseKey: f.CollapseKey, Priority: f.Priority},
	}
	if f.Title != "" || f.Body != "" {
		m.Notification = &messaging.Notification{Title: f.Title, Body: f.Body}
	}
	if f.TTL > 0 {
		ttl := f.TTL
		m.Android.TTL = &ttl
	}
	return m
}

// worker is the state of one sender goroutine, which owns it.
type worker struct {
	client  *messaging.Client
	timeout time.Duration
	dryRun  bool              // validate_only
	msg     messaging.Message // the message being sent
	try     attempt           // what oneAttempt saw of it
}

// push sends one message with the worker's client and classifies the answer.
func (w *worker) push(j pushpool.Job[*messaging.Message]) sender.Result {
	if err := j.Ctx.Err(); err != nil {
		return Classify(err, time.Now())
	}
	w.msg = *j.Msg
	w.msg.Token = string(j.Token)
	ctx, cancel := context.WithTimeout(j.Ctx, w.timeout)
	w.try = attempt{cancel: cancel}
	send := w.client.Send
	if w.dryRun {
		send = w.client.SendDryRun
	}
	_, err := send(context.WithValue(ctx, attemptKey{}, &w.try), &w.msg)
	cancel()
	at := time.Now()
	switch {
	case w.try.err != nil:
		// No answer; err is only the SDK noticing that its retry was cancelled.
		err = w.try.err
	case w.try.unavailable != nil:
		err = w.try.unavailable
	case err != nil && w.try.tries == 0:
		// The SDK refused the message before any request.
		err = &invalidMessageError{err: err}
	}
	return Classify(err, at)
}

// attemptKey keys the *attempt in a send's context.
type attemptKey struct{}

// attempt is what oneAttempt saw of one send. Its sender goroutine owns it: http.Client
// calls RoundTrip on the caller's goroutine.
type attempt struct {
	tries int
	// err is the transport error of the first try, if it got no answer.
	err error
	// unavailable is the first try's 503 answer, if that was the answer.
	unavailable *unavailableError
	// cancel ends the send's context, which stops the SDK's retry loop.
	cancel context.CancelFunc
}

// errRetryRefused answers a second try of the same send, which oneAttempt never lets out.
var errRetryRefused = errors.New("fcm: retry refused: the send worker owns retries")

// oneAttempt lets one request per send reach the network. The SDK retries network errors
// and 503 answers on its own; for those, oneAttempt records the outcome and cancels the
// send's context, so that the SDK's retry wait ends at once with the context's error.
type oneAttempt struct{ next http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (o oneAttempt) RoundTrip(req *http.Request) (*http.Response, error) {
	a, _ := req.Context().Value(attemptKey{}).(*attempt)
	if a == nil {
		return o.next.RoundTrip(req)
	}
	if a.tries > 0 {
		return nil, errRetryRefused
	}
	a.tries++
	resp, err := o.next.RoundTrip(req)
	switch {
	case err != nil:
		a.err = err
		a.cancel()
		return nil, err
	case resp.StatusCode == http.StatusServiceUnavailable:
		a.unavailable = &unavailableError{header: resp.Header}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		a.cancel()
		return nil, a.unavailable
	}
	return resp, nil
}

// unavailableError is a 503 answer taken from the SDK before it could retry.
type unavailableError struct{ header http.Header }

func (e *unavailableError) Error() string { return "fcm: 503 service unavailable" }

// invalidMessageError is the SDK's refusal of a message before any request.
type invalidMessageError struct{ err error }

func (e *invalidMessageError) Error() string { return "fcm: invalid message: " + e.err.Error() }
func (e *invalidMessageError) Unwrap() error { return e.err }
