package burst

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/salvopush/salvo/sender"
)

// Reconnect backoff of a pool slot whose dial failed or whose connection ended unused.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// maxResends bounds how often one notification the server never processed (refused stream,
// above a GOAWAY's last stream) is sent again, as the stock transports do.
const maxResends = 8

// errClosed is returned by Send after Close.
var errClosed = errors.New("transport closed")

// classifier is what differs between APNs and FCM for the connection core.
type classifier interface {
	// result classifies a final answer: status, the body of a non-200 answer, and the raw
	// Retry-After header.
	result(status int, body, retryAfter []byte, at time.Time) sender.Result
}

// request is a campaign message rendered for one Send: everything but the device token.
type request struct {
	hdr *headerTemplate
	// pathPrefix is followed by the token in :path (APNs); empty when :path is in hdr.
	pathPrefix string
	// body is the payload when bodySplice is false; otherwise prefix and suffix around the
	// token (FCM).
	body, bodySuffix []byte
	bodySplice       bool
	// bad, when set, is the Result of a token that must not be sent (FCM: empty token).
	bad func(token []byte) (sender.Result, bool)
}

// call is one Send in progress.
type call struct {
	req     *request
	tokens  [][]byte
	results []sender.Result
	next    int  // next token to hand out; guarded by pool.mu
	stopped bool // set by a cancelled Send; guarded by pool.mu
	// users counts connections encoding from tokens; a cancelled Send waits for them.
	users sync.WaitGroup

	mu     sync.Mutex
	left   int
	closed bool
	done   chan struct{}
}

// finish sets the Result of token idx unless it has one or the Send has returned.
func (c *call) finish(idx int32, r sender.Result) {
	c.mu.Lock()
	if !c.closed && c.results[idx].Outcome == 0 {
		c.results[idx] = r
		c.left--
		if c.left == 0 {
			close(c.done)
		}
	}
	c.mu.Unlock()
}

// item is one notification handed to a connection.
type item struct {
	c       *call
	idx     int32
	resends uint8
}

// poolConfig configures a pool.
type poolConfig struct {
	addr, authority string
	tls             *tls.Config
	conns           int
	timeout         time.Duration
	ping            time.Duration
	// maxStreams caps streams per connection below the server's limit (0: no cap).
	maxStreams int
}

// pool is a fixed number of connection slots to one host and the queue of notifications
// they take from. Each slot is a goroutine that dials, runs a connection, and redials with
// backoff; all are started by newPool and waited for by close.
type pool struct {
	cfg  poolConfig
	prov classifier
	ctx  context.Context // ends at close
	stop context.CancelFunc

	mu    sync.Mutex
	retry []item
	calls []*call
	conns map[*conn]struct{}

	live   atomic.Int32
	wakes  []chan struct{} // one per slot
	slots  sync.WaitGroup
	sends  sync.WaitGroup
	closed atomic.Bool
	cmu    sync.Mutex // orders close against sends.Add
}

// newPool starts the slots; they dial at once.
func newPool(cfg poolConfig, prov classifier) *pool {
	ctx, stop := context.WithCancel(context.Background())
	p := &pool{cfg: cfg, prov: prov, ctx: ctx, stop: stop, conns: map[*conn]struct{}{}}
	p.wakes = make([]chan struct{}, cfg.conns)
	for i := range p.wakes {
		p.wakes[i] = make(chan struct{}, 1)
	}
	p.slots.Add(cfg.conns)
	for i := range cfg.conns {
		go func() {
			defer p.slots.Done()
			// The label (inherited by the connection's reader and ticker) tells the
			// transport apart in CPU profiles: go tool pprof -tagfocus salvo=burst.
			pprof.Do(ctx, pprof.Labels("salvo", "burst"), func(context.Context) { p.slot(p.wakes[i]) })
		}()
	}
	return p
}

// hostPort splits an https URL into the address to dial and the :authority.
func hostPort(raw string) (addr, authority, serverName string, err error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return "", "", "", fmt.Errorf("%q is not https://host[:port]", raw)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "443"
	}
	return net.JoinHostPort(host, port), u.Host, host, nil
}

// send runs one Send: it queues every token, waits for all results or for ctx, and returns
// once nothing reads b.Tokens any more.
func (p *pool) send(ctx context.Context, req *request, tokens [][]byte, results []sender.Result) error {
	p.cmu.Lock()
	if p.closed.Load() {
		p.cmu.Unlock()
		return errClosed
	}
	p.sends.Add(1)
	p.cmu.Unlock()
	defer p.sends.Done()
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(tokens) == 0 {
		return nil
	}
	clear(results)
	c := &call{req: req, tokens: tokens, results: results, left: len(tokens), done: make(chan struct{})}
	p.mu.Lock()
	p.calls = append(p.calls, c)
	p.mu.Unlock()
	p.wakeAll()
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
	}
	p.mu.Lock()
	c.stopped = true
	p.mu.Unlock()
	c.users.Wait()
	r := sender.Result{Outcome: sender.Transient, Reason: transportReason(ctx.Err()), At: time.Now()}
	c.mu.Lock()
	c.closed = true
	for i := range c.results {
		if c.results[i].Outcome == 0 {
			c.results[i] = r
		}
	}
	c.mu.Unlock()
	return nil
}

// wakeAll tells every slot that work is queued.
func (p *pool) wakeAll() {
	for _, w := range p.wakes {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// take appends up to n queued notifications to dst, resends first. Each call an item comes
// from gets one users count per take, which the caller releases after encoding.
func (p *pool) take(dst []item, n int, users []*call) ([]item, []*call) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := 0
	for ; k < len(p.retry) && n > 0; k++ {
		it := p.retry[k]
		if it.c.stopped {
			continue
		}
		it.c.users.Add(1)
		users = append(users, it.c)
		dst = append(dst, it)
		n--
	}
	p.retry = p.retry[:copy(p.retry, p.retry[k:])]
	for n > 0 && len(p.calls) > 0 {
		c := p.calls[0]
		if c.stopped || c.next == len(c.tokens) {
			p.calls[0] = nil
			p.calls = p.calls[1:]
			continue
		}
		c.users.Add(1)
		users = append(users, c)
		m := min(n, len(c.tokens)-c.next)
		for i := range m {
			dst = append(dst, item{c: c, idx: int32(c.next + i)})
		}
		c.next += m
		n -= m
	}
	return dst, users
}

// hasWork reports whether anything is queued.
func (p *pool) hasWork() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.retry) > 0 || len(p.calls) > 0
}

// requeue puts notifications the server never processed back at the front; those resent
// too often get reason instead.
func (p *pool) requeue(items []item, reason string) {
	if len(items) == 0 {
		return
	}
	now := time.Now()
	p.mu.Lock()
	for _, it := range items {
		if it.resends >= maxResends {
			it.c.finish(it.idx, sender.Result{Outcome: sender.Transient, Reason: reason, At: now})
			continue
		}
		it.resends++
		p.retry = append(p.retry, it)
	}
	p.mu.Unlock()
	p.wakeAll()
}

// failQueued gives every queued notification a Transient result with reason; used when no
// connection can be made.
func (p *pool) failQueued(reason string) {
	now := time.Now()
	r := sender.Result{Outcome: sender.Transient, Reason: reason, At: now}
	p.mu.Lock()
	retry, calls := p.retry, p.calls
	p.retry, p.calls = nil, nil
	var rest []*call
	for _, c := range calls {
		if !c.stopped {
			c.users.Add(1)
			rest = append(rest, c)
		}
	}
	p.mu.Unlock()
	for _, it := range retry {
		it.c.finish(it.idx, r)
	}
	for _, c := range rest {
		for i := c.next; i < len(c.tokens); i++ {
			c.finish(int32(i), r)
		}
		c.users.Done()
	}
}

// slot keeps one connection up until the pool closes.
func (p *pool) slot(wake chan struct{}) {
	backoff := minBackoff
	for p.ctx.Err() == nil {
		c, err := dial(p.ctx, p, wake)
		if err == nil {
			p.live.Add(1)
			p.mu.Lock()
			p.conns[c] = struct{}{}
			p.mu.Unlock()
			if p.ctx.Err() != nil {
				c.kill(net.ErrClosed) // close ran between the dial and the line above
			}
			served := c.run()
			p.mu.Lock()
			delete(p.conns, c)
			p.mu.Unlock()
			p.live.Add(-1)
			if served {
				backoff = minBackoff
				continue
			}
		} else if p.ctx.Err() == nil && p.live.Load() == 0 {
			p.failQueued(transportReason(err))
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-p.ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// close waits for the Sends in progress, then closes the connections and waits for every
// goroutine. It is idempotent.
func (p *pool) close() {
	p.cmu.Lock()
	already := p.closed.Swap(true)
	p.cmu.Unlock()
	if already {
		return
	}
	p.sends.Wait()
	p.stop()
	// Kill outside p.mu: a writer holds its conn's mu while it takes from the pool (conn.mu,
	// then pool.mu), so killing under p.mu could deadlock with it.
	p.mu.Lock()
	conns := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.kill(net.ErrClosed)
	}
	p.slots.Wait()
}
