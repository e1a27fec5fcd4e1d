package burst

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/provider"
	"golang.org/x/net/http2"
)

// Flow-control windows this client grants: responses are small, so streams get a large
// window once and the connection window is topped up in big steps.
const (
	recvStreamWindow = 1 << 20
	recvConnWindow   = 1 << 30
	// maxOutBuffer bounds the bytes one write gathers before it goes to the socket.
	maxOutBuffer = 256 << 10
	// maxErrorBody bounds the response body kept for classification.
	maxErrorBody = 8 << 10
	// defaultPeerStreams is the stream limit assumed until the server's SETTINGS arrive.
	defaultPeerStreams = 100
	// tableSize is the HPACK dynamic table the client uses for requests (the protocol
	// default, lowered when the server announces less).
	tableSize = 4096
)

// stream is one request in flight; streams are reused through conn.free.
type stream struct {
	id      uint32
	it      item
	sentAt  time.Time
	sendWin int64
	// pend is body still waiting for flow-control credit.
	pend       []byte
	pendOff    int
	status     int
	retryAfter []byte
	body       []byte
	final      bool // final (non-1xx) headers seen
}

// conn is one HTTP/2 connection. Three goroutines serve it: the writer (the slot's own, in
// run), the reader and the ticker (PING keepalive, request timeouts); run starts the other
// two and waits for them. State is guarded by mu; only the writer writes to the socket.
type conn struct {
	p    *pool
	nc   net.Conn
	wake chan struct{}
	out  []byte
	fw   *http2.Framer // control frames into out

	mu       sync.Mutex
	streams  streamTable
	scratch  []*stream // for going through streams while removing some
	free     []*stream
	blocked  []*stream
	nextID   uint32
	maxPeer  int // server's MAX_CONCURRENT_STREAMS
	sendWin  int64
	initWin  int64
	maxFrame int
	peerTbl  int // server's SETTINGS_HEADER_TABLE_SIZE
	// installed is the template in the server's HPACK table (nil: none or unknown).
	installed     *headerTemplate
	installedKey  []byte
	settingsAcks  int
	pingAcks      [][8]byte
	pingOut       bool
	pingSent      time.Time
	recvUnacked   int64
	rsts          []uint32
	goAway        bool
	goAwayLast    uint32
	dead          bool
	deadErr       error
	served        bool
	freed         bool   // a stream ended: the writer may start more
	hdrBlock      []byte // HEADERS + CONTINUATION fragments being gathered
	hdrStream     uint32
	hdrEnd        bool
	dec           *respDecoder
	cur           *stream // target of the header block being decoded
	emitFn        func(name, value []byte)
	closedCh      chan struct{}
	takeBuf       []item
	usersBuf      []*call
	tmplScratch   []byte
	lastDeadlineT time.Time
	// now is when the reader last read from the socket: the time of the answers it handles.
	now time.Time
}

// dial opens, handshakes and greets a connection.
func dial(ctx context.Context, p *pool, wake chan struct{}) (*conn, error) {
	cfg := p.cfg
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{KeepAlive: 15 * time.Second}, Config: cfg.tls}
	nc, err := d.DialContext(ctx, "tcp", cfg.addr)
	if err != nil {
		return nil, fmt.Errorf("burst: dial %s: %w", cfg.addr, err)
	}
	if proto := nc.(*tls.Conn).ConnectionState().NegotiatedProtocol; proto != "h2" {
		nc.Close()
		return nil, fmt.Errorf("burst: dial %s: server chose ALPN %q, not h2", cfg.addr, proto)
	}
	c := &conn{p: p, nc: nc, wake: wake, nextID: 1,
		maxPeer: defaultPeerStreams, sendWin: 65535, initWin: 65535, maxFrame: 16384,
		peerTbl: tableSize, dec: newRespDecoder(tableSize), closedCh: make(chan struct{})}
	c.emitFn = c.emit
	c.fw = http2.NewFramer(appendWriter{&c.out}, nil)
	c.out = append(c.out, http2.ClientPreface...)
	c.fw.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: recvStreamWindow})
	c.fw.WriteWindowUpdate(0, recvConnWindow-65535)
	if _, err := nc.Write(c.out); err != nil {
		nc.Close()
		return nil, fmt.Errorf("burst: greet %s: %w", cfg.addr, err)
	}
	c.out = c.out[:0]
	return c, nil
}

// notify wakes the writer.
func (c *conn) notify() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// run serves the connection until it dies and reports whether it answered anything.
func (c *conn) run() bool {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		c.readLoop()
	}()
	go func() {
		defer wg.Done()
		c.tickLoop()
	}()
	c.writeLoop()
	wg.Wait()
	return c.served
}

// kill ends the connection: every stream the server may have processed gets a Transient
// result, the others go back to the pool's queue.
func (c *conn) kill(err error) {
	c.mu.Lock()
	c.killLocked(err)
	c.mu.Unlock()
}

func (c *conn) killLocked(err error) {
	if c.dead {
		return
	}
	c.dead, c.deadErr = true, err
	close(c.closedCh)
	c.nc.Close()
	reason := transportReason(err)
	if c.goAway {
		reason = provider.ReasonGoAway
	}
	now := time.Now()
	var again []item
	c.scratch = c.streams.appendAll(c.scratch[:0])
	for _, st := range c.scratch {
		if c.goAway && st.id > c.goAwayLast {
			again = append(again, st.it)
		} else {
			st.it.c.finish(st.it.idx, sender.Result{Outcome: sender.Transient, Reason: reason, At: now})
		}
		c.streams.del(st.id)
	}
	clear(c.scratch)
	c.blocked = c.blocked[:0]
	c.p.requeue(again, reason)
}

// writeLoop gathers frames and writes them until the connection dies.
func (c *conn) writeLoop() {
	for {
		more, ok := c.fill()
		if len(c.out) > 0 {
			if _, err := c.nc.Write(c.out); err != nil {
				c.kill(err)
				return
			}
			if cap(c.out) > 4*maxOutBuffer {
				c.out = nil
			}
			c.out = c.out[:0]
		}
		if !ok {
			return
		}
		if more {
			continue
		}
		select {
		case <-c.wake:
		case <-c.closedCh:
			return
		}
	}
}

// fill appends pending frames to c.out. more reports that it stopped for the buffer size;
// ok is false once the connection is dead.
func (c *conn) fill() (more, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return false, false
	}
	for ; c.settingsAcks > 0; c.settingsAcks-- {
		c.fw.WriteSettingsAck()
	}
	for _, d := range c.pingAcks {
		c.fw.WritePing(true, d)
	}
	c.pingAcks = c.pingAcks[:0]
	if c.pingOut && c.pingSent.IsZero() {
		c.pingSent = time.Now()
		c.fw.WritePing(false, [8]byte{'b', 'u', 'r', 's', 't'})
	}
	for _, id := range c.rsts {
		c.fw.WriteRSTStream(id, http2.ErrCodeCancel)
	}
	c.rsts = c.rsts[:0]
	if c.recvUnacked >= recvConnWindow/2 {
		c.fw.WriteWindowUpdate(0, uint32(c.recvUnacked))
		c.recvUnacked = 0
	}
	c.sendBlocked()
	if c.goAway {
		if c.streams.len() == 0 {
			c.killLocked(errGoAwayDone)
			return false, len(c.out) > 0
		}
		return false, true
	}
	free := c.maxPeer - c.streams.len()
	if m := c.p.cfg.maxStreams; m > 0 {
		free = min(free, m-c.streams.len())
	}
	if free <= 0 || c.nextID >= 1<<31-1 {
		return false, true
	}
	// Bound one gathering so that writes stay moderate.
	free = min(free, 512)
	var users []*call
	c.takeBuf, users = c.p.take(c.takeBuf[:0], free, c.usersBuf[:0])
	now := time.Now()
	for _, it := range c.takeBuf {
		c.start(it, now)
	}
	for i, u := range users {
		u.users.Done()
		users[i] = nil
	}
	c.usersBuf = users[:0]
	more = len(c.takeBuf) == free && len(c.out) < maxOutBuffer
	return more, true
}

// errGoAwayDone ends a connection whose last stream was answered after GOAWAY.
var errGoAwayDone = errors.New("burst: connection drained after GOAWAY")

// start writes the HEADERS and DATA of one notification.
func (c *conn) start(it item, now time.Time) {
	req := it.c.req
	token := it.c.tokens[it.idx]
	if req.bad != nil {
		if r, bad := req.bad(token); bad {
			it.c.finish(it.idx, r)
			return
		}
	}
	var st *stream
	if n := len(c.free); n > 0 {
		st, c.free = c.free[n-1], c.free[:n-1]
	} else {
		st = &stream{}
	}
	st.id, st.it, st.sentAt, st.sendWin = c.nextID, it, now, c.initWin
	st.status, st.final = 0, false
	st.retryAfter, st.body, st.pend, st.pendOff = st.retryAfter[:0], st.body[:0], st.pend[:0], 0
	c.nextID += 2
	c.streams.put(st)

	bodyLen := len(req.body)
	if req.bodySplice {
		bodyLen += len(token) + len(req.bodySuffix)
	}
	// Header block: table size updates when the template is (re)installed, :path (a literal,
	// pseudo-header fields come first), the template, then content-length.
	blk := c.tmplScratch[:0]
	h := req.hdr
	tbl := min(c.peerTbl, tableSize)
	mode := 0 // 0 reuse, 1 install, 2 plain
	switch {
	case c.installed == h:
	case h.size <= tbl && c.installed != nil && bytes.Equal(c.installedKey, h.install):
		c.installed = h
	case h.size <= tbl:
		mode = 1
	default:
		mode = 2
	}
	if mode != 0 {
		blk = appendInt(blk, 5, 0x20, 0)
		blk = appendInt(blk, 5, 0x20, uint64(tbl))
	}
	if req.pathPrefix != "" {
		blk = appendInt(blk, 4, 0, staticPath)
		blk = appendInt(blk, 7, 0, uint64(len(req.pathPrefix)+len(token)))
		blk = append(blk, req.pathPrefix...)
		blk = append(blk, token...)
	}
	switch mode {
	case 0:
		blk = append(blk, h.reuse...)
	case 1:
		blk = append(blk, h.install...)
		c.installed = h
		c.installedKey = append(c.installedKey[:0], h.install...)
	case 2:
		// Too large for the table: send the fields as plain literals.
		blk = appendPlain(blk, h.install)
		c.installed = nil
	}
	blk = appendInt(blk, 4, 0, staticContentLength)
	var digits [20]byte
	d := appendUint(digits[:0], uint64(bodyLen))
	blk = appendInt(blk, 7, 0, uint64(len(d)))
	blk = append(blk, d...)
	c.tmplScratch = blk
	c.writeHeaders(st.id, blk, bodyLen == 0)
	if bodyLen == 0 {
		return
	}
	if int64(bodyLen) <= min(c.sendWin, st.sendWin) && bodyLen <= c.maxFrame {
		c.out = appendFrameHeader(c.out, bodyLen, http2.FrameData, http2.FlagDataEndStream, st.id)
		c.out = append(c.out, req.body...)
		if req.bodySplice {
			c.out = append(c.out, token...)
			c.out = append(c.out, req.bodySuffix...)
		}
		c.sendWin -= int64(bodyLen)
		st.sendWin -= int64(bodyLen)
		return
	}
	st.pend = append(st.pend, req.body...)
	if req.bodySplice {
		st.pend = append(st.pend, token...)
		st.pend = append(st.pend, req.bodySuffix...)
	}
	c.blocked = append(c.blocked, st)
	c.sendBlocked()
}

// appendPlain rewrites a template's install block as literals without indexing.
func appendPlain(dst, install []byte) []byte {
	for len(install) > 0 {
		b := install[0]
		if b&0x80 != 0 { // indexed static field
			dst = append(dst, b)
			install = install[1:]
			continue
		}
		// 01xxxxxx literal with incremental indexing: same layout with a 4-bit prefix.
		idx, rest, _ := readInt(install, 6)
		dst = appendInt(dst, 4, 0, idx)
		if idx == 0 {
			n, r2, _ := readInt(rest, 7)
			dst = append(dst, rest[:len(rest)-len(r2)+int(n)]...)
			rest = r2[n:]
		}
		n, r2, _ := readInt(rest, 7)
		dst = append(dst, rest[:len(rest)-len(r2)+int(n)]...)
		install = r2[n:]
	}
	return dst
}

// writeHeaders writes a header block as HEADERS and CONTINUATION frames.
func (c *conn) writeHeaders(id uint32, blk []byte, endStream bool) {
	flags := http2.Flags(0)
	if endStream {
		flags |= http2.FlagHeadersEndStream
	}
	typ := http2.FrameHeaders
	for {
		n := min(len(blk), c.maxFrame)
		f := flags
		if n == len(blk) {
			f |= http2.FlagHeadersEndHeaders
		}
		c.out = appendFrameHeader(c.out, n, typ, f, id)
		c.out = append(c.out, blk[:n]...)
		blk = blk[n:]
		if len(blk) == 0 {
			return
		}
		typ, flags = http2.FrameContinuation, 0
	}
}

// sendBlocked writes what flow control now allows of the bodies waiting for credit.
func (c *conn) sendBlocked() {
	k := 0
	for _, st := range c.blocked {
		if c.streams.get(st.id) != st {
			continue // ended meanwhile
		}
		for st.pendOff < len(st.pend) && c.sendWin > 0 && st.sendWin > 0 {
			n := min(len(st.pend)-st.pendOff, c.maxFrame, int(min(c.sendWin, st.sendWin)))
			f := http2.Flags(0)
			if st.pendOff+n == len(st.pend) {
				f = http2.FlagDataEndStream
			}
			c.out = appendFrameHeader(c.out, n, http2.FrameData, f, st.id)
			c.out = append(c.out, st.pend[st.pendOff:st.pendOff+n]...)
			st.pendOff += n
			c.sendWin -= int64(n)
			st.sendWin -= int64(n)
		}
		if st.pendOff < len(st.pend) {
			c.blocked[k] = st
			k++
		}
	}
	clear(c.blocked[k:])
	c.blocked = c.blocked[:k]
}

// readLoop reads and handles frames until the connection dies. It reads the clock once per
// read from the socket (every answer in what one read brought shares that time), and wakes
// the writer once it has handled everything already read rather than after every frame, so
// that the writer fills the streams that many answers freed in one write.
func (c *conn) readLoop() {
	br := bufio.NewReaderSize(c.nc, 64<<10)
	fr := frameReader{r: br}
	wake := false
	for {
		buffered := br.Buffered()
		h, p, err := fr.next()
		if err != nil {
			c.kill(err)
			return
		}
		c.mu.Lock()
		if buffered < frameHeaderLen+int(h.length) { // the frame needed a read
			c.now = time.Now()
		}
		err = c.handle(h, p)
		wake = wake || len(c.pingAcks) > 0 || c.settingsAcks > 0 || len(c.blocked) > 0 || c.goAway ||
			c.recvUnacked >= recvConnWindow/2 || c.freed
		c.freed = false
		if err != nil {
			c.killLocked(err)
		}
		c.mu.Unlock()
		if err != nil {
			return
		}
		if wake && !frameBuffered(br) {
			c.notify()
			wake = false
		}
	}
}

// frameBuffered reports whether br holds a whole frame, which the reader can handle without
// waiting for the socket.
func frameBuffered(br *bufio.Reader) bool {
	if br.Buffered() < frameHeaderLen {
		return false // Peek would wait for the socket
	}
	hdr, err := br.Peek(frameHeaderLen)
	if err != nil {
		return false
	}
	return br.Buffered() >= frameHeaderLen+int(parseFrameHeader(hdr).length)
}

// Connection-level errors a server's frames can cause.
var (
	errProtocol = errors.New("burst: protocol error from server")
	errPush     = errors.New("burst: server sent PUSH_PROMISE with push disabled")
)

// handle processes one frame under c.mu.
func (c *conn) handle(h frameHeader, p []byte) error {
	if c.hdrBlock != nil && h.typ != http2.FrameContinuation {
		return errProtocol
	}
	switch h.typ {
	case http2.FrameData:
		c.recvUnacked += int64(h.length)
		if h.streamID == 0 {
			return errProtocol
		}
		data, err := unpad(p, h.flags)
		if err != nil {
			return err
		}
		st := c.streams.get(h.streamID)
		if st == nil {
			return nil
		}
		if st.status != 200 && len(st.body)+len(data) <= maxErrorBody {
			st.body = append(st.body, data...)
		}
		if h.flags&http2.FlagDataEndStream != 0 {
			c.complete(st)
		}
	case http2.FrameHeaders:
		if h.streamID == 0 {
			return errProtocol
		}
		frag, err := unpad(p, h.flags)
		if err != nil {
			return err
		}
		if h.flags&http2.FlagHeadersPriority != 0 {
			if len(frag) < 5 {
				return errProtocol
			}
			frag = frag[5:]
		}
		c.hdrStream, c.hdrEnd = h.streamID, h.flags&http2.FlagHeadersEndStream != 0
		if h.flags&http2.FlagHeadersEndHeaders == 0 {
			c.hdrBlock = append(c.tmplScratch[:0:0], frag...)
			return nil
		}
		return c.headerBlock(frag)
	case http2.FrameContinuation:
		if c.hdrBlock == nil || h.streamID != c.hdrStream {
			return errProtocol
		}
		c.hdrBlock = append(c.hdrBlock, p...)
		if h.flags&http2.FlagContinuationEndHeaders == 0 {
			return nil
		}
		blk := c.hdrBlock
		c.hdrBlock = nil
		return c.headerBlock(blk)
	case http2.FrameRSTStream:
		if len(p) != 4 || h.streamID == 0 {
			return errProtocol
		}
		st := c.streams.get(h.streamID)
		if st == nil {
			return nil
		}
		c.drop(st)
		if http2.ErrCode(binary.BigEndian.Uint32(p)) == http2.ErrCodeRefusedStream {
			c.p.requeue([]item{st.it}, provider.ReasonStreamReset)
		} else {
			st.it.c.finish(st.it.idx, sender.Result{Outcome: sender.Transient, Reason: provider.ReasonStreamReset, At: c.now})
		}
	case http2.FrameSettings:
		if h.streamID != 0 || len(p)%6 != 0 {
			return errProtocol
		}
		if h.flags&http2.FlagSettingsAck != 0 {
			return nil
		}
		for i := 0; i < len(p); i += 6 {
			v := binary.BigEndian.Uint32(p[i+2:])
			switch http2.SettingID(binary.BigEndian.Uint16(p[i:])) {
			case http2.SettingMaxConcurrentStreams:
				c.maxPeer = int(min(v, 1<<20))
				c.freed = true
			case http2.SettingInitialWindowSize:
				if v > 1<<31-1 {
					return errProtocol
				}
				delta := int64(v) - c.initWin
				c.initWin = int64(v)
				c.scratch = c.streams.appendAll(c.scratch[:0])
				for _, st := range c.scratch {
					st.sendWin += delta
				}
				clear(c.scratch)
			case http2.SettingMaxFrameSize:
				if v < 16384 || v > 1<<24-1 {
					return errProtocol
				}
				c.maxFrame = int(v)
			case http2.SettingHeaderTableSize:
				if int(v) != c.peerTbl {
					c.peerTbl = int(v)
					c.installed, c.installedKey = nil, c.installedKey[:0]
				}
			}
		}
		c.settingsAcks++
	case http2.FramePushPromise:
		return errPush
	case http2.FramePing:
		if len(p) != 8 || h.streamID != 0 {
			return errProtocol
		}
		if h.flags&http2.FlagPingAck != 0 {
			c.pingOut, c.pingSent = false, time.Time{}
			return nil
		}
		if len(c.pingAcks) < 16 {
			c.pingAcks = append(c.pingAcks, [8]byte(p))
		}
	case http2.FrameGoAway:
		if len(p) < 8 || h.streamID != 0 {
			return errProtocol
		}
		last := binary.BigEndian.Uint32(p) & (1<<31 - 1)
		if !c.goAway || last < c.goAwayLast {
			c.goAway, c.goAwayLast = true, last
		}
		var again []item
		c.scratch = c.streams.appendAll(c.scratch[:0])
		for _, st := range c.scratch {
			if st.id > c.goAwayLast {
				again = append(again, st.it)
				c.drop(st)
			}
		}
		clear(c.scratch)
		c.p.requeue(again, provider.ReasonGoAway)
	case http2.FrameWindowUpdate:
		if len(p) != 4 {
			return errProtocol
		}
		inc := int64(binary.BigEndian.Uint32(p) & (1<<31 - 1))
		if h.streamID == 0 {
			c.sendWin += inc
		} else if st := c.streams.get(h.streamID); st != nil {
			st.sendWin += inc
		}
	}
	return nil
}

// headerBlock decodes a complete header block for c.hdrStream. Every block is decoded,
// also for streams already ended, to keep the HPACK table in step with the server.
func (c *conn) headerBlock(blk []byte) error {
	st := c.streams.get(c.hdrStream)
	if st != nil && !st.final {
		c.cur = st
	}
	err := c.dec.decode(blk, c.emitFn)
	c.cur = nil
	if err != nil {
		return err
	}
	if st == nil {
		return nil
	}
	if !st.final {
		if st.status >= 200 {
			st.final = true
		} else if !c.hdrEnd {
			st.status = 0 // informational: wait for the final answer
		}
	}
	if c.hdrEnd {
		c.complete(st)
	}
	return nil
}

// emit receives one response header field of c.cur.
func (c *conn) emit(name, value []byte) {
	st := c.cur
	if st == nil || st.final {
		return
	}
	switch string(name) {
	case ":status":
		st.status = atoi3(value)
	case "retry-after":
		st.retryAfter = append(st.retryAfter[:0], value...)
	}
}

// atoi3 parses a 3-digit status; anything else is 0.
func atoi3(b []byte) int {
	if len(b) != 3 {
		return 0
	}
	n := 0
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0
		}
		n = n*10 + int(ch-'0')
	}
	return n
}

// complete ends a stream with its answer.
func (c *conn) complete(st *stream) {
	c.drop(st)
	c.served = true
	var r sender.Result
	if !st.final {
		r = sender.Result{Outcome: sender.Transient, Reason: provider.ReasonBadResponse, At: c.now}
	} else {
		r = c.p.prov.result(st.status, st.body, st.retryAfter, c.now)
	}
	st.it.c.finish(st.it.idx, r)
}

// drop removes a stream and keeps it for reuse.
func (c *conn) drop(st *stream) {
	c.streams.del(st.id)
	c.free = append(c.free, st)
	c.freed = true
}

// tickLoop sends PING keepalives, closes a connection whose PING goes unanswered, and ends
// requests older than the timeout.
func (c *conn) tickLoop() {
	period := min(c.p.cfg.timeout/4, time.Second)
	t := time.NewTicker(period)
	defer t.Stop()
	lastPing := time.Now()
	for {
		select {
		case <-c.closedCh:
			return
		case now := <-t.C:
			c.mu.Lock()
			switch {
			case c.pingOut && !c.pingSent.IsZero() && now.Sub(c.pingSent) > c.p.cfg.timeout:
				c.killLocked(errPingTimeout)
			case !c.pingOut && now.Sub(lastPing) >= c.p.cfg.ping:
				c.pingOut, lastPing = true, now
			}
			c.scratch = c.streams.appendAll(c.scratch[:0])
			for _, st := range c.scratch {
				if now.Sub(st.sentAt) > c.p.cfg.timeout {
					id := st.id
					c.drop(st)
					c.rsts = append(c.rsts, id)
					st.it.c.finish(st.it.idx, sender.Result{Outcome: sender.Transient, Reason: provider.ReasonTimeout, At: now})
				}
			}
			clear(c.scratch)
			c.mu.Unlock()
			c.notify()
		}
	}
}

// errPingTimeout ends a connection whose PING got no answer within the timeout.
var errPingTimeout = fmt.Errorf("burst: ping: %w", context.DeadlineExceeded)
