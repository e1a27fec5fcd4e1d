package burst

import (
	"errors"

	"golang.org/x/net/http2/hpack"
)

// HPACK (RFC 7541) as the burst connections use it. Requests are encoded by hand: the
// fields that are the same for every notification of a message are inserted into the
// connection's dynamic table once and then sent as one-byte indexes; only :path (APNs) and
// content-length are literals. Responses are decoded by respDecoder, which keeps the
// dynamic table in reused buffers and hands out field values as slices of its own memory,
// so that decoding allocates nothing once warmed up.

// Static-table indexes used by the encoder.
const (
	staticAuthority     = 1
	staticMethodPOST    = 3
	staticPath          = 4
	staticSchemeHTTPS   = 7
	staticContentLength = 28
	staticContentType   = 31
	staticAuthorization = 23
	staticTableLen      = 61
)

// appendInt appends an HPACK integer with an n-bit prefix; first holds the bits above it.
func appendInt(dst []byte, n uint8, first byte, v uint64) []byte {
	limit := uint64(1)<<n - 1
	if v < limit {
		return append(dst, first|byte(v))
	}
	dst = append(dst, first|byte(limit))
	v -= limit
	for v >= 128 {
		dst = append(dst, byte(v&0x7f|0x80))
		v >>= 7
	}
	return append(dst, byte(v))
}

// appendString appends an HPACK string literal without Huffman coding.
func appendString(dst []byte, s string) []byte {
	dst = appendInt(dst, 7, 0, uint64(len(s)))
	return append(dst, s...)
}

// appendIndexedLiteral appends "literal with incremental indexing" for name (by its static
// index when staticIdx > 0) and value.
func appendIndexedLiteral(dst []byte, staticIdx int, name, value string) []byte {
	if staticIdx > 0 {
		dst = appendInt(dst, 6, 0x40, uint64(staticIdx))
	} else {
		dst = append(dst, 0x40)
		dst = appendString(dst, name)
	}
	return appendString(dst, value)
}

// appendUint appends the decimal digits of v.
func appendUint(dst []byte, v uint64) []byte {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(dst, b[i:]...)
}

// headerTemplate is the part of a request header block that is the same for every
// notification of one message on one credential: the fields are inserted into the
// dynamic table by install and referred to by reuse afterwards.
type headerTemplate struct {
	// install inserts the fields (literals with incremental indexing); reuse names them by
	// their dynamic-table indexes, valid right after install while nothing else is inserted.
	install, reuse []byte
	// size is what the fields take in the dynamic table (RFC 7541 4.1).
	size int
}

// field is one request header field of a template.
type field struct {
	static int // static-table index of the name, 0 for a literal name
	name   string
	value  string
}

// newHeaderTemplate builds the template of :method POST, :scheme https and fields.
func newHeaderTemplate(fields []field) *headerTemplate {
	t := &headerTemplate{}
	t.install = append(t.install, 0x80|staticMethodPOST, 0x80|staticSchemeHTTPS)
	t.reuse = append(t.reuse, 0x80|staticMethodPOST, 0x80|staticSchemeHTTPS)
	for _, f := range fields {
		t.install = appendIndexedLiteral(t.install, f.static, f.name, f.value)
		t.size += len(f.name) + len(f.value) + 32
	}
	// The last inserted field has the lowest dynamic index (62).
	for i := range fields {
		t.reuse = appendInt(t.reuse, 7, 0x80, uint64(staticTableLen+len(fields)-i))
	}
	return t
}

// errHPACK is a response header block that does not decode.
var errHPACK = errors.New("burst: hpack: malformed header block")

// tableEntry is one dynamic-table entry; its buffers are reused when it is evicted.
type tableEntry struct{ name, value []byte }

// respDecoder decodes response header blocks. It is owned by one connection's reader.
type respDecoder struct {
	// ring holds the dynamic table, newest at ring[(head-1) mod len], count entries.
	ring        []tableEntry
	head, count int
	size, max   int
	// allowed is the table size this client announced (SETTINGS_HEADER_TABLE_SIZE).
	allowed int
	// hbuf and vbuf hold Huffman-decoded names and values until the emit returns.
	hbuf, vbuf []byte
	huff       huffBuf
}

// huffBuf is an io.Writer that appends to a reused slice.
type huffBuf struct{ b []byte }

func (h *huffBuf) Write(p []byte) (int, error) { h.b = append(h.b, p...); return len(p), nil }

// newRespDecoder returns a decoder for a peer that may use a table of up to allowed bytes.
func newRespDecoder(allowed int) *respDecoder {
	return &respDecoder{ring: make([]tableEntry, allowed/32+1), max: allowed, allowed: allowed}
}

// decode walks block and calls emit for every field; name and value are only valid during
// the call.
func (d *respDecoder) decode(block []byte, emit func(name, value []byte)) error {
	first := true
	for len(block) > 0 {
		b := block[0]
		switch {
		case b&0x80 != 0: // indexed field
			idx, rest, err := readInt(block, 7)
			if err != nil {
				return err
			}
			block = rest
			name, value, ok := d.at(idx)
			if !ok {
				return errHPACK
			}
			emit(name, value)
		case b&0xc0 == 0x40: // literal with incremental indexing
			name, value, rest, err := d.literal(block, 6)
			if err != nil {
				return err
			}
			block = rest
			emit(name, value)
			d.insert(name, value)
		case b&0xe0 == 0x20: // dynamic table size update
			if !first && d.size > 0 {
				// RFC 7541 4.2: at the start of a block. Checked as the stock transport's
				// decoder (x/net/http2/hpack) does, so that both take the same blocks: a
				// later update is refused unless the table is empty.
				return errHPACK
			}
			v, rest, err := readInt(block, 5)
			if err != nil {
				return err
			}
			if v > uint64(d.allowed) {
				return errHPACK
			}
			block = rest
			d.max = int(v)
			d.evict(0)
		default: // literal without indexing (0000) or never indexed (0001)
			name, value, rest, err := d.literal(block, 4)
			if err != nil {
				return err
			}
			block = rest
			emit(name, value)
		}
		first = false
	}
	return nil
}

// literal reads a literal field whose name index has an n-bit prefix.
func (d *respDecoder) literal(block []byte, n uint8) (name, value, rest []byte, err error) {
	idx, rest, err := readInt(block, n)
	if err != nil {
		return nil, nil, nil, err
	}
	d.hbuf = d.hbuf[:0]
	if idx == 0 {
		name, rest, err = d.str(rest, &d.hbuf)
		if err != nil {
			return nil, nil, nil, err
		}
	} else {
		var ok bool
		if name, _, ok = d.at(idx); !ok {
			return nil, nil, nil, errHPACK
		}
	}
	d.vbuf = d.vbuf[:0]
	value, rest, err = d.str(rest, &d.vbuf)
	return name, value, rest, err
}

// str reads a string literal; a Huffman-coded one is decoded into *buf.
func (d *respDecoder) str(p []byte, buf *[]byte) ([]byte, []byte, error) {
	if len(p) == 0 {
		return nil, nil, errHPACK
	}
	huffman := p[0]&0x80 != 0
	n, rest, err := readInt(p, 7)
	if err != nil {
		return nil, nil, err
	}
	if uint64(len(rest)) < n {
		return nil, nil, errHPACK
	}
	s, rest := rest[:n], rest[n:]
	if !huffman {
		return s, rest, nil
	}
	d.huff.b = (*buf)[:0]
	if _, err := hpack.HuffmanDecode(&d.huff, s); err != nil {
		return nil, nil, errHPACK
	}
	*buf = d.huff.b
	return d.huff.b, rest, nil
}

// readInt reads an HPACK integer with an n-bit prefix.
func readInt(p []byte, n uint8) (uint64, []byte, error) {
	if len(p) == 0 {
		return 0, nil, errHPACK
	}
	limit := uint64(1)<<n - 1
	v := uint64(p[0]) & limit
	p = p[1:]
	if v < limit {
		return v, p, nil
	}
	var m uint
	for i := 0; i < len(p); i++ {
		b := p[i]
		v += uint64(b&0x7f) << m
		if b&0x80 == 0 {
			return v, p[i+1:], nil
		}
		m += 7
		if m >= 63 {
			return 0, nil, errHPACK
		}
	}
	return 0, nil, errHPACK
}

// at returns the field at HPACK index idx (1-based, static then dynamic).
func (d *respDecoder) at(idx uint64) ([]byte, []byte, bool) {
	switch {
	case idx == 0:
		return nil, nil, false
	case idx <= staticTableLen:
		f := staticTable[idx-1]
		return f[0], f[1], true
	}
	i := int(idx - staticTableLen - 1)
	if i >= d.count {
		return nil, nil, false
	}
	e := &d.ring[(d.head-1-i+2*len(d.ring))%len(d.ring)]
	return e.name, e.value, true
}

// insert adds a field, evicting old entries to make room (RFC 7541 4.4).
func (d *respDecoder) insert(name, value []byte) {
	sz := len(name) + len(value) + 32
	if sz > d.max {
		d.count, d.size = 0, 0
		return
	}
	d.evict(sz)
	// Copy through the scratch buffers first: name or value may point into an entry that
	// the next slot reuses.
	e := &d.ring[d.head]
	n := append(e.name[:0], name...)
	v := append(e.value[:0], value...)
	e.name, e.value = n, v
	d.head = (d.head + 1) % len(d.ring)
	d.count++
	d.size += sz
}

// evict drops the oldest entries until room more bytes fit under max.
func (d *respDecoder) evict(room int) {
	for d.count > 0 && (d.size+room > d.max || d.count == len(d.ring)) {
		e := &d.ring[(d.head-d.count+len(d.ring))%len(d.ring)]
		d.size -= len(e.name) + len(e.value) + 32
		d.count--
	}
}

// staticTable is RFC 7541 Appendix A.
var staticTable = func() [staticTableLen][2][]byte {
	names := [staticTableLen][2]string{
		{":authority", ""}, {":method", "GET"}, {":method", "POST"}, {":path", "/"},
		{":path", "/index.html"}, {":scheme", "http"}, {":scheme", "https"}, {":status", "200"},
		{":status", "204"}, {":status", "206"}, {":status", "304"}, {":status", "400"},
		{":status", "404"}, {":status", "500"}, {"accept-charset", ""},
		{"accept-encoding", "gzip, deflate"}, {"accept-language", ""}, {"accept-ranges", ""},
		{"accept", ""}, {"access-control-allow-origin", ""}, {"age", ""}, {"allow", ""},
		{"authorization", ""}, {"cache-control", ""}, {"content-disposition", ""},
		{"content-encoding", ""}, {"content-language", ""}, {"content-length", ""},
		{"content-location", ""}, {"content-range", ""}, {"content-type", ""}, {"cookie", ""},
		{"date", ""}, {"etag", ""}, {"expect", ""}, {"expires", ""}, {"from", ""}, {"host", ""},
		{"if-match", ""}, {"if-modified-since", ""}, {"if-none-match", ""}, {"if-range", ""},
		{"if-unmodified-since", ""}, {"last-modified", ""}, {"link", ""}, {"location", ""},
		{"max-forwards", ""}, {"proxy-authenticate", ""}, {"proxy-authorization", ""},
		{"range", ""}, {"referer", ""}, {"refresh", ""}, {"retry-after", ""}, {"server", ""},
		{"set-cookie", ""}, {"strict-transport-security", ""}, {"transfer-encoding", ""},
		{"user-agent", ""}, {"vary", ""}, {"via", ""}, {"www-authenticate", ""},
	}
	var t [staticTableLen][2][]byte
	for i, f := range names {
		t[i] = [2][]byte{[]byte(f[0]), []byte(f[1])}
	}
	return t
}()
