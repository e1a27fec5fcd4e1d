package api

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// Limits protect the API server from slow or too many clients. Zero fields take defaults.
type Limits struct {
	// MaxConns caps open connections (default 1024); further clients wait to be accepted.
	MaxConns int
	// ReadHeaderTimeout bounds reading a request's headers (default 10s).
	ReadHeaderTimeout time.Duration
	// BodyGrace and MinBodyRate: a request body that, BodyGrace (default 10s) after it
	// started, has come slower than MinBodyRate bytes per second (default 1024) is cut off
	// and its connection closed, so that a client trickling bytes cannot hold a connection.
	BodyGrace   time.Duration
	MinBodyRate float64
	// WriteTimeout bounds writing a response (default 2 minutes); IdleTimeout bounds a
	// keep-alive connection's wait for its next request (default 60s).
	WriteTimeout time.Duration
	IdleTimeout  time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxConns <= 0 {
		l.MaxConns = 1024
	}
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = 10 * time.Second
	}
	if l.BodyGrace <= 0 {
		l.BodyGrace = 10 * time.Second
	}
	if l.MinBodyRate <= 0 {
		l.MinBodyRate = 1024
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = 2 * time.Minute
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = 60 * time.Second
	}
	return l
}

// Listen listens on addr with at most lim.MaxConns connections open at once.
func Listen(addr string, lim Limits) (net.Listener, error) {
	lim = lim.withDefaults()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("api: listen %s: %w", addr, err)
	}
	return netutil.LimitListener(ln, lim.MaxConns), nil
}

// NewServer returns an HTTP server for h with lim's timeouts and the slow-body guard.
func NewServer(h http.Handler, lim Limits) *http.Server {
	lim = lim.withDefaults()
	guarded := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		// A copy of the request carries the guarded body: the server keeps the original to
		// decide what to do with an unread rest, and an answer written before the body was
		// read to its end closes the connection instead of waiting for the rest.
		rb := &rateReader{rc: r.Body, start: time.Now(), grace: lim.BodyGrace, min: lim.MinBodyRate,
			ctl: http.NewResponseController(w)}
		r2 := r.WithContext(r.Context())
		r2.Body = rb
		h.ServeHTTP(&closeUnread{ResponseWriter: w, body: rb}, r2)
		if !rb.eof {
			// The server reads what is left of the body (up to 256 KiB) before closing, so
			// that the client, still sending, sees the answer rather than a reset; it may
			// take a second for that, however slowly the rest comes.
			_ = rb.ctl.SetReadDeadline(time.Now().Add(time.Second))
		}
	})
	return &http.Server{Handler: guarded, ReadHeaderTimeout: lim.ReadHeaderTimeout,
		WriteTimeout: lim.WriteTimeout, IdleTimeout: lim.IdleTimeout, MaxHeaderBytes: 64 << 10}
}

// errSlowBody is the error a too-slow body read gives.
var errSlowBody = errors.New("request body arriving too slowly")

// closeUnread answers with "Connection: close" when the handler answers before reading the
// request body to its end (a refusal: 401, 403, 413...), so that the server does not wait
// for a rest that may never come.
type closeUnread struct {
	http.ResponseWriter
	body        *rateReader
	wroteHeader bool
}

func (c *closeUnread) WriteHeader(code int) {
	if !c.wroteHeader && !c.body.eof {
		c.ResponseWriter.Header().Set("Connection", "close")
	}
	c.wroteHeader = true
	c.ResponseWriter.WriteHeader(code)
}

func (c *closeUnread) Write(p []byte) (int, error) {
	if !c.wroteHeader {
		c.WriteHeader(http.StatusOK)
	}
	return c.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (c *closeUnread) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// rateReader fails a body that comes slower than min bytes/s once grace has passed. Each
// read may wait no longer than grace (a read deadline on the connection), so a client
// that stops sending is cut off too.
type rateReader struct {
	rc    io.ReadCloser
	start time.Time
	grace time.Duration
	min   float64
	n     int64
	eof   bool
	ctl   *http.ResponseController
}

func (b *rateReader) Read(p []byte) (int, error) {
	_ = b.ctl.SetReadDeadline(time.Now().Add(b.grace))
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if errors.Is(err, io.EOF) {
		b.eof = true
	}
	if el := time.Since(b.start); el > b.grace && float64(b.n)/el.Seconds() < b.min && !errors.Is(err, io.EOF) {
		return n, fmt.Errorf("%w: %d bytes in %s", errSlowBody, b.n, el.Round(time.Second))
	}
	return n, err
}

func (b *rateReader) Close() error { return b.rc.Close() }
