// Package pushpool holds what the stock push transports (sender/apns, sender/fcm) share
// beyond the provider tables of sender/provider: a fixed pool of sender goroutines fed by
// one channel, and the net/http HTTP/2 connection setup (one stream waiting per connection,
// resending requests the server never processed).
//
// Usage:
//
//	p := pushpool.NewPool(256, func(i int) func(pushpool.Job[M]) sender.Result { return pusher(i) })
//	defer p.Close()
//	err := p.Run(ctx, msg, tokens, results, stopped)
package pushpool

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"time"

	"github.com/salvopush/salvo/sender"
)

// ErrClosed is returned by Pool.Run once Close has begun.
var ErrClosed = errors.New("pool closed")

// Pool is a fixed set of sender goroutines fed by one channel. The goroutines start in
// NewPool and end in Close; no goroutine is started per notification.
type Pool[M any] struct {
	jobs chan Job[M]
	// workers counts the sender goroutines; Close waits for them.
	workers sync.WaitGroup

	mu     sync.Mutex
	closed bool
	// runs counts the Run calls in progress; Close waits for them before closing jobs.
	runs sync.WaitGroup
}

// Job is one notification handed to a sender goroutine.
type Job[M any] struct {
	Ctx   context.Context
	Msg   M // the batch's message, device token left out
	Token []byte
	res   *sender.Result
	done  *sync.WaitGroup
}

// NewPool starts n sender goroutines; goroutine i pushes with newPusher(i), which it owns
// alone (so the pusher may keep scratch space without locks).
func NewPool[M any](n int, newPusher func(i int) func(Job[M]) sender.Result) *Pool[M] {
	p := &Pool[M]{jobs: make(chan Job[M], n)}
	p.workers.Add(n)
	for i := range n {
		push := newPusher(i)
		go func() {
			defer p.workers.Done()
			for j := range p.jobs {
				*j.res = push(j)
				j.done.Done()
			}
		}()
	}
	return p
}

// Run pushes msg to every token, blocking while all goroutines are busy, and returns once
// every results[i] is set. When ctx ends part way, the tokens not yet handed over get
// stopped(ctx.Err()). Run returns an error, having pushed nothing, when ctx is already done
// or close has begun (ErrClosed).
func (p *Pool[M]) Run(ctx context.Context, msg M, tokens [][]byte, results []sender.Result, stopped func(error) sender.Result) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.runs.Add(1)
	p.mu.Unlock()
	defer p.runs.Done()
	if err := ctx.Err(); err != nil {
		return err
	}
	var done sync.WaitGroup
	done.Add(len(tokens))
	for i := range tokens {
		select {
		case p.jobs <- Job[M]{Ctx: ctx, Msg: msg, Token: tokens[i], res: &results[i], done: &done}:
			continue
		case <-ctx.Done():
		}
		r := stopped(ctx.Err())
		for k := i; k < len(tokens); k++ {
			results[k] = r
			done.Done()
		}
		break
	}
	done.Wait()
	return nil
}

// Close waits for the runs in progress, then stops the goroutines. It is idempotent.
func (p *Pool[M]) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	p.runs.Wait()
	close(p.jobs)
	p.workers.Wait()
}

// NewConnection returns an HTTP/2-only transport that keeps at most one connection open,
// and the round tripper to send through it. Requests beyond the server's stream limit wait
// for a stream instead of opening another connection; a connection lost or closed by GOAWAY
// is dialled again on the next request; requests the server did not process are sent again
// (resendUnprocessed); and one request at a time opens its stream (streamGate). Close the
// transport with CloseIdleConnections.
func NewConnection(tlsCfg *tls.Config, timeout time.Duration) (*http.Transport, http.RoundTripper) {
	var protocols http.Protocols
	protocols.SetHTTP2(true)
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 15 * time.Second}
	tr := &http.Transport{
		DialContext:         dialer.DialContext,
		TLSClientConfig:     tlsCfg.Clone(), // net/http edits it in place
		TLSHandshakeTimeout: timeout,
		Protocols:           &protocols,
		MaxConnsPerHost:     1,
		HTTP2: &http.HTTP2Config{
			StrictMaxConcurrentRequests: true,
			SendPingTimeout:             15 * time.Second,
			PingTimeout:                 5 * time.Second,
		},
	}
	return tr, resendUnprocessed{next: &streamGate{next: tr, turn: make(chan struct{}, 1)}}
}

// streamGate lets one request at a time wait for a stream on the connection: a request
// takes the turn before its round trip and gives it back once its headers are written (its
// stream is open) or the round trip ends. net/http (Go 1.26) counts requests queued for a
// stream against the server's limit while the first of them waits for a free stream; when
// the server lowers its limit to 1 (APNs does after a rejected push) and two or more are
// queued, they wait for each other until their deadlines. With one request queued at a time
// the count is the open streams alone, and each answer frees the way.
type streamGate struct {
	next http.RoundTripper
	turn chan struct{} // holds a token while a request waits for its stream
}

// RoundTrip implements http.RoundTripper.
func (g *streamGate) RoundTrip(req *http.Request) (*http.Response, error) {
	select {
	case g.turn <- struct{}{}:
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	var once sync.Once
	release := func() { once.Do(func() { <-g.turn }) }
	defer release()
	trace := &httptrace.ClientTrace{WroteHeaders: release}
	return g.next.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
}

// maxResends bounds how often resendUnprocessed sends one request again.
const maxResends = 8

// resendUnprocessed sends a request again at once when the server did not process it: its
// stream was refused (REFUSED_STREAM), it was above the last stream of a GOAWAY, or nothing
// of it was written before its connection broke. net/http resends those itself but waits 1,
// 2, 4, 8... seconds from the second time on, so a server that lowers its stream limit after
// each rejection (APNs does) would stall pushes for seconds. A request the server never
// processed cannot be delivered twice, so this is not a retry in the send worker's sense.
// Other errors, and the last of maxResends, pass through.
type resendUnprocessed struct{ next http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (r resendUnprocessed) RoundTrip(req *http.Request) (*http.Response, error) {
	getBody := req.GetBody
	if getBody == nil {
		return r.next.RoundTrip(req)
	}
	// Without GetBody net/http cannot resend a request it judges unprocessed, and says so
	// (the texts of its unexported errors).
	out := *req
	out.GetBody = nil
	for n := 0; ; n++ {
		resp, err := r.next.RoundTrip(&out)
		if err == nil || n == maxResends || req.Context().Err() != nil {
			return resp, err
		}
		if msg := err.Error(); !strings.Contains(msg, "cannot retry err [") &&
			!strings.Contains(msg, "cannot rewind body after connection loss") {
			return resp, err
		}
		body, bodyErr := getBody()
		if bodyErr != nil {
			return nil, err
		}
		out.Body = body
	}
}
