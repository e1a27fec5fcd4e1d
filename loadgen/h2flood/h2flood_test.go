package h2flood

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

func TestHeaderBlockDecodes(t *testing.T) {
	cfg := Config{Method: "POST", PathPrefix: "/3/device/", Header: [][2]string{{"apns-topic", "com.example.app"}, {"apns-priority", "5"}}}
	p0, s0, p, s := headerBlocks(cfg, "127.0.0.1:443")
	var got []hpack.HeaderField
	d := hpack.NewDecoder(4096, func(f hpack.HeaderField) { got = append(got, f) })
	// The first request indexes the fields, the second refers to them.
	for i, block := range [][]byte{appendPath(nil, p0, s0, cfg.PathPrefix, 1, 2), appendPath(nil, p, s, cfg.PathPrefix, 1, 3)} {
		got = got[:0]
		if _, err := d.Write(block); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		for _, f := range got {
			b.WriteString(f.Name + "=" + f.Value + "\n")
		}
		want := ":method=POST\n:scheme=https\n:authority=127.0.0.1:443\n:path=/3/device/" +
			"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa0000000000000001000000000000000" + string(rune('2'+i)) + "\napns-topic=com.example.app\napns-priority=5\n"
		if b.String() != want {
			t.Fatalf("request %d: got\n%s\nwant\n%s", i, b.String(), want)
		}
	}
}

func TestHeaderBlockTokenInBody(t *testing.T) {
	cfg := Config{Method: "POST", PathPrefix: "/v1/projects/p/messages:send", TokenInBody: true,
		Header: [][2]string{{"content-type", "application/json"}, {"authorization", "Bearer x"}}}
	p0, s0, p, s := headerBlocks(cfg, "127.0.0.1:443")
	var got []hpack.HeaderField
	d := hpack.NewDecoder(4096, func(f hpack.HeaderField) { got = append(got, f) })
	// The first request indexes :authority, :path and the fields; the second refers to them.
	for i, block := range [][]byte{append(p0, s0...), append(p, s...)} {
		got = got[:0]
		if _, err := d.Write(block); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		for _, f := range got {
			b.WriteString(f.Name + "=" + f.Value + "\n")
		}
		want := ":method=POST\n:scheme=https\n:authority=127.0.0.1:443\n:path=/v1/projects/p/messages:send\n" +
			"content-type=application/json\nauthorization=Bearer x\n"
		if b.String() != want {
			t.Fatalf("request %d: got\n%s\nwant\n%s", i, b.String(), want)
		}
	}
}

// TestRequestsFrames reads the frames Requests writes with the x/net framer: two requests of
// one connection, the token in the path (APNs) and in the body (FCM).
func TestRequestsFrames(t *testing.T) {
	cases := []struct {
		name      string
		cfg       Config
		path, end string // :path and the end of the body
	}{
		{"token in path", Config{PathPrefix: "/3/device/", Header: [][2]string{{"apns-topic", "t"}}, Body: []byte(`{"aps":{}}`)},
			"/3/device/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000000000000070000000000000009", `{"aps":{}}`},
		{"token in body", Config{PathPrefix: "/v1/projects/p/messages:send", TokenInBody: true, Body: []byte(`{"t":"`), BodySuffix: []byte(`"}`)},
			"/v1/projects/p/messages:send", `00000000000000070000000000000009"}`},
	}
	for _, tc := range cases {
		r := NewRequests(tc.cfg, "127.0.0.1:443")
		var b []byte
		b = r.Append(b, 7, 1, 8)
		b = r.Append(b, 7, 3, 9)
		fr := http2.NewFramer(nil, bytes.NewReader(b))
		fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		for _, stream := range []uint32{1, 3} {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			h, ok := f.(*http2.MetaHeadersFrame)
			if !ok || h.StreamID != stream || h.PseudoValue("method") != "POST" || h.StreamEnded() {
				t.Fatalf("%s: frame %v", tc.name, f)
			}
			if stream == 3 && h.PseudoValue("path") != tc.path {
				t.Fatalf("%s: path %q", tc.name, h.PseudoValue("path"))
			}
			f, err = fr.ReadFrame()
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			d, ok := f.(*http2.DataFrame)
			if !ok || !d.StreamEnded() || len(d.Data()) != r.BodyLen() {
				t.Fatalf("%s: frame %v", tc.name, f)
			}
			if stream == 3 && !bytes.HasSuffix(d.Data(), []byte(tc.end)) {
				t.Fatalf("%s: body %q", tc.name, d.Data())
			}
		}
	}
}
