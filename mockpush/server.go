package mockpush

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Server runs the mock APNs server, the mock FCM server (with its OAuth2 token endpoint)
// and the control API. Start it with Start and stop it with Close.
type Server struct {
	cfg       Config
	creds     *credentials
	ready     Ready
	dir       string
	removeDir bool

	apns, fcm       *ledger
	apnsInj, fcmInj *injector
	// apnsGate and fcmGate are the mocks' listeners, which the unreachable fault closes.
	apnsGate, fcmGate *gate
	apnsH             *apnsHandler
	fcmH              *fcmHandler
	apnsSrv, fcmSrv   *h2server
	h1                *http.Server
	h1ln              *chanListener
	control           *http.Server

	mu     sync.Mutex
	faults Faults

	listeners []net.Listener
	wg        sync.WaitGroup
	stopCtx   func() bool
	closeOnce sync.Once
	closeErr  error
}

// Start generates fresh credentials, starts both mocks and the control API, and returns once
// they accept connections. They run until Close is called or ctx is cancelled; Close must be
// called in both cases to release everything (it is idempotent).
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg}
	if err := s.start(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) start(ctx context.Context) error {
	cfg := s.cfg
	now := cfg.now()
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "salvo-mockpush-")
		if err != nil {
			return fmt.Errorf("mockpush: temp dir: %w", err)
		}
		s.dir, s.removeDir = d, true
	} else {
		d, err := filepath.Abs(cfg.Dir)
		if err != nil {
			return fmt.Errorf("mockpush: dir: %w", err)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("mockpush: dir: %w", err)
		}
		s.dir = d
	}
	var lc net.ListenConfig
	listen := func(addr string, g **gate) (net.Listener, error) {
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("mockpush: listen %s: %w", addr, err)
		}
		if g != nil {
			*g = newGate(ln)
			ln = *g
		}
		s.listeners = append(s.listeners, ln)
		return ln, nil
	}
	apnsLn, err := listen(cfg.APNsAddr, &s.apnsGate)
	if err != nil {
		return err
	}
	fcmLn, err := listen(cfg.FCMAddr, &s.fcmGate)
	if err != nil {
		return err
	}
	ctlLn, err := listen(cfg.ControlAddr, nil)
	if err != nil {
		return err
	}
	fcmURL := "https://" + fcmLn.Addr().String()
	s.creds, err = generateCredentials(s.dir, cfg.FCMProject, fcmURL+fcmTokenPath, now)
	if err != nil {
		return err
	}
	s.ready = Ready{
		APNsURL:               "https://" + apnsLn.Addr().String(),
		FCMURL:                fcmURL,
		OAuthTokenURL:         fcmURL + fcmTokenPath,
		ControlURL:            "http://" + ctlLn.Addr().String(),
		CAFile:                s.creds.caFile,
		APNsKeyID:             s.creds.apnsKeyID,
		APNsTeamID:            cfg.APNsTeamID,
		APNsKeyFile:           s.creds.apnsKeyFile,
		APNsTopic:             cfg.APNsTopic,
		FCMProjectID:          cfg.FCMProject,
		FCMServiceAccountFile: s.creds.saFile,
	}

	s.initMocks(now, s.creds.apnsKeyID, &s.creds.apnsKey.PublicKey)
	s.h1ln = newChanListener(fcmLn.Addr())
	s.h1 = &http.Server{
		Handler:           http.HandlerFunc(s.serveFCMHTTP1),
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, h1PeerKey{}, &h1Peer{})
		},
		ErrorLog: nil,
	}
	s.control = &http.Server{Handler: s.controlHandler(), ReadHeaderTimeout: 10 * time.Second}

	cert := s.creds.serverCert
	apnsTLS := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12}
	fcmTLS := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12}
	s.wg.Add(4)
	go func() { defer s.wg.Done(); s.acceptLoop(apnsLn, apnsTLS, s.apnsSrv, false) }()
	go func() { defer s.wg.Done(); s.acceptLoop(fcmLn, fcmTLS, s.fcmSrv, true) }()
	go func() { defer s.wg.Done(); s.h1.Serve(s.h1ln) }()
	go func() { defer s.wg.Done(); s.control.Serve(ctlLn) }()
	s.stopCtx = context.AfterFunc(ctx, func() { s.Close() })
	return nil
}

// initMocks builds what both mocks run on, from s.cfg: ledgers, fault injectors, handlers
// (the APNs one trusting the key keyID, pub besides cfg.APNsKeys) and HTTP/2 cores.
func (s *Server) initMocks(now time.Time, keyID string, pub *ecdsa.PublicKey) {
	cfg := s.cfg
	s.apns, s.fcm = newLedger(now), newLedger(now)
	if cfg.KeepAccepted {
		s.apns.keepAccepted()
		s.fcm.keepAccepted()
	}
	s.apnsInj = newInjector(apnsInjectable, "ServiceUnavailable")
	s.fcmInj = newInjector(fcmInjectable, "UNAVAILABLE")
	s.setFaults(cfg.Faults, now)

	keys := map[string]apnsKeyEntry{keyID: {teamID: cfg.APNsTeamID, pub: pub}}
	for _, k := range cfg.APNsKeys {
		keys[k.KeyID] = apnsKeyEntry{teamID: k.TeamID, pub: k.Public}
	}
	var tag [8]byte
	for i := range tag {
		tag[i] = byte(rand.Uint32())
	}
	s.apnsH = &apnsHandler{s: s, keys: keys}
	s.fcmH = &fcmHandler{s: s, msgTag: hex.EncodeToString(tag[:])}
	apnsInitial := func() uint32 {
		if s.apnsInj.oneStream.Load() {
			return 1
		}
		return cfg.MaxConcurrentStreams
	}
	s.apnsSrv = newH2Server(s.apnsH, cfg.MaxConcurrentStreams, apnsInitial, cfg.now)
	s.fcmSrv = newH2Server(s.fcmH, cfg.MaxConcurrentStreams, func() uint32 { return cfg.MaxConcurrentStreams }, cfg.now)
}

// acceptLoop accepts TLS connections and hands each to the HTTP/2 core, or, when h1 is set
// and the client did not negotiate h2, to the HTTP/1.1 server.
func (s *Server) acceptLoop(ln net.Listener, cfg *tls.Config, h2 *h2server, h1 bool) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if tc, ok := nc.(*net.TCPConn); ok {
				tc.SetNoDelay(true)
			}
			conn := tls.Server(nc, cfg)
			hctx, cancel := context.WithTimeout(context.Background(), prefaceTimeout)
			err := conn.HandshakeContext(hctx)
			cancel()
			if err != nil {
				nc.Close()
				return
			}
			switch proto := conn.ConnectionState().NegotiatedProtocol; {
			case proto == "h2":
				h2.run(conn)
			case h1:
				if !s.h1ln.hand(conn) {
					conn.Close()
				}
			default:
				conn.Close()
			}
		}()
	}
}

// Ready returns the ready-file content: URLs, credentials and identifiers.
func (s *Server) Ready() Ready { return s.ready }

// Dir is the folder holding the generated files.
func (s *Server) Dir() string { return s.dir }

// Stats returns the counts of both mocks and the process's resource use (as GET /stats).
func (s *Server) Stats() Stats {
	return Stats{APNs: s.apns.stats(), FCM: s.fcm.stats(), Process: processStats()}
}

// Receipts returns the accepted-arrival times of "apns" or "fcm".
func (s *Server) Receipts(platform string) (Receipts, error) {
	switch platform {
	case "apns":
		return s.apns.receipts(), nil
	case "fcm":
		return s.fcm.receipts(), nil
	}
	return Receipts{}, fmt.Errorf("mockpush: unknown platform %q (want apns or fcm)", platform)
}

// Reset clears counters, receipts and the FCM quota window, and starts a new receipts epoch
// (as POST /reset). Faults stay as they are.
func (s *Server) Reset() {
	now := s.cfg.now()
	s.apns.reset(now)
	s.fcm.reset(now)
	s.fcmH.quota.reset()
}

// SetFaults validates and replaces the fault injection (as PUT /faults). The random
// generators restart from f.Seed and outage windows are measured from now.
func (s *Server) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	s.setFaults(f, s.cfg.now())
	return nil
}

func (s *Server) setFaults(f Faults, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	s.apnsInj.set(f.APNs, f.Seed, 1, now)
	s.fcmInj.set(f.FCM, f.Seed, 2, now)
	s.apnsGate.schedule(f.APNs.Unreachable)
	s.fcmGate.schedule(f.FCM.Unreachable)
}

// Faults returns the fault injection in force.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Faults{Seed: s.faults.Seed, APNs: s.apnsInj.get(), FCM: s.fcmInj.get()}
}

// Close stops the servers: listeners close, every HTTP/2 connection gets GOAWAY with
// {"reason":"Shutdown"}, and Close waits for every goroutine. A temporary folder of generated
// files is removed. Close is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.stopCtx != nil {
			s.stopCtx()
		}
		for _, ln := range s.listeners {
			ln.Close()
		}
		if s.h1ln != nil {
			s.h1ln.Close()
		}
		if s.h1 != nil {
			s.h1.Close()
		}
		if s.control != nil {
			s.control.Close()
		}
		if s.apnsSrv != nil {
			s.apnsSrv.close()
		}
		if s.fcmSrv != nil {
			s.fcmSrv.close()
		}
		s.wg.Wait()
		if s.apnsSrv != nil {
			// Connections accepted while closing are served by run, which the close above
			// may have missed; close again now that no accept loop is left.
			s.apnsSrv.close()
			s.fcmSrv.close()
		}
		if s.removeDir {
			if err := os.RemoveAll(s.dir); err != nil {
				s.closeErr = fmt.Errorf("mockpush: close: %w", err)
			}
		}
	})
	return s.closeErr
}

// h1Peer is the per-connection state of an HTTP/1.1 FCM connection.
type h1Peer struct {
	mu sync.Mutex
	p  peerState
}

type h1PeerKey struct{}

// serveFCMHTTP1 adapts net/http to the FCM handler for clients that did not negotiate h2.
func (s *Server) serveFCMHTTP1(rw http.ResponseWriter, hr *http.Request) {
	peer, _ := hr.Context().Value(h1PeerKey{}).(*h1Peer)
	if peer == nil {
		peer = &h1Peer{}
	}
	body, err := io.ReadAll(io.LimitReader(hr.Body, maxStoredBody+1))
	if err != nil {
		return
	}
	r := request{method: hr.Method, path: hr.URL.Path, authority: hr.Host, body: body, bodyLen: len(body), at: s.cfg.now()}
	for name, vals := range hr.Header {
		lower := strings.ToLower(name)
		for _, v := range vals {
			r.fields = append(r.fields, hfield(lower, v))
		}
	}
	var w response
	peer.mu.Lock()
	s.fcmH.handle(&peer.p, &r, &w)
	peer.mu.Unlock()
	if w.action == actionReset {
		if hj, ok := rw.(http.Hijacker); ok {
			if nc, _, err := hj.Hijack(); err == nil {
				resetNetConn(nc)
			}
		}
		return
	}
	if w.delay > 0 {
		t := time.NewTimer(w.delay)
		select {
		case <-t.C:
		case <-hr.Context().Done():
			t.Stop()
			return
		}
	}
	for _, hf := range w.header {
		rw.Header().Add(hf.Name, hf.Value)
	}
	if w.action == actionGoAway {
		rw.Header().Set("Connection", "close")
	}
	rw.WriteHeader(w.status)
	rw.Write(w.body)
}

// chanListener is a net.Listener fed with connections already accepted and handshaken.
type chanListener struct {
	addr   net.Addr
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

// hand passes c to the listener's Accept; it reports false once the listener is closed.
func (l *chanListener) hand(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// gate is the listener of one mock's port, which the unreachable fault closes for a window:
// the port is closed (dials are refused) and every connection accepted on it is reset, then
// it listens again on the same address. Accept waits while the port is closed.
type gate struct {
	addr string

	mu      sync.Mutex
	ln      net.Listener  // nil while unreachable
	open    chan struct{} // closed when the port listens again (or the gate closes)
	closed  bool
	conns   map[net.Conn]struct{} // accepted connections, closed ones pruned now and then
	pruneAt int
	timers  []*time.Timer
	gen     int // counts schedule calls: a replaced window's timers do nothing
}

func newGate(ln net.Listener) *gate {
	open := make(chan struct{})
	close(open)
	return &gate{addr: ln.Addr().String(), ln: ln, open: open, conns: map[net.Conn]struct{}{}, pruneAt: 64}
}

// Accept returns the next connection, waiting while the port is closed by the fault.
func (g *gate) Accept() (net.Conn, error) {
	for {
		g.mu.Lock()
		ln, open, closed := g.ln, g.open, g.closed
		g.mu.Unlock()
		if closed {
			return nil, net.ErrClosed
		}
		if ln == nil {
			<-open
			continue
		}
		c, err := ln.Accept()
		g.mu.Lock()
		if g.ln != ln && !g.closed {
			// The port closed under Accept: drop what slipped in, wait for it to open.
			g.mu.Unlock()
			if err == nil {
				resetNetConn(c)
			}
			continue
		}
		if err == nil {
			g.track(c)
		}
		g.mu.Unlock()
		return c, err
	}
}

// track remembers c (g.mu held), forgetting closed connections once the set has doubled.
func (g *gate) track(c net.Conn) {
	g.conns[c] = struct{}{}
	if len(g.conns) < g.pruneAt {
		return
	}
	for k := range g.conns {
		if sc, ok := k.(syscall.Conn); ok {
			if rc, err := sc.SyscallConn(); err != nil || rc.Control(func(uintptr) {}) != nil {
				delete(g.conns, k) // closed
			}
		}
	}
	g.pruneAt = max(64, 2*len(g.conns))
}

// Close closes the port for good.
func (g *gate) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	for _, t := range g.timers {
		t.Stop()
	}
	if g.ln == nil {
		close(g.open)
		return nil
	}
	return g.ln.Close()
}

func (g *gate) Addr() net.Addr {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln != nil {
		return g.ln.Addr()
	}
	addr, _ := net.ResolveTCPAddr("tcp", g.addr)
	return addr
}

// schedule replaces the unreachable window: w counts from now. With no window (or one
// that starts later) the port listens at once; a window that starts now closes it before
// schedule returns.
func (g *gate) schedule(w Window) {
	if g == nil {
		return
	}
	g.mu.Lock()
	for _, t := range g.timers {
		t.Stop()
	}
	g.timers = nil
	g.gen++
	gen := g.gen
	g.mu.Unlock()
	if w.DurationMS <= 0 || w.StartAfterMS > 0 {
		g.reopen(gen)
	}
	if w.DurationMS <= 0 {
		return
	}
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	if w.StartAfterMS <= 0 {
		g.shut(gen)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if gen != g.gen {
		return // replaced meanwhile
	}
	if w.StartAfterMS > 0 {
		g.timers = append(g.timers, time.AfterFunc(ms(w.StartAfterMS), func() { g.shut(gen) }))
	}
	g.timers = append(g.timers, time.AfterFunc(ms(w.StartAfterMS+w.DurationMS), func() { g.reopen(gen) }))
}

// shut closes the port and resets every connection accepted on it, unless the window of
// generation gen was replaced meanwhile.
func (g *gate) shut(gen int) {
	g.mu.Lock()
	if g.closed || g.ln == nil || gen != g.gen {
		g.mu.Unlock()
		return
	}
	g.ln.Close()
	g.ln, g.open = nil, make(chan struct{})
	conns := g.conns
	g.conns, g.pruneAt = map[net.Conn]struct{}{}, 64
	g.mu.Unlock()
	for c := range conns {
		resetNetConn(c)
	}
}

// reopen listens again on the same address, unless the window of generation gen was
// replaced meanwhile. The port was free a moment ago; should another socket have taken it,
// reopen tries again every 50 ms until it succeeds or the gate closes (the mock then stays
// unreachable, which the run's counts show).
func (g *gate) reopen(gen int) {
	for {
		g.mu.Lock()
		if g.closed || g.ln != nil || gen != g.gen {
			g.mu.Unlock()
			return
		}
		ln, err := net.Listen("tcp", g.addr)
		if err == nil {
			g.ln = ln
			close(g.open)
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
}
