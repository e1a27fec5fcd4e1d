package mockpush

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"testing"
	"time"

	jwt "github.com/golang-jwt/jwt/v5"

	"golang.org/x/net/http2"

	"github.com/salvopush/salvo/loadgen/h2flood"
)

// BenchmarkAPNsFlood floods the mock APNs from the same process with the lean client; one op
// is one accepted request. Whole-process CPU figures come from `salvo load` (docs/mockpush.md).
func BenchmarkAPNsFlood(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Dir = b.TempDir()
	s, err := Start(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := s.Ready()
	pool, err := r.CertPool()
	if err != nil {
		b.Fatal(err)
	}
	key := s.creds.apnsKey
	bearer := signES256ForBench(b, key, r.APNsKeyID, r.APNsTeamID)
	b.ReportAllocs()
	b.ResetTimer()
	res, err := h2flood.Run(context.Background(), h2flood.Config{
		URL: r.APNsURL, TLS: &tls.Config{RootCAs: pool}, Conns: 4, Streams: 500,
		Duration: time.Minute, MaxRequests: int64(b.N), PathPrefix: "/3/device/",
		Header: [][2]string{{"authorization", "bearer " + bearer}, {"apns-topic", r.APNsTopic},
			{"apns-push-type", "background"}, {"apns-priority", "5"}, {"apns-collapse-id", "bench"}},
		Body: []byte(`{"aps":{"content-available":1}}`),
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if res.Status[200] != int64(b.N) {
		b.Fatalf("accepted %d of %d: %+v", res.Status[200], b.N, res)
	}
}

func signES256ForBench(b testing.TB, key *ecdsa.PrivateKey, kid, team string) string {
	j := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": team, "iat": time.Now().Unix()})
	j.Header["kid"] = kid
	s, err := j.SignedString(key)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkAcceptedPath runs the handlers of both mocks on one accepted request each, with
// no network: what an accepted request costs once its frames are decoded.
func BenchmarkAcceptedPath(b *testing.B) {
	s, r, bearer := newBenchServer(b)
	const token = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000000000000010000000000000001"
	b.Run("apns", func(b *testing.B) {
		c := newH2Conn(s.apnsSrv, nil)
		req := request{method: "POST", path: "/3/device/" + token, body: []byte(`{"aps":{"content-available":1}}`),
			fields: []hpackField{hfield("authorization", "bearer "+bearer), hfield("apns-topic", r.APNsTopic),
				hfield("apns-push-type", "background"), hfield("apns-priority", "5"), hfield("apns-collapse-id", "bench")}}
		req.bodyLen = len(req.body)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			req.at = time.Now()
			c.resp.reset()
			s.apnsH.serve(c, &req, &c.resp)
			if c.resp.status != 200 {
				b.Fatalf("status %d: %s", c.resp.status, c.resp.body)
			}
		}
	})
	b.Run("fcm", func(b *testing.B) {
		access := "ya29.mock.bench"
		s.fcmH.tokens.add(access, time.Now().Add(time.Hour))
		body := []byte(`{"message":{"token":"` + token + `","data":{"campaign_id":"c"},"android":{"collapse_key":"bench","priority":"high"}}}`)
		req := request{method: "POST", path: "/v1/projects/" + r.FCMProjectID + "/messages:send", body: body, bodyLen: len(body),
			fields: []hpackField{hfield("content-type", "application/json"), hfield("authorization", "Bearer "+access)}}
		var p peerState
		var w response
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			req.at = time.Now()
			w.reset()
			s.fcmH.handle(&p, &req, &w)
			if w.status != 200 {
				b.Fatalf("status %d: %s", w.status, w.body)
			}
		}
	})
}

// BenchmarkConnAccepted runs one server connection of each mock on the frames `salvo load`
// sends (loadgen/h2flood), from memory instead of TLS: framing, HPACK, the checks, counting
// and receipts, and the answers, without encryption and syscalls. One op is one accepted
// request; cpu-ns/op is the process's CPU time (getrusage, garbage collection included).
func BenchmarkConnAccepted(b *testing.B) {
	s, r, bearer := newBenchServer(b)
	access := "ya29.mock.bench"
	s.fcmH.tokens.add(access, time.Now().Add(time.Hour))
	cases := []struct {
		name string
		srv  *h2server
		l    *ledger
		cfg  h2flood.Config
	}{
		{"apns", s.apnsSrv, s.apns, h2flood.Config{PathPrefix: "/3/device/",
			Header: [][2]string{{"authorization", "bearer " + bearer}, {"apns-topic", r.APNsTopic},
				{"apns-push-type", "background"}, {"apns-priority", "5"}, {"apns-collapse-id", "bench"}},
			Body: []byte(`{"aps":{"content-available":1}}`)}},
		{"fcm", s.fcmSrv, s.fcm, h2flood.Config{PathPrefix: "/v1/projects/" + r.FCMProjectID + "/messages:send", TokenInBody: true,
			Header: [][2]string{{"content-type", "application/json"}, {"authorization", "Bearer " + access}},
			Body:   []byte(`{"message":{"token":"`), BodySuffix: []byte(`","data":{"campaign_id":"bench"},"android":{"collapse_key":"bench","priority":"high"}}}`)}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			s.apns.reset(time.Now())
			s.fcm.reset(time.Now())
			feed := newFrameFeed(h2flood.NewRequests(tc.cfg, "127.0.0.1:443"), b.N)
			c := newH2Conn(tc.srv, feed)
			b.ReportAllocs()
			cpu0 := ReadProcessStats()
			b.ResetTimer()
			c.serve()
			b.StopTimer()
			if cpu1 := ReadProcessStats(); cpu0 != nil && cpu1 != nil {
				b.ReportMetric((cpu1.CPUSeconds-cpu0.CPUSeconds)*1e9/float64(b.N), "cpu-ns/op")
			}
			if st := tc.l.stats(); st.Accepted != int64(b.N) || st.Unique != int64(b.N) {
				b.Fatalf("accepted %d, unique %d of %d: %+v", st.Accepted, st.Unique, b.N, st)
			}
		})
	}
}

// newBenchServer builds both mocks without listeners or generated files (whose RSA key
// generation would swamp instruction counts of the benchmarks), with an APNs key of its own;
// it returns the mock, the part of its ready file the benchmarks use, and a provider token.
func newBenchServer(b testing.TB) (*Server, Ready, string) {
	cfg := DefaultConfig()
	cfg.FCMQuotaPerMinute = 1 << 40
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	s := &Server{cfg: cfg}
	s.initMocks(cfg.now(), "BENCHKEY01", &key.PublicKey)
	r := Ready{APNsKeyID: "BENCHKEY01", APNsTeamID: cfg.APNsTeamID, APNsTopic: cfg.APNsTopic, FCMProjectID: cfg.FCMProject}
	return s, r, signES256ForBench(b, key, r.APNsKeyID, r.APNsTeamID)
}

// frameFeed is a net.Conn that plays a client: it reads as the client preface, SETTINGS, a
// connection WINDOW_UPDATE and then n requests from reqs on streams 1, 3, 5..., in chunks of
// at most 16 KiB (as TLS records arrive), then EOF. The first feedPrebuilt requests are
// encoded before the benchmark starts; requests after the first are copies of one template
// with the stream and the token's sequence number patched in, so that the feed adds little
// to instruction counts of the whole process (valgrind). What the server writes is dropped.
type frameFeed struct {
	memConn
	reqs    *h2flood.Requests
	n, next int
	buf     []byte
	off     int
	// tmpl is a later request's frames: dataAt is where its DATA frame starts (0: none),
	// seqAt where the 16 hex digits of its sequence number are.
	tmpl          []byte
	dataAt, seqAt int
}

// feedPrebuilt is how many requests a frameFeed encodes in advance.
const feedPrebuilt = 200_000

// feedSeq is the sequence number of the template, to find its digits.
const feedSeq = 0xfedcba9876543210

func newFrameFeed(reqs *h2flood.Requests, n int) *frameFeed {
	var pre bytes.Buffer
	pre.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&pre, nil)
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
	fr.WriteWindowUpdate(0, 1<<30-65535)
	f := &frameFeed{reqs: reqs, n: n, buf: pre.Bytes()}
	f.tmpl = reqs.Append(nil, 1, 3, feedSeq)
	f.seqAt = bytes.Index(f.tmpl, []byte(fmt.Sprintf("%x", uint64(feedSeq))))
	if h := 9 + (int(f.tmpl[0])<<16 | int(f.tmpl[1])<<8 | int(f.tmpl[2])); h < len(f.tmpl) {
		f.dataAt = h
	}
	k := min(n, feedPrebuilt)
	f.buf = append(make([]byte, 0, len(f.buf)+k*len(f.tmpl)+(k>>16+1)*13+256), f.buf...)
	f.encode(k)
	return f
}

// encode appends the frames of up to k more requests to f.buf.
func (f *frameFeed) encode(k int) {
	const hexDigits = "0123456789abcdef"
	for end := min(f.n, f.next+k); f.next < end; {
		id := uint32(2*f.next + 1)
		if f.next == 0 {
			f.buf = f.reqs.Append(f.buf, 1, id, 0)
		} else {
			at := len(f.buf)
			f.buf = append(f.buf, f.tmpl...)
			r := f.buf[at:]
			binary.BigEndian.PutUint32(r[5:], id)
			if f.dataAt > 0 {
				binary.BigEndian.PutUint32(r[f.dataAt+5:], id)
			}
			for i, v := 15, uint64(f.next); i >= 0; i, v = i-1, v>>4 {
				r[f.seqAt+i] = hexDigits[v&0xf]
			}
		}
		f.next++
		if f.next%(1<<16) == 0 {
			// Give back about what 65536 answers take of the connection window.
			f.buf = append(f.buf, 0, 0, 4, 0x8, 0, 0, 0, 0, 0, 0, 0x40, 0, 0)
		}
	}
}

func (f *frameFeed) Read(p []byte) (int, error) {
	if f.off == len(f.buf) {
		if f.next == f.n {
			return 0, io.EOF
		}
		f.buf, f.off = f.buf[:0], 0
		f.encode(100)
	}
	n := copy(p, f.buf[f.off:min(len(f.buf), f.off+16<<10)])
	f.off += n
	return n, nil
}

func (f *frameFeed) Write(p []byte) (int, error) { return len(p), nil }
