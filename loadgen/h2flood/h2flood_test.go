package h2flood

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2/hpack"
)

func TestHeaderBlockDecodes(t *testing.T) {
	cfg := Config{Method: "POST", PathPrefix: "/3/device/", Header: [][2]string{{"apns-topic", "com.example.app"}}}
	block := appendPath(nil, headerPrefix(cfg, "127.0.0.1:443"), headerSuffix(cfg), cfg.PathPrefix, 1, 2)
	var got []hpack.HeaderField
	d := hpack.NewDecoder(4096, func(f hpack.HeaderField) { got = append(got, f) })
	if _, err := d.Write(block); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, f := range got {
		b.WriteString(f.Name + "=" + f.Value + "\n")
	}
	want := ":method=POST\n:scheme=https\n:authority=127.0.0.1:443\n:path=/3/device/" +
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000000000000010000000000000002\napns-topic=com.example.app\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}
