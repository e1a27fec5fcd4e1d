package mockpush

import (
	"container/heap"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// This file holds the framer-level HTTP/2 server both mocks run on: one read goroutine per
// connection handles every frame and answers requests in place (no goroutine per request).
// The read loop takes the connection's lock once per batch of input (the frames already
// received, up to about one TLS record of answers), not per frame; HEADERS and DATA frames of
// the common shapes are handled where they lie in the read buffer, without the x/net framer,
// which handles every other frame. Answers collect in one output buffer, written once per
// batch, after the batch's accepted requests are counted: an answer never leaves before its
// count. Delayed answers (latency faults) wait in a per-connection timer heap served by one
// goroutine per connection.

const (
	// initialStreamWindow is the SETTINGS_INITIAL_WINDOW_SIZE the server advertises.
	initialStreamWindow = 1 << 16
	// connWindow is the connection receive window the server opens at start.
	connWindow = 1 << 24
	// maxStoredBody is how much of a request body is kept; longer bodies are only counted.
	maxStoredBody = 1 << 16
	// maxHeaderList is the SETTINGS_MAX_HEADER_LIST_SIZE the server advertises (as APNs).
	maxHeaderList = 8000
	// maxHeaderBlock is the largest header block (and decoded header list) the server
	// tolerates; MAX_HEADER_LIST_SIZE is advisory.
	maxHeaderBlock = 64 << 10
	// maxReadFrame is the largest frame payload the server reads: the default
	// SETTINGS_MAX_FRAME_SIZE, which it keeps.
	maxReadFrame = 16384
	// maxOutBuffered is how much output a batch collects before it is written anyway.
	maxOutBuffered = 64 << 10
	// batchOut is how much output ends a batch even when more input is waiting: one TLS
	// record's worth.
	batchOut = 16 << 10
	// prefaceTimeout bounds the wait for the client preface.
	prefaceTimeout = 10 * time.Second
	// drainTimeout bounds how long a connection that sent GOAWAY waits for the client.
	drainTimeout = 2 * time.Second
)

// connAction is something a handler asks the connection to do after answering.
type connAction uint8

const (
	actionNone connAction = iota
	// actionGoAway sends GOAWAY (NO_ERROR) naming the current stream as the last one.
	actionGoAway
	// actionReset resets the TCP connection instead of answering.
	actionReset
)

// request is one complete HTTP request as a handler sees it. Its strings and body are valid
// while the handler runs; a handler that keeps one (a provider token) copies it.
type request struct {
	streamID  uint32
	method    string
	path      string
	authority string
	fields    []hpackField // regular fields, lower-case names
	body      []byte       // at most maxStoredBody bytes
	bodyLen   int          // the full body length
	// at is the arrival time: when the read that completed the request was handled.
	at time.Time
	// fieldBuf and strs hold the decoded fields of the request's header block and the
	// strings of its literals, when the request had to wait for its body.
	fieldBuf []hpackField
	strs     []byte
}

// header returns the value of the first field with the name of code (headerCode) and how
// many such fields there are.
func (r *request) header(code uint8) (string, int) {
	v, n := "", 0
	for i := range r.fields {
		if r.fields[i].code == code {
			if n == 0 {
				v = r.fields[i].value
			}
			n++
		}
	}
	return v, n
}

// response is a handler's answer.
type response struct {
	status int
	header []hpack.HeaderField
	body   []byte
	delay  time.Duration
	action connAction
}

func (w *response) reset() {
	w.status, w.delay, w.action = 0, 0, actionNone
	w.header, w.body = w.header[:0], w.body[:0]
}

func (w *response) set(name, value string) {
	w.header = append(w.header, hpack.HeaderField{Name: name, Value: value})
}

// handler answers requests. serve runs on the connection's read goroutine with the
// connection locked and must not block.
type handler interface {
	serve(c *h2conn, r *request, w *response)
}

// peerState is per-connection state the handlers keep.
type peerState struct {
	requests int // requests handled on the connection
	// batch collects accepted requests to count them once per batch; nil counts each at
	// once.
	batch *acceptBatch
	// APNs provider-token cache.
	bearer      string
	authIat     int64     // FCM: the access token's expiry (Unix seconds)
	authUntil   time.Time // APNs: when the provider token expires
	tokenSince  time.Time
	hasAccepted bool
	dropped     bool
	// fcmShape speeds up FCM bodies of one campaign.
	fcmShape fcmShape
}

// h2server holds what all connections of one mock share.
type h2server struct {
	handler    handler
	static     *[hpackStaticLen]hpackEntry // the HPACK static table
	maxStreams uint32
	// initialStreams returns the MAX_CONCURRENT_STREAMS a new connection starts with.
	initialStreams func() uint32
	now            func() time.Time

	mu     sync.Mutex
	conns  map[*h2conn]struct{}
	closed bool
}

func newH2Server(h handler, maxStreams uint32, initial func() uint32, now func() time.Time) *h2server {
	return &h2server{handler: h, static: hpackStaticTable(), maxStreams: maxStreams, initialStreams: initial, now: now,
		conns: map[*h2conn]struct{}{}}
}

// run serves an HTTP/2 connection whose TLS handshake is done, until it ends.
func (s *h2server) run(nc net.Conn) {
	c := newH2Conn(s, nc)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	c.serve()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// close sends GOAWAY with debug data {"reason":"Shutdown"} on every connection and closes
// them; the goroutines running them belong to the caller of run.
func (s *h2server) close() {
	s.mu.Lock()
	s.closed = true
	conns := make([]*h2conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.shutdown()
	}
}

// streamState is the state of an open stream.
type streamState uint8

const (
	stateOpen streamState = iota + 1
	stateHalfClosedRemote
)

type h2stream struct {
	id            uint32
	gen           uint64
	state         streamState
	req           request
	bodyBuf       []byte // the body of a request that came in several DATA frames
	contentLength int64
	recvWindow    int64 // what the client may still send on this stream
	recvUnacked   int
	sendWindow    int64
	pending       []byte // response body not yet sent
	blocked       bool   // in c.blocked
	scheduled     bool   // a delayed response is waiting
}

// delayed is a response waiting in the timer heap.
type delayed struct {
	due    time.Time
	st     *h2stream
	gen    uint64
	status int
	header []hpack.HeaderField
	body   []byte
	action connAction
}

type delayHeap []*delayed

func (h delayHeap) Len() int           { return len(h) }
func (h delayHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h delayHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)        { *h = append(*h, x.(*delayed)) }
func (h *delayHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return x
}

// h2conn is one server connection. mu guards everything but the waits for input.
type h2conn struct {
	srv  *h2server
	nc   net.Conn
	in   *inBuffer
	out  outBuffer // frames not yet written
	fr   *http2.Framer
	hdec *hpackDecoder

	mu      sync.Mutex
	hblock  []byte              // request header block (hbuf, or a frame in the read buffer)
	hbuf    []byte              // where hblock is assembled from HEADERS and CONTINUATION
	hstream uint32              // stream of the header block being assembled
	hend    bool                // END_STREAM of that HEADERS frame
	hprio   http2.PriorityParam // its priority, when hasPrio
	hasPrio bool
	hopen   bool // a header block waits for CONTINUATION frames
	// holder is the open stream whose request still points into the decoder's buffers; it
	// takes them before the next block is decoded (most requests end before that).
	holder *h2stream
	// at is the arrival time of the current batch, taken by its first request.
	at time.Time
	// batch holds the accepted requests not yet counted.
	batch acceptBatch
	// lastPayload is the last APNs payload found to be a JSON object; the same payload
	// (one campaign) is not parsed again.
	lastPayload []byte
	idPrefix    string // random first 24 characters of this connection's apns-ids
	idSeq       uint64
	idBuf       [36]byte // the last apns-id made, valid until the next one
	streams     streamTable
	free        []*h2stream
	gen         uint64
	maxClientID uint32
	lastHandled uint32
	// send side
	sendWindow   int64
	peerInitial  int64
	peerMaxFrame uint32
	blocked      []*h2stream
	// receive side
	recvWindow  int64
	recvUnacked int
	// stream limits
	advertised uint32
	enforced   uint32
	unacked    []uint32 // MAX_CONCURRENT_STREAMS values sent and not yet acknowledged
	// shutdown
	goAwaySent bool
	goAwayLast uint32
	dead       bool
	linger     bool
	writeErr   error
	// handler state
	peer peerState
	resp response
	rnd  *rand.Rand
	// timers
	delays   delayHeap
	timerOn  bool
	wake     chan struct{}
	done     chan struct{}
	timerWG  sync.WaitGroup
	statusSt [600]string
}

// outBuffer collects the frames a connection writes until it flushes them.
type outBuffer struct{ b []byte }

// Write appends p (the x/net framer writes each frame with one call).
func (o *outBuffer) Write(p []byte) (int, error) {
	o.b = append(o.b, p...)
	return len(p), nil
}

func newH2Conn(s *h2server, nc net.Conn) *h2conn {
	c := &h2conn{
		srv:          s,
		nc:           nc,
		in:           &inBuffer{src: nc, buf: make([]byte, 32<<10)},
		streams:      newStreamTable(),
		sendWindow:   65535,
		peerInitial:  65535,
		peerMaxFrame: 16384,
		recvWindow:   65535,
		wake:         make(chan struct{}, 1),
		done:         make(chan struct{}),
	}
	c.fr = http2.NewFramer(&c.out, c.in)
	c.hdec = newHPACKDecoder(s.static, 4096, maxHeaderBlock, maxHeaderBlock)
	c.fr.SetReuseFrames()
	c.fr.SetMaxReadFrameSize(maxReadFrame)
	c.peer.batch = &c.batch
	return c
}

// shutdown sends GOAWAY and closes the connection (server close).
func (c *h2conn) shutdown() {
	c.mu.Lock()
	if !c.dead {
		c.fr.WriteGoAway(c.maxClientID, http2.ErrCodeNo, []byte(`{"reason":"Shutdown"}`))
		c.flushLocked()
	}
	c.mu.Unlock()
	c.nc.Close()
}

// serve runs the read loop until the connection ends.
func (c *h2conn) serve() {
	defer func() {
		c.mu.Lock()
		c.dead = true
		c.mu.Unlock()
		close(c.done)
		c.timerWG.Wait()
		c.nc.Close()
	}()
	c.nc.SetReadDeadline(time.Now().Add(prefaceTimeout))
	var preface [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(c.in, preface[:]); err != nil || string(preface[:]) != http2.ClientPreface {
		return
	}
	c.nc.SetReadDeadline(time.Time{})
	c.mu.Lock()
	c.advertised = c.srv.initialStreams()
	c.enforced = c.advertised
	c.fr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: c.advertised},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: initialStreamWindow},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: maxHeaderList},
	)
	c.fr.WriteWindowUpdate(0, connWindow-65535)
	c.recvWindow = connWindow
	for {
		if !c.fullFrameBuffered() && (!c.moreInput() || !c.fullFrameBuffered()) {
			// The batch is done: count it, answer it, and wait for input unlocked.
			c.flushLocked()
			c.mu.Unlock()
			c.waitFrame()
			c.mu.Lock()
			c.at = time.Time{}
		}
		ok := c.readFrame()
		if ok && c.writeErr != nil {
			ok = false
		}
		if !ok {
			linger := c.linger
			c.mu.Unlock()
			if linger {
				c.lingerClose()
			}
			return
		}
		if len(c.out.b) >= maxOutBuffered {
			c.flushLocked()
			c.at = time.Time{}
		}
	}
}

// moreInput reports whether input is already waiting, without blocking: it reads once with a
// deadline in the past, which a TLS connection answers from records it has already received
// and decrypts (a deadline error leaves it usable). The batch then goes on instead of
// writing its answers now, so the mock writes fewer, fuller TLS records.
func (c *h2conn) moreInput() bool {
	if c.goAwaySent || len(c.out.b) >= batchOut || c.nc.SetReadDeadline(time.Unix(1, 0)) != nil {
		return false
	}
	got := c.in.tryFill()
	c.nc.SetReadDeadline(time.Time{})
	return got
}

// waitFrame waits until a whole frame is in the read buffer, or the read fails (the framer
// then meets the error), or the frame is too large to wait for (the framer refuses it).
func (c *h2conn) waitFrame() {
	if !c.in.fill(9) {
		return
	}
	h := c.in.buffered()
	if n := int(h[0])<<16 | int(h[1])<<8 | int(h[2]); n <= maxReadFrame {
		c.in.fill(9 + n)
	}
}

// readFrame handles the next frame: HEADERS and DATA frames of the usual shapes in place,
// every other frame (and every error) through the x/net framer. It reports whether to go on.
func (c *h2conn) readFrame() bool {
	if h := c.in.buffered(); !c.hopen && len(h) >= 9 {
		n := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
		typ, flags := http2.FrameType(h[3]), http2.Flags(h[4])
		id := (uint32(h[5])<<24 | uint32(h[6])<<16 | uint32(h[7])<<8 | uint32(h[8])) & (1<<31 - 1)
		fast := false
		switch typ {
		case http2.FrameData:
			fast = !flags.Has(http2.FlagDataPadded)
		case http2.FrameHeaders:
			fast = flags&(http2.FlagHeadersPadded|http2.FlagHeadersPriority) == 0 && flags.Has(http2.FlagHeadersEndHeaders)
		}
		if fast && id != 0 && n <= maxReadFrame && len(h) >= 9+n {
			payload := h[9 : 9+n]
			var ok bool
			if typ == http2.FrameData {
				ok = c.onData(id, flags.Has(http2.FlagDataEndStream), uint32(n), payload)
			} else {
				c.hstream, c.hend, c.hasPrio = id, flags.Has(http2.FlagHeadersEndStream), false
				c.hblock = payload
				ok = c.onHeaderBlock()
				c.hblock = nil
			}
			c.in.discard(9 + n)
			return ok
		}
	}
	f, err := c.fr.ReadFrame()
	return c.handleFrame(f, err)
}

// lingerClose half-closes the connection and discards input for a moment, so that unread
// input does not turn the close into a reset that destroys the GOAWAY in flight.
func (c *h2conn) lingerClose() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.nc.SetReadDeadline(time.Now().Add(time.Second))
	io.Copy(io.Discard, io.LimitReader(c.in, 1<<20))
}

// fullFrameBuffered reports whether a whole frame is already waiting in the read buffer.
func (c *h2conn) fullFrameBuffered() bool {
	h := c.in.buffered()
	return len(h) >= 9 && len(h) >= 9+int(h[0])<<16|int(h[1])<<8|int(h[2])
}

// inBuffer is a connection's read buffer. The frames the connection handles itself are read
// where they lie (buffered, discard); the x/net framer reads the others through Read. A read
// error is kept, every later read returns it, but for the deadline error of tryFill.
type inBuffer struct {
	src  io.Reader
	buf  []byte
	r, w int // buf[r:w] is read and not yet consumed
	err  error
}

// buffered returns the bytes read and not yet consumed; they stay valid until the next fill.
func (b *inBuffer) buffered() []byte { return b.buf[b.r:b.w] }

// discard consumes n buffered bytes.
func (b *inBuffer) discard(n int) { b.r += n }

// fill reads until at least n (at most len(b.buf)) bytes are buffered and reports whether
// they are; it is false after a read error.
func (b *inBuffer) fill(n int) bool {
	for empty := 0; b.w-b.r < n; {
		if b.err != nil {
			return false
		}
		if b.r > 0 {
			// Move the start of a partly read frame to the front, leaving the most room.
			b.w = copy(b.buf, b.buf[b.r:b.w])
			b.r = 0
		}
		m, err := b.src.Read(b.buf[b.w:])
		b.w += m
		if m == 0 {
			empty++
		}
		switch {
		case err != nil:
			b.err = err
		case m > 0:
			empty = 0
		case empty >= 100:
			b.err = io.ErrNoProgress
		}
	}
	return true
}

// tryFill reads once, if there is room, and reports whether bytes came. A deadline error is
// not kept as the read error.
func (b *inBuffer) tryFill() bool {
	if b.err != nil {
		return false
	}
	if b.r > 0 {
		b.w = copy(b.buf, b.buf[b.r:b.w])
		b.r = 0
	}
	if b.w == len(b.buf) {
		return false
	}
	m, err := b.src.Read(b.buf[b.w:])
	b.w += m
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		b.err = err
	}
	return m > 0
}

// Read reads buffered bytes, filling the buffer when it is empty (io.Reader, for the framer).
func (b *inBuffer) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r == b.w && !b.fill(1) {
		return 0, b.err
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += n
	return n, nil
}

// flushLocked counts the accepted requests of the batch, then writes the buffered frames.
func (c *h2conn) flushLocked() {
	c.batch.commit()
	if c.writeErr == nil && len(c.out.b) > 0 {
		_, c.writeErr = c.nc.Write(c.out.b)
	}
	c.out.b = c.out.b[:0]
	if cap(c.out.b) > 4*maxOutBuffered {
		c.out.b = nil
	}
}

// now returns the arrival time of the current batch.
func (c *h2conn) now() time.Time {
	if c.at.IsZero() {
		c.at = c.srv.now()
	}
	return c.at
}

// connError sends GOAWAY with code and ends the connection; serve then lingers so that the
// client reads the GOAWAY before the socket closes.
func (c *h2conn) connError(code http2.ErrCode) bool {
	c.fr.WriteGoAway(c.maxClientID, code, nil)
	c.flushLocked()
	c.linger = true
	return false
}

// streamError resets one stream.
func (c *h2conn) streamError(id uint32, code http2.ErrCode) {
	c.fr.WriteRSTStream(id, code)
	if st := c.streams.get(id); st != nil {
		c.closeStream(st)
	}
}

// handleFrame processes one frame (or read error) and reports whether to go on.
func (c *h2conn) handleFrame(f http2.Frame, err error) bool {
	if err != nil {
		var se http2.StreamError
		var ce http2.ConnectionError
		switch {
		case errors.As(err, &se):
			if se.StreamID > c.maxClientID && se.StreamID%2 == 1 {
				c.maxClientID = se.StreamID
			}
			c.streamError(se.StreamID, se.Code)
			return true
		case errors.As(err, &ce):
			return c.connError(http2.ErrCode(ce))
		case errors.Is(err, http2.ErrFrameTooLarge):
			return c.connError(http2.ErrCodeFrameSize)
		}
		return false
	}
	switch f := f.(type) {
	case *http2.HeadersFrame:
		c.hstream, c.hend, c.hasPrio, c.hprio = f.StreamID, f.StreamEnded(), f.HasPriority(), f.Priority
		c.hbuf = append(c.hbuf[:0], f.HeaderBlockFragment()...)
		c.hopen = !f.HeadersEnded()
		if !c.hopen {
			c.hblock = c.hbuf
			return c.onHeaderBlock()
		}
	case *http2.ContinuationFrame:
		// The framer guarantees CONTINUATION follows HEADERS on the same stream.
		c.hbuf = append(c.hbuf, f.HeaderBlockFragment()...)
		if len(c.hbuf) > maxHeaderBlock {
			return c.connError(http2.ErrCodeProtocol)
		}
		if f.HeadersEnded() {
			c.hopen = false
			c.hblock = c.hbuf
			return c.onHeaderBlock()
		}
	case *http2.DataFrame:
		return c.onData(f.StreamID, f.StreamEnded(), f.Length, f.Data())
	case *http2.SettingsFrame:
		return c.onSettings(f)
	case *http2.WindowUpdateFrame:
		return c.onWindowUpdate(f)
	case *http2.PingFrame:
		if !f.IsAck() {
			c.fr.WritePing(true, f.Data)
		}
	case *http2.RSTStreamFrame:
		if f.StreamID > c.maxClientID {
			return c.connError(http2.ErrCodeProtocol)
		}
		if st := c.streams.get(f.StreamID); st != nil {
			c.closeStream(st)
		}
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			c.streamError(f.StreamID, http2.ErrCodeProtocol)
		}
	case *http2.GoAwayFrame:
		// The client will open no new streams; answer the open ones and carry on.
	case *http2.PushPromiseFrame:
		return c.connError(http2.ErrCodeProtocol)
	}
	return true
}

func (c *h2conn) onSettings(f *http2.SettingsFrame) bool {
	if f.IsAck() {
		if len(c.unacked) > 0 {
			c.enforced = c.unacked[0]
			c.unacked = c.unacked[1:]
			if len(c.unacked) == 0 {
				c.enforced = c.advertised
			}
		}
		return true
	}
	var code http2.ErrCode
	f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				code = http2.ErrCode(ce)
			} else {
				code = http2.ErrCodeProtocol
			}
			return err
		}
		switch s.ID {
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - c.peerInitial
			c.peerInitial = int64(s.Val)
			c.streams.each(func(st *h2stream) {
				st.sendWindow += delta
				if st.sendWindow > 1<<31-1 {
					code = http2.ErrCodeFlowControl
				}
			})
		case http2.SettingMaxFrameSize:
			c.peerMaxFrame = s.Val
		case http2.SettingHeaderTableSize:
			// Responses never use the dynamic table, so any size suits them.
		}
		return nil
	})
	if code != 0 {
		return c.connError(code)
	}
	c.fr.WriteSettingsAck()
	c.sendBlocked()
	return true
}

func (c *h2conn) onWindowUpdate(f *http2.WindowUpdateFrame) bool {
	if f.StreamID == 0 {
		c.sendWindow += int64(f.Increment)
		if c.sendWindow > 1<<31-1 {
			return c.connError(http2.ErrCodeFlowControl)
		}
		c.sendBlocked()
		return true
	}
	if f.StreamID > c.maxClientID {
		return c.connError(http2.ErrCodeProtocol)
	}
	st := c.streams.get(f.StreamID)
	if st == nil {
		return true
	}
	st.sendWindow += int64(f.Increment)
	if st.sendWindow > 1<<31-1 {
		c.streamError(st.id, http2.ErrCodeFlowControl)
		return true
	}
	if len(st.pending) > 0 {
		c.sendData(st)
	}
	return true
}

// connectionHeaders are forbidden in HTTP/2 requests (RFC 9113 8.2.2).
func connectionHeader(name string) bool {
	switch name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		return true
	}
	return false
}

// onHeaderBlock decodes a complete header block (c.hblock) and opens (or ends) its stream.
func (c *h2conn) onHeaderBlock() bool {
	d := c.hdec
	if st := c.holder; st != nil {
		st.req.fieldBuf, st.req.strs = d.take(st.req.fieldBuf, st.req.strs)
		c.holder = nil
	}
	if err := d.decode(c.hblock); err != nil {
		return c.connError(http2.ErrCodeCompression)
	}
	id := c.hstream
	if id%2 == 0 {
		return c.connError(http2.ErrCodeProtocol)
	}
	// Check the fields (RFC 9113 8.2): valid values, lower-case token names, pseudo-fields
	// first. Table entries carry their checks; literals were checked as they were decoded.
	fields := d.fields
	invalid, sawRegular, special, npseudo := d.tooBig, false, false, 0
	for i := range fields {
		f := fields[i].flags
		switch {
		case f&hfValueOK == 0:
			invalid = true
		case f&hfPseudo != 0:
			if sawRegular {
				invalid = true
			} else {
				npseudo++
			}
		default:
			sawRegular = true
			invalid = invalid || f&hfNameOK == 0
			special = special || f&hfSpecial != 0
		}
	}
	if c.hasPrio && c.hprio.StreamDep == id {
		if id > c.maxClientID {
			c.maxClientID = id
		}
		c.streamError(id, http2.ErrCodeProtocol)
		return true
	}
	if st := c.streams.get(id); st != nil {
		// Trailers.
		if st.state != stateOpen {
			c.streamError(id, http2.ErrCodeStreamClosed)
			return true
		}
		if !c.hend || npseudo > 0 || invalid {
			c.streamError(id, http2.ErrCodeProtocol)
			return true
		}
		return c.endRequest(st)
	}
	if id <= c.maxClientID {
		return c.connError(http2.ErrCodeStreamClosed)
	}
	c.maxClientID = id
	if c.goAwaySent {
		return true // after GOAWAY, new streams are ignored
	}
	if uint32(c.streams.n) >= c.enforced {
		c.fr.WriteRSTStream(id, http2.ErrCodeRefusedStream)
		return true
	}
	// Validate the request header block (RFC 9113 8.3.1).
	var method, path, scheme, authority string
	bad := invalid
	for _, hf := range fields[:npseudo] {
		var dst *string
		switch hf.name {
		case ":method":
			dst = &method
		case ":path":
			dst = &path
		case ":scheme":
			dst = &scheme
		case ":authority":
			dst = &authority
		default:
			bad = true
			continue
		}
		if *dst != "" {
			bad = true // duplicate
		}
		*dst = hf.value
	}
	contentLength := int64(-1)
	regular := fields[npseudo:]
	bad = bad || method == "" || path == "" || scheme == ""
	for i := 0; special && i < len(regular); i++ {
		hf := &regular[i]
		switch {
		case hf.flags&hfSpecial == 0:
		case connectionHeader(hf.name):
			bad = true
		case hf.name == "te" && hf.value != "trailers":
			bad = true
		case hf.name == "content-length":
			n, err := strconv.ParseInt(hf.value, 10, 64)
			if err != nil || n < 0 {
				bad = true
			}
			contentLength = n
		}
	}
	if bad {
		c.fr.WriteRSTStream(id, http2.ErrCodeProtocol)
		return true
	}
	st := c.newStream(id)
	st.req.method, st.req.path, st.req.authority = method, path, authority
	st.req.fields = regular
	st.contentLength = contentLength
	c.streams.put(st)
	if c.hend {
		return c.endRequest(st)
	}
	// The request waits for its body, with its fields and strings in the decoder's buffers.
	c.holder = st
	return true
}

func (c *h2conn) newStream(id uint32) *h2stream {
	var st *h2stream
	if n := len(c.free); n > 0 {
		st = c.free[n-1]
		c.free = c.free[:n-1]
	} else {
		st = &h2stream{}
	}
	c.gen++
	bodyBuf, fields, strs, pending := st.bodyBuf[:0], st.req.fieldBuf[:0], st.req.strs[:0], st.pending[:0]
	*st = h2stream{id: id, gen: c.gen, state: stateOpen, recvWindow: initialStreamWindow,
		sendWindow: c.peerInitial, pending: pending, bodyBuf: bodyBuf}
	st.req.fieldBuf, st.req.strs = fields, strs
	return st
}

func (c *h2conn) closeStream(st *h2stream) {
	c.streams.del(st)
	if c.holder == st {
		c.holder = nil
	}
	st.gen = 0
	if st.blocked {
		for i, b := range c.blocked {
			if b == st {
				c.blocked = append(c.blocked[:i], c.blocked[i+1:]...)
				break
			}
		}
		st.blocked = false
	}
	st.req.body = nil
	if cap(st.bodyBuf) <= 8<<10 && cap(st.pending) <= 8<<10 && len(c.free) < 1024 {
		c.free = append(c.free, st)
	} else {
		st.bodyBuf, st.pending = nil, nil
	}
	if c.goAwaySent && c.streams.n == 0 {
		c.drain()
	}
}

// onData handles a DATA frame on stream id: length is the frame's payload length (padding
// included, as flow control counts it), data the payload without padding. data is only
// read until onData returns.
func (c *h2conn) onData(id uint32, end bool, length uint32, data []byte) bool {
	n := int64(length)
	if n > c.recvWindow {
		return c.connError(http2.ErrCodeFlowControl)
	}
	c.recvWindow -= n
	c.recvUnacked += int(n)
	if c.recvUnacked >= connWindow/4 {
		c.fr.WriteWindowUpdate(0, uint32(c.recvUnacked))
		c.recvWindow += int64(c.recvUnacked)
		c.recvUnacked = 0
	}
	st := c.streams.get(id)
	if st == nil {
		if id > c.maxClientID {
			return c.connError(http2.ErrCodeProtocol)
		}
		c.fr.WriteRSTStream(id, http2.ErrCodeStreamClosed)
		return true
	}
	if st.state != stateOpen {
		c.streamError(id, http2.ErrCodeStreamClosed)
		return true
	}
	if n > st.recvWindow {
		c.streamError(id, http2.ErrCodeFlowControl)
		return true
	}
	st.recvWindow -= n
	if end && st.req.bodyLen == 0 && len(data) <= maxStoredBody {
		// The whole body is in this frame: the handler reads it where it lies.
		st.req.body, st.req.bodyLen = data, len(data)
		return c.endRequest(st)
	}
	st.req.bodyLen += len(data)
	if room := maxStoredBody - len(st.bodyBuf); room > 0 {
		st.bodyBuf = append(st.bodyBuf, data[:min(room, len(data))]...)
	}
	st.req.body = st.bodyBuf
	if end {
		return c.endRequest(st)
	}
	st.recvUnacked += int(n)
	if st.recvUnacked >= initialStreamWindow/2 {
		c.fr.WriteWindowUpdate(id, uint32(st.recvUnacked))
		st.recvWindow += int64(st.recvUnacked)
		st.recvUnacked = 0
	}
	return true
}

// endRequest hands a complete request to the handler and writes or schedules its answer.
func (c *h2conn) endRequest(st *h2stream) bool {
	st.state = stateHalfClosedRemote
	if st.contentLength >= 0 && st.contentLength != int64(st.req.bodyLen) {
		c.streamError(st.id, http2.ErrCodeProtocol)
		return true
	}
	st.req.streamID = st.id
	st.req.at = c.now()
	w := &c.resp
	w.reset()
	c.srv.handler.serve(c, &st.req, w)
	c.lastHandled = st.id
	if w.action == actionReset {
		c.resetConn()
		return false
	}
	if w.delay > 0 {
		c.schedule(st, w)
		return true
	}
	c.writeResponse(st, w.status, w.header, w.body)
	if w.action == actionGoAway {
		// Every stream received so far is processed and answered, so GOAWAY names the
		// highest one: a client resends only streams above it, and none of those was
		// counted here (naming st.id would make it resend answered pushes).
		c.goAway(c.maxClientID)
	}
	return true
}

// statusText returns the decimal form of an HTTP status without allocating after first use.
func (c *h2conn) statusText(code int) string {
	if code < 100 || code >= len(c.statusSt) {
		return strconv.Itoa(code)
	}
	if c.statusSt[code] == "" {
		c.statusSt[code] = strconv.Itoa(code)
	}
	return c.statusSt[code]
}

// writeResponse writes HEADERS and as much of body as flow control allows. The header block
// uses only the static table and literals without indexing, so it costs no table upkeep.
func (c *h2conn) writeResponse(st *h2stream, status int, header []hpack.HeaderField, body []byte) {
	b := c.out.b
	at := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, 0) // frame header, filled in below
	if i := staticStatus(status); i > 0 {
		b = append(b, 0x80|byte(i))
	} else {
		b = appendHpackInt(b, 4, 0x00, 8) // literal, name :status
		b = appendHpackString(b, c.statusText(status))
	}
	for _, hf := range header {
		b = appendHpackLiteral(b, hf.Name, hf.Value)
	}
	if len(body) > 0 {
		b = appendHpackInt(b, 4, 0x00, 28) // literal, name content-length
		b = appendHpackInt(b, 7, 0, uint64(ndigits(len(body))))
		b = strconv.AppendInt(b, int64(len(body)), 10)
	}
	flags := http2.FlagHeadersEndHeaders
	if len(body) == 0 {
		flags |= http2.FlagHeadersEndStream
	}
	putFrameHeader(b[at:], len(b)-at-9, http2.FrameHeaders, flags, st.id)
	c.out.b = b
	if len(body) == 0 {
		c.closeStream(st)
		return
	}
	if n := int64(len(body)); n <= st.sendWindow && n <= c.sendWindow && n <= int64(c.peerMaxFrame) {
		// The usual case: the whole body fits in the windows and one frame.
		c.writeData(st, true, body)
		c.closeStream(st)
		return
	}
	st.pending = append(st.pending[:0], body...)
	c.sendData(st)
}

// putFrameHeader writes a frame header (RFC 9113 4.1) into the first 9 bytes of dst.
func putFrameHeader(dst []byte, length int, typ http2.FrameType, flags http2.Flags, id uint32) {
	_ = dst[8]
	dst[0], dst[1], dst[2] = byte(length>>16), byte(length>>8), byte(length)
	dst[3], dst[4] = byte(typ), byte(flags)
	dst[5], dst[6], dst[7], dst[8] = byte(id>>24), byte(id>>16), byte(id>>8), byte(id)
}

// writeData writes one DATA frame of st and takes it from the flow-control windows.
func (c *h2conn) writeData(st *h2stream, end bool, data []byte) {
	var flags http2.Flags
	if end {
		flags = http2.FlagDataEndStream
	}
	at := len(c.out.b)
	c.out.b = append(c.out.b, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	putFrameHeader(c.out.b[at:], len(data), http2.FrameData, flags, st.id)
	c.out.b = append(c.out.b, data...)
	st.sendWindow -= int64(len(data))
	c.sendWindow -= int64(len(data))
}

func ndigits(n int) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}

// sendData writes pending response data within the flow-control windows.
func (c *h2conn) sendData(st *h2stream) {
	for len(st.pending) > 0 {
		n := min(int64(len(st.pending)), st.sendWindow, c.sendWindow, int64(c.peerMaxFrame))
		if n <= 0 {
			if !st.blocked {
				st.blocked = true
				c.blocked = append(c.blocked, st)
			}
			return
		}
		end := n == int64(len(st.pending))
		c.writeData(st, end, st.pending[:n])
		st.pending = st.pending[n:]
		if end {
			st.pending = st.pending[:0]
			c.closeStream(st)
			return
		}
	}
}

// sendBlocked retries streams waiting for window.
func (c *h2conn) sendBlocked() {
	if len(c.blocked) == 0 {
		return
	}
	list := append([]*h2stream(nil), c.blocked...)
	c.blocked = c.blocked[:0]
	for _, st := range list {
		st.blocked = false
		if c.streams.get(st.id) == st {
			c.sendData(st)
		}
	}
}

// goAway sends GOAWAY naming last as the last stream processed (it must not be below any
// stream the mock has counted or will answer); the connection closes when the remaining
// streams are answered.
func (c *h2conn) goAway(last uint32) {
	if c.goAwaySent {
		return
	}
	c.goAwaySent = true
	c.goAwayLast = last
	c.fr.WriteGoAway(last, http2.ErrCodeNo, nil)
	if c.streams.n == 0 {
		c.drain()
	}
}

// drain ends a connection that sent GOAWAY and has no streams left: it flushes and lets the
// read loop end at the client's EOF or after drainTimeout. It does not half-close: a client
// that reads EOF (a TLS close_notify) before it has matched every answer fails the pushes
// still waiting, and they would be sent again although the mock answered them.
func (c *h2conn) drain() {
	c.flushLocked()
	c.nc.SetReadDeadline(time.Now().Add(drainTimeout))
}

// resetConn aborts the TCP connection with RST.
func (c *h2conn) resetConn() {
	resetNetConn(c.nc)
	c.dead = true
}

// resetNetConn closes nc (or the TCP connection under a TLS one) with RST.
func resetNetConn(nc net.Conn) {
	if t, ok := nc.(interface{ NetConn() net.Conn }); ok {
		nc = t.NetConn()
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	nc.Close()
}

// adjustStreams advertises a new MAX_CONCURRENT_STREAMS. A lower limit is enforced once the
// client acknowledges it; a higher one at once.
func (c *h2conn) adjustStreams(n uint32) {
	if n == c.advertised {
		return
	}
	c.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: n})
	if n > c.enforced {
		c.enforced = n
	}
	c.unacked = append(c.unacked, max(n, c.enforced))
	c.advertised = n
}

// schedule queues a delayed answer in the connection's timer heap, starting the timer
// goroutine on first use.
func (c *h2conn) schedule(st *h2stream, w *response) {
	header := make([]hpack.HeaderField, len(w.header))
	for i, hf := range w.header {
		// Values may alias per-connection buffers (the apns-id) that the next request reuses.
		header[i] = hpack.HeaderField{Name: hf.Name, Value: strings.Clone(hf.Value), Sensitive: hf.Sensitive}
	}
	d := &delayed{due: time.Now().Add(w.delay), st: st, gen: st.gen, status: w.status,
		header: header, body: append([]byte(nil), w.body...), action: w.action}
	st.scheduled = true
	heap.Push(&c.delays, d)
	if !c.timerOn {
		c.timerOn = true
		c.timerWG.Add(1)
		go c.runTimers()
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// runTimers writes delayed answers when due; it ends with the connection.
func (c *h2conn) runTimers() {
	defer c.timerWG.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		c.mu.Lock()
		now := time.Now()
		wrote := false
		for len(c.delays) > 0 && !c.delays[0].due.After(now) {
			d := heap.Pop(&c.delays).(*delayed)
			if d.st.gen != d.gen || c.streams.get(d.st.id) != d.st {
				continue
			}
			d.st.scheduled = false
			c.writeResponse(d.st, d.status, d.header, d.body)
			if d.action == actionGoAway {
				c.goAway(c.maxClientID)
			}
			wrote = true
		}
		if wrote {
			c.flushLocked()
		}
		next := time.Hour
		if len(c.delays) > 0 {
			next = c.delays[0].due.Sub(now)
		}
		c.mu.Unlock()
		t.Reset(next)
		select {
		case <-c.done:
			return
		case <-c.wake:
		case <-t.C:
		}
	}
}

// rng returns the connection's random generator (IDs only, never fault decisions).
func (c *h2conn) rng() *rand.Rand {
	if c.rnd == nil {
		c.rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return c.rnd
}
