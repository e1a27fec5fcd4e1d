package mockpush

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// memConn holds the net.Conn methods of an in-memory connection that do nothing.
type memConn struct{}

func (memConn) Close() error                     { return nil }
func (memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (memConn) SetDeadline(time.Time) error      { return nil }
func (memConn) SetReadDeadline(time.Time) error  { return nil }
func (memConn) SetWriteDeadline(time.Time) error { return nil }

// scriptConn is a net.Conn that reads as a fixed byte stream, then EOF, and keeps what the
// server writes.
type scriptConn struct {
	memConn
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *scriptConn) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error) { return c.out.Write(p) }

// TestInterleavedRequests sends the header blocks of several APNs requests before their
// bodies, with Huffman-coded literals that are not indexed (they live in the decoder's
// buffers) and one block split over CONTINUATION frames, so that later blocks are decoded
// while earlier requests wait: every request must keep its own token and campaign.
func TestInterleavedRequests(t *testing.T) {
	s, r, bearer := newBenchServer(t)
	tokens := []string{strings.Repeat("1", 64), strings.Repeat("2", 64), strings.Repeat("3", 64), strings.Repeat("1", 64)}
	campaigns := []string{"c1", "c2", "c3", "c1"} // the last request repeats the first pair
	var in bytes.Buffer
	in.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&in, nil)
	fr.WriteSettings()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for i, tok := range tokens {
		hb.Reset()
		for _, f := range []hpack.HeaderField{
			{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "https"}, {Name: ":authority", Value: "mock"},
			{Name: ":path", Value: "/3/device/" + tok, Sensitive: true},
			{Name: "authorization", Value: "bearer " + bearer}, {Name: "apns-topic", Value: r.APNsTopic},
			{Name: "apns-push-type", Value: "background"}, {Name: "apns-priority", Value: "5"},
			{Name: "apns-collapse-id", Value: campaigns[i], Sensitive: true},
		} {
			enc.WriteField(f)
		}
		block, id := hb.Bytes(), uint32(2*i+1)
		if i == 1 {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block[:10]})
			fr.WriteContinuation(id, true, block[10:])
		} else {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true})
		}
	}
	for i := range tokens {
		fr.WriteData(uint32(2*i+1), true, []byte(`{"aps":{"content-available":1}}`))
	}
	conn := &scriptConn{in: bytes.NewReader(in.Bytes())}
	newH2Conn(s.apnsSrv, conn).serve()

	answers := map[uint32]string{}
	rd := http2.NewFramer(io.Discard, &conn.out)
	rd.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	for {
		f, err := rd.ReadFrame()
		if err != nil {
			break
		}
		if h, ok := f.(*http2.MetaHeadersFrame); ok {
			answers[h.StreamID] = h.PseudoValue("status")
		}
	}
	for i := range tokens {
		if st := answers[uint32(2*i+1)]; st != "200" {
			t.Errorf("request %d: status %q", i, st)
		}
	}
	if st := s.apns.stats(); st.Accepted != 4 || st.Unique != 3 || st.Duplicates != 1 {
		t.Fatalf("stats %+v, want 4 accepted, 3 unique, 1 duplicate", st)
	}
}
