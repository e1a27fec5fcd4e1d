// Package h2flood is a lean HTTP/2 load client built on the x/net/http2 Framer: each
// connection keeps many streams in flight, writes prebuilt HPACK header blocks (only the
// :path varies) and batches its frames into few writes. It measures how many requests per
// second a server such as the mock APNs can take; it is not a general HTTP client.
//
// Example:
//
//	res, err := h2flood.Run(ctx, h2flood.Config{
//		URL: "https://127.0.0.1:4430", TLS: tlsCfg, Conns: 4, Streams: 500,
//		Duration: 10 * time.Second, PathPrefix: "/3/device/",
//		Header: [][2]string{{"apns-topic", "com.example.app"}}, Body: []byte(`{"aps":{}}`),
//	})
package h2flood

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Config describes one flood.
type Config struct {
	// URL is the server's base URL (https://host:port).
	URL string
	// TLS is the client TLS configuration; NextProtos is set to h2.
	TLS *tls.Config
	// Conns is the number of connections (default 1).
	Conns int
	// Streams is the most streams in flight per connection (default 100); the server's
	// SETTINGS_MAX_CONCURRENT_STREAMS caps it.
	Streams int
	// Duration bounds the flood (required).
	Duration time.Duration
	// MaxRequests, when > 0, bounds the requests sent over all connections.
	MaxRequests int64
	// Method is the request method (default POST).
	Method string
	// PathPrefix is followed by a distinct 64-hex-digit suffix per request (a device token),
	// unless TokenInBody is set.
	PathPrefix string
	// Header holds extra request header fields (lower-case names).
	Header [][2]string
	// Body is sent with every request; with TokenInBody it is the part before the token.
	Body []byte
	// TokenInBody puts the per-request token in the body instead of the path (FCM): :path
	// is PathPrefix alone and each body is Body, the token, then BodySuffix.
	TokenInBody bool
	// BodySuffix follows the token when TokenInBody is set.
	BodySuffix []byte
}

// Result sums a flood.
type Result struct {
	// Sent counts requests written; Completed those answered.
	Sent, Completed int64
	// Status counts answers by HTTP status.
	Status map[int]int64
	// Refused counts streams the server reset (REFUSED_STREAM or otherwise).
	Refused int64
	// Conns counts connections opened (reconnections after GOAWAY or errors included).
	Conns int64
	// Errors counts connection failures.
	Errors int64
	// Elapsed is the time from the first connection to the end.
	Elapsed time.Duration
}

// PerSecond is completed requests per second.
func (r Result) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Completed) / r.Elapsed.Seconds()
}

// Run floods cfg.URL until cfg.Duration passes, cfg.MaxRequests are sent or ctx is done,
// waits for the answers in flight (at most two seconds) and returns the sums.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Duration <= 0 {
		return Result{}, errors.New("h2flood: Duration must be positive")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return Result{}, fmt.Errorf("h2flood: URL %q is not https://host:port", cfg.URL)
	}
	cfg = cfg.withDefaults()
	tlsCfg := &tls.Config{}
	if cfg.TLS != nil {
		tlsCfg = cfg.TLS.Clone()
	}
	tlsCfg.NextProtos = []string{"h2"}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	f := &flood{cfg: cfg, host: u.Host, tls: tlsCfg}
	start := time.Now()
	var wg sync.WaitGroup
	results := make([]Result, cfg.Conns)
	for i := range cfg.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = f.worker(ctx, uint64(i))
		}()
	}
	wg.Wait()
	total := Result{Status: map[int]int64{}, Elapsed: time.Since(start)}
	for _, r := range results {
		total.Sent += r.Sent
		total.Completed += r.Completed
		total.Refused += r.Refused
		total.Conns += r.Conns
		total.Errors += r.Errors
		for k, v := range r.Status {
			total.Status[k] += v
		}
	}
	if total.Conns == total.Errors && total.Completed == 0 {
		return total, errors.New("h2flood: no connection succeeded")
	}
	return total, nil
}

// withDefaults fills the fields left at zero with their defaults.
func (cfg Config) withDefaults() Config {
	if cfg.Conns <= 0 {
		cfg.Conns = 1
	}
	if cfg.Streams <= 0 {
		cfg.Streams = 100
	}
	if cfg.Method == "" {
		cfg.Method = "POST"
	}
	return cfg
}

type flood struct {
	cfg  Config
	host string
	tls  *tls.Config
	sent atomic.Int64
}

// take reserves one request against MaxRequests.
func (f *flood) take() bool {
	n := f.sent.Add(1)
	if f.cfg.MaxRequests > 0 && n > f.cfg.MaxRequests {
		f.sent.Add(-1)
		return false
	}
	return true
}

// worker runs connection number id, reconnecting after GOAWAY or errors until ctx ends.
func (f *flood) worker(ctx context.Context, id uint64) Result {
	res := Result{Status: map[int]int64{}}
	var seq uint64
	for ctx.Err() == nil {
		if f.cfg.MaxRequests > 0 && f.sent.Load() >= f.cfg.MaxRequests {
			break
		}
		res.Conns++
		if err := f.conn(ctx, id, &seq, &res); err != nil {
			res.Errors++
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return res
}

// conn runs one connection until it ends.
func (f *flood) conn(ctx context.Context, id uint64, seq *uint64, res *Result) error {
	d := tls.Dialer{Config: f.tls}
	nc, err := d.DialContext(ctx, "tcp", f.host)
	if err != nil {
		return fmt.Errorf("h2flood: dial: %w", err)
	}
	defer nc.Close()
	if tc, ok := nc.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol != "h2" {
		return errors.New("h2flood: server did not negotiate h2")
	}
	c := &fconn{f: f, reqs: NewRequests(f.cfg, f.host), bw: bufio.NewWriterSize(nc, 64<<10), wake: make(chan struct{}, 1),
		readDone: make(chan struct{}), status: map[int]int64{}}
	c.limit.Store(1)
	c.sendWindow.Store(65535)
	c.fr = http2.NewFramer(c.bw, bufio.NewReaderSize(nc, 64<<10))
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.bw.WriteString(http2.ClientPreface)
	c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30},
		http2.Setting{ID: http2.SettingEnablePush, Val: 0})
	c.fr.WriteWindowUpdate(0, 1<<30-65535)
	if err := c.bw.Flush(); err != nil {
		return fmt.Errorf("h2flood: preface: %w", err)
	}
	go c.read()
	stop := context.AfterFunc(ctx, c.signal)
	defer stop()
	err = c.write(ctx, id, seq, false)
	// Let the answers in flight arrive, then close.
	deadline := time.Now().Add(2 * time.Second)
	for c.inflight.Load() > 0 && time.Now().Before(deadline) && !c.isReadDone() {
		c.write(ctx, id, seq, true)
		select {
		case <-c.wake:
		case <-c.readDone:
		case <-time.After(10 * time.Millisecond):
		}
	}
	nc.Close()
	<-c.readDone
	res.Sent += c.sentN
	res.Completed += c.completed.Load()
	res.Refused += c.refused.Load()
	for k, v := range c.status {
		res.Status[k] += v
	}
	return err
}

// fconn is one client connection: the caller's goroutine writes every frame; a read
// goroutine reads and passes what must be answered (SETTINGS ack, PING ack, WINDOW_UPDATE)
// through atomics, so the two never wait on each other.
type fconn struct {
	f    *flood
	reqs *Requests
	out  []byte // frames of the request being written
	bw   *bufio.Writer
	fr   *http2.Framer

	limit      atomic.Int64
	sendWindow atomic.Int64
	goAway     atomic.Bool
	inflight   atomic.Int64
	completed  atomic.Int64
	refused    atomic.Int64
	acks       atomic.Int32  // SETTINGS frames to acknowledge
	winUpdate  atomic.Uint32 // connection window to give back
	pingMu     sync.Mutex
	pings      [][8]byte

	sentN    int64         // writer only
	status   map[int]int64 // reader only until readDone
	readErr  error         // reader only until readDone
	wake     chan struct{}
	readDone chan struct{}
	nextID   uint32
}

func (c *fconn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *fconn) isReadDone() bool {
	select {
	case <-c.readDone:
		return true
	default:
		return false
	}
}

// control writes the acknowledgements the reader asked for.
func (c *fconn) control() {
	for n := c.acks.Swap(0); n > 0; n-- {
		c.fr.WriteSettingsAck()
	}
	if w := c.winUpdate.Swap(0); w > 0 {
		c.fr.WriteWindowUpdate(0, w)
	}
	c.pingMu.Lock()
	for _, p := range c.pings {
		c.fr.WritePing(true, p)
	}
	c.pings = c.pings[:0]
	c.pingMu.Unlock()
}

// write sends requests while there is room, until ctx ends or the connection fails; with
// controlOnly it only answers control frames, once.
func (c *fconn) write(ctx context.Context, id uint64, seq *uint64, controlOnly bool) error {
	if c.nextID == 0 {
		c.nextID = 1
	}
	bodyLen := int64(c.reqs.BodyLen())
	for {
		c.control()
		if controlOnly || ctx.Err() != nil || c.goAway.Load() || c.nextID >= 1<<31-1 {
			c.bw.Flush()
			return nil
		}
		if c.isReadDone() {
			if errors.Is(c.readErr, io.EOF) {
				return nil
			}
			return c.readErr
		}
		room := c.limit.Load() - c.inflight.Load()
		for ; room > 0 && c.sendWindow.Load() >= bodyLen && c.nextID < 1<<31-1; room-- {
			if !c.f.take() {
				c.bw.Flush()
				return nil
			}
			*seq++
			sid := c.nextID
			c.nextID += 2
			c.inflight.Add(1)
			c.out = c.reqs.Append(c.out[:0], id, sid, *seq)
			c.bw.Write(c.out)
			c.sendWindow.Add(-bodyLen)
			c.sentN++
		}
		if err := c.bw.Flush(); err != nil {
			return fmt.Errorf("h2flood: write: %w", err)
		}
		select {
		case <-c.wake:
		case <-c.readDone:
		case <-ctx.Done():
		}
	}
}

// read handles frames from the server until the connection ends.
func (c *fconn) read() {
	defer close(c.readDone)
	statusOf := map[uint32]int{}
	for {
		fr, err := c.fr.ReadFrame()
		if err != nil {
			c.readErr = err
			c.signal()
			return
		}
		wake := false
		switch fr := fr.(type) {
		case *http2.MetaHeadersFrame:
			st := 0
			if v := fr.PseudoValue("status"); len(v) == 3 {
				st = int(v[0]-'0')*100 + int(v[1]-'0')*10 + int(v[2]-'0')
			}
			if fr.StreamEnded() {
				c.finish(st)
				wake = true
			} else {
				statusOf[fr.StreamID] = st
			}
		case *http2.DataFrame:
			if c.winUpdate.Add(fr.Length) >= 1<<20 {
				wake = true
			}
			if fr.StreamEnded() {
				c.finish(statusOf[fr.StreamID])
				delete(statusOf, fr.StreamID)
				wake = true
			}
		case *http2.RSTStreamFrame:
			delete(statusOf, fr.StreamID)
			c.refused.Add(1)
			c.inflight.Add(-1)
			wake = true
		case *http2.SettingsFrame:
			if fr.IsAck() {
				break
			}
			if v, ok := fr.Value(http2.SettingMaxConcurrentStreams); ok {
				c.limit.Store(min(int64(v), int64(c.f.cfg.Streams)))
			} else if c.limit.Load() == 1 {
				c.limit.Store(int64(c.f.cfg.Streams))
			}
			c.acks.Add(1)
			wake = true
		case *http2.WindowUpdateFrame:
			if fr.StreamID == 0 {
				c.sendWindow.Add(int64(fr.Increment))
				wake = true
			}
		case *http2.PingFrame:
			if !fr.IsAck() {
				c.pingMu.Lock()
				c.pings = append(c.pings, fr.Data)
				c.pingMu.Unlock()
				wake = true
			}
		case *http2.GoAwayFrame:
			c.goAway.Store(true)
			wake = true
		}
		if wake {
			c.signal()
		}
	}
}

func (c *fconn) finish(status int) {
	c.inflight.Add(-1)
	c.completed.Add(1)
	c.status[status]++
}

// Requests encodes a flood's requests as the frames a connection writes: HEADERS with
// prebuilt HPACK blocks (the first request on a connection indexes the constant fields, later
// ones refer to them) and DATA with the body. Run writes them; benchmarks use them to feed a
// server the same bytes without a network. A Requests is not safe for concurrent use.
type Requests struct {
	cfg Config
	// prebuilt HPACK fields before and after :path, for the first and later requests
	prefix0, suffix0, prefix, suffix []byte
	block, body                      []byte
}

// NewRequests prepares the requests of cfg (Method, PathPrefix, Header, Body, TokenInBody,
// BodySuffix) for a server reached as authority (host:port).
func NewRequests(cfg Config, authority string) *Requests {
	cfg = cfg.withDefaults()
	r := &Requests{cfg: cfg}
	r.prefix0, r.suffix0, r.prefix, r.suffix = headerBlocks(cfg, authority)
	return r
}

// BodyLen is the length of every request's body.
func (r *Requests) BodyLen() int {
	if r.cfg.TokenInBody {
		return len(r.cfg.Body) + tokenLen + len(r.cfg.BodySuffix)
	}
	return len(r.cfg.Body)
}

// Append appends the frames of request seq of connection conn on stream (odd). The first
// request of a connection must be on stream 1: it installs the table entries later requests
// refer to. The token of the request (in its path or body) is made of conn and seq.
func (r *Requests) Append(dst []byte, conn uint64, stream uint32, seq uint64) []byte {
	cfg := &r.cfg
	prefix, suffix := r.prefix, r.suffix
	if stream == 1 {
		prefix, suffix = r.prefix0, r.suffix0
	}
	body := cfg.Body
	if cfg.TokenInBody {
		r.block = append(append(r.block[:0], prefix...), suffix...)
		r.body = appendToken(append(r.body[:0], cfg.Body...), conn, seq)
		r.body = append(r.body, cfg.BodySuffix...)
		body = r.body
	} else {
		r.block = appendPath(r.block[:0], prefix, suffix, cfg.PathPrefix, conn, seq)
	}
	flags := byte(flagEndHeaders)
	if len(body) == 0 {
		flags |= flagEndStream
	}
	dst = appendFrameHeader(dst, len(r.block), frameHeaders, flags, stream)
	dst = append(dst, r.block...)
	if len(body) > 0 {
		dst = appendFrameHeader(dst, len(body), frameData, flagEndStream, stream)
		dst = append(dst, body...)
	}
	return dst
}

// Frame types and flags of RFC 9113 that Append writes.
const (
	frameData      = 0x0
	frameHeaders   = 0x1
	flagEndStream  = 0x1
	flagEndHeaders = 0x4
)

// appendFrameHeader appends the 9-byte frame header.
func appendFrameHeader(dst []byte, length int, typ, flags byte, stream uint32) []byte {
	return append(dst, byte(length>>16), byte(length>>8), byte(length), typ, flags,
		byte(stream>>24)&0x7f, byte(stream>>16), byte(stream>>8), byte(stream))
}

// headerBlocks prebuilds the HPACK fields around :path. The first request on a connection
// sends :authority and the regular fields as literals with incremental indexing (prefix0,
// suffix0); later requests refer to them in the dynamic table (prefix, suffix), as real
// clients do. With TokenInBody the constant :path is indexed the same way and belongs to
// the prefixes. If they would not fit in the default 4096-byte table, every request sends
// literals without indexing.
func headerBlocks(cfg Config, authority string) (prefix0, suffix0, prefix, suffix []byte) {
	var method []byte
	switch cfg.Method {
	case "POST":
		method = []byte{0x83} // static index 3
	case "GET":
		method = []byte{0x82} // static index 2
	default:
		method = appendLiteralIndexedName(nil, 2, cfg.Method)
	}
	method = append(method, 0x87) // :scheme https, static index 7
	size := 32 + len(":authority") + len(authority) + 32 + len(":path") + len(cfg.PathPrefix)
	for _, h := range cfg.Header {
		size += 32 + len(h[0]) + len(h[1])
	}
	if size > 4000 {
		prefix = appendLiteralIndexedName(append([]byte(nil), method...), 1, authority)
		if cfg.TokenInBody {
			prefix = appendLiteralIndexedName(prefix, 4, cfg.PathPrefix)
		}
		for _, h := range cfg.Header {
			suffix = append(suffix, 0x00)
			suffix = appendString(suffix, h[0])
			suffix = appendString(suffix, h[1])
		}
		return prefix, suffix, prefix, suffix
	}
	n := uint64(len(cfg.Header))
	entries := n + 1 // dynamic-table entries a connection installs; the newest is index 62
	if cfg.TokenInBody {
		entries++
	}
	prefix0 = appendInt(append([]byte(nil), method...), 6, 0x40, 1) // :authority, indexed name 1
	prefix0 = appendString(prefix0, authority)
	prefix = appendInt(append([]byte(nil), method...), 7, 0x80, 62+entries-1)
	if cfg.TokenInBody {
		prefix0 = appendInt(prefix0, 6, 0x40, 4) // :path, indexed name 4
		prefix0 = appendString(prefix0, cfg.PathPrefix)
		prefix = appendInt(prefix, 7, 0x80, 62+entries-2)
	}
	for i, h := range cfg.Header {
		suffix0 = append(suffix0, 0x40)
		suffix0 = appendString(suffix0, h[0])
		suffix0 = appendString(suffix0, h[1])
		suffix = appendInt(suffix, 7, 0x80, 62+n-1-uint64(i))
	}
	return prefix0, suffix0, prefix, suffix
}

// appendPath appends prefix, a :path field of pathPrefix plus a 64-hex-digit token made of
// the connection id and the sequence number, and suffix.
func appendPath(dst, prefix, suffix []byte, pathPrefix string, id, seq uint64) []byte {
	dst = append(dst, prefix...)
	dst = append(dst, 0x04) // literal without indexing, name :path (static index 4)
	dst = appendInt(dst, 7, 0, uint64(len(pathPrefix)+tokenLen))
	dst = append(dst, pathPrefix...)
	dst = appendToken(dst, id, seq)
	return append(dst, suffix...)
}

// tokenLen is the length of the tokens appendToken writes.
const tokenLen = 64

// appendToken appends a 64-hex-digit token: 32 'a's, then id and seq in 16 digits each.
func appendToken(dst []byte, id, seq uint64) []byte {
	const hexDigits = "0123456789abcdef"
	for i := 0; i < 32; i++ {
		dst = append(dst, 'a')
	}
	for _, v := range []uint64{id, seq} {
		for s := 60; s >= 0; s -= 4 {
			dst = append(dst, hexDigits[v>>uint(s)&0xf])
		}
	}
	return dst
}

func appendLiteralIndexedName(dst []byte, index uint64, value string) []byte {
	dst = appendInt(dst, 4, 0x00, index)
	return appendString(dst, value)
}

func appendString(dst []byte, s string) []byte {
	dst = appendInt(dst, 7, 0, uint64(len(s)))
	return append(dst, s...)
}

// appendInt appends an HPACK integer with an n-bit prefix; first holds the bits above it.
func appendInt(dst []byte, n uint8, first byte, v uint64) []byte {
	max := uint64(1)<<n - 1
	if v < max {
		return append(dst, first|byte(v))
	}
	dst = append(dst, first|byte(max))
	v -= max
	for v >= 128 {
		dst = append(dst, byte(v&0x7f|0x80))
		v >>= 7
	}
	return append(dst, byte(v))
}
