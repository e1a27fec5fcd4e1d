package mockpush

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2/hpack"

	"github.com/salvopush/salvo/loadgen/h2flood"
)

// TestHPACKStaticTable spot-checks the table made from x/net's and the flags of its entries.
func TestHPACKStaticTable(t *testing.T) {
	st := hpackStaticTable()
	for _, c := range []struct {
		index       int
		name, value string
		flags       uint8
	}{
		{1, ":authority", "", hfPseudo | hfValueOK},
		{3, ":method", "POST", hfPseudo | hfValueOK},
		{16, "accept-encoding", "gzip, deflate", hfNameOK | hfValueOK},
		{28, "content-length", "", hfNameOK | hfValueOK | hfSpecial},
		{57, "transfer-encoding", "", hfNameOK | hfValueOK | hfSpecial},
		{61, "www-authenticate", "", hfNameOK | hfValueOK},
	} {
		if e := st[c.index-1]; e.name != c.name || e.value != c.value || e.flags != c.flags {
			t.Errorf("index %d: %q: %q flags %b, want %q: %q flags %b", c.index, e.name, e.value, e.flags, c.name, c.value, c.flags)
		}
	}
	if st[22].code != hnAuthorization {
		t.Errorf("authorization has code %d", st[22].code)
	}
}

// TestValidFieldValue compares the word-at-a-time check with httpguts on every byte at every
// position of a value.
func TestValidFieldValue(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 20; pos++ {
			b := []byte(strings.Repeat("a", 20))
			b[pos] = byte(c)
			v := string(b)
			if got, want := validFieldValue(v), httpguts.ValidHeaderFieldValue(v); got != want {
				t.Fatalf("byte %#x at %d: %v, httpguts %v", c, pos, got, want)
			}
		}
	}
}

// hpackSeeds are header blocks, each a sequence of blocks on one connection.
func hpackSeeds() [][2][]byte {
	var seeds [][2][]byte
	// What `salvo load` sends: indexing on the first request, references after.
	r := h2flood.NewRequests(h2flood.Config{PathPrefix: "/3/device/", Header: [][2]string{{"authorization", "bearer x.y.z"},
		{"apns-topic", "com.example"}}, Body: []byte("{}")}, "127.0.0.1:1")
	f1, f2 := r.Append(nil, 1, 1, 1), r.Append(nil, 1, 3, 2)
	seeds = append(seeds, [2][]byte{f1[9 : 9+int(f1[2])], f2[9 : 9+int(f2[2])]})
	// x/net's encoder: Huffman strings, indexing, a table size update.
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	enc.WriteField(hpack.HeaderField{Name: ":method", Value: "POST"})
	enc.WriteField(hpack.HeaderField{Name: ":path", Value: "/3/device/0123456789abcdef"})
	enc.WriteField(hpack.HeaderField{Name: "X-Upper", Value: "bad\x01value"})
	enc.WriteField(hpack.HeaderField{Name: "secret", Value: "v", Sensitive: true})
	first := append([]byte(nil), buf.Bytes()...)
	buf.Reset()
	enc.SetMaxDynamicTableSize(64)
	enc.WriteField(hpack.HeaderField{Name: "content-length", Value: "12"})
	enc.WriteField(hpack.HeaderField{Name: ":path", Value: "/3/device/0123456789abcdef"})
	seeds = append(seeds, [2][]byte{first, append([]byte(nil), buf.Bytes()...)})
	// Edge cases: index 0, a size update after a field, a too large one, a truncated string.
	seeds = append(seeds,
		[2][]byte{{0x80}, nil},
		[2][]byte{{0x82, 0x3f, 0xe1, 0x1f}, {0x40, 0x01, 'a', 0x01, 'b', 0x20}},
		[2][]byte{{0x3f, 0xe2, 0x1f}, nil},
		[2][]byte{{0x04, 0x85, 'a'}, nil},
		[2][]byte{{0x00, 0x81, 0xff, 0x00}, nil},
	)
	return seeds
}

// FuzzHPACKDecode decodes two blocks in a row with the mock's decoder and with x/net's: they
// must fail together or give the same fields, with the flags their names and values call
// for.
func FuzzHPACKDecode(f *testing.F) {
	for _, s := range hpackSeeds() {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, b1, b2 []byte) {
		var want []hpack.HeaderField
		ref := hpack.NewDecoder(4096, func(f hpack.HeaderField) { want = append(want, f) })
		ref.SetMaxStringLength(1 << 16)
		d := newHPACKDecoder(hpackStaticTable(), 4096, 1<<30, 1<<16)
		for i, b := range [][]byte{b1, b2} {
			want = want[:0]
			_, refErr := ref.Write(b)
			if refErr == nil {
				refErr = ref.Close()
			}
			err := d.decode(b)
			if (err != nil) != (refErr != nil) {
				t.Fatalf("block %d %x: error %v, x/net %v", i, b, err, refErr)
			}
			if err != nil {
				return
			}
			if got := fmt.Sprint(fieldPairs(d.fields)); got != fmt.Sprint(refPairs(want)) {
				t.Fatalf("block %d %x: fields %s, x/net %s", i, b, got, fmt.Sprint(refPairs(want)))
			}
			for _, hf := range d.fields {
				if hf.flags != entryFlags(hf.name, hf.value) {
					t.Fatalf("block %d: %q: %q has flags %b, want %b", i, hf.name, hf.value, hf.flags, entryFlags(hf.name, hf.value))
				}
			}
		}
	})
}

func fieldPairs(fs []hpackField) [][2]string {
	out := make([][2]string, len(fs))
	for i, f := range fs {
		out[i] = [2]string{f.name, f.value}
	}
	return out
}

func refPairs(fs []hpack.HeaderField) [][2]string {
	out := make([][2]string, len(fs))
	for i, f := range fs {
		out[i] = [2]string{f.Name, f.Value}
	}
	return out
}
