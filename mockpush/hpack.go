package mockpush

import (
	"encoding/binary"
	"errors"
	"strings"
	"unsafe"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2/hpack"
)

// This file holds the HPACK (RFC 7541) side of the HTTP/2 core: a request decoder that keeps
// the validity of every table entry (checked once, when the entry is made, instead of on
// every request that refers to it) and allocates nothing per request (fields refer to table
// entries; literals go to a reused arena), and the few encoding helpers the answers use.
// The static table and Huffman decoding are x/net's.

// Flags of a decoded field.
const (
	// hfPseudo: the name starts with ':'.
	hfPseudo uint8 = 1 << iota
	// hfNameOK: the name is a lower-case token (RFC 9113 8.2.1).
	hfNameOK
	// hfValueOK: the value has no character RFC 9110 5.5 forbids.
	hfValueOK
	// hfSpecial: the name is one onHeaderBlock checks (connection-specific, te,
	// content-length).
	hfSpecial
)

// Codes of the header names the handlers look for, found once per table entry.
const (
	hnOther uint8 = iota
	hnAuthorization
	hnAPNsTopic
	hnAPNsPushType
	hnAPNsPriority
	hnAPNsExpiration
	hnAPNsCollapseID
	hnAPNsID
)

// headerCode returns the code of a header name.
func headerCode(name string) uint8 {
	switch name {
	case "authorization":
		return hnAuthorization
	case "apns-topic":
		return hnAPNsTopic
	case "apns-push-type":
		return hnAPNsPushType
	case "apns-priority":
		return hnAPNsPriority
	case "apns-expiration":
		return hnAPNsExpiration
	case "apns-collapse-id":
		return hnAPNsCollapseID
	case "apns-id":
		return hnAPNsID
	}
	return hnOther
}

// hpackField is one decoded header field. Strings of literals that were not indexed point
// into the decoder's arena: valid until the next block, unless the arena is taken away
// (take).
type hpackField struct {
	name, value string
	flags       uint8 // hfPseudo, hfNameOK, hfValueOK, hfSpecial
	code        uint8 // headerCode(name)
}

// hfield returns the field name: value with its flags and code (for requests that do not come
// through the decoder).
func hfield(name, value string) hpackField {
	return hpackField{name: name, value: value, flags: entryFlags(name, value), code: headerCode(name)}
}

// hpackEntry is one entry of the static or dynamic table.
type hpackEntry struct {
	name, value string
	flags       uint8 // hfPseudo, hfNameOK, hfValueOK, hfSpecial of the entry
	code        uint8
}

// errHPACK is any header block that does not decode: a COMPRESSION_ERROR.
var errHPACK = errors.New("mockpush: hpack: malformed header block")

// hpackStaticLen is the number of entries of the static table (RFC 7541 Appendix A).
const hpackStaticLen = 61

// hpackStaticTable returns the static table with the flags and codes of its entries. The
// names and values are x/net's (one source for the table): its decoder is asked for the 61
// indexed fields.
func hpackStaticTable() *[hpackStaticLen]hpackEntry {
	var t [hpackStaticLen]hpackEntry
	n := 0
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		if n < len(t) {
			t[n] = hpackEntry{name: f.Name, value: f.Value, flags: entryFlags(f.Name, f.Value), code: headerCode(f.Name)}
		}
		n++
	})
	var block [hpackStaticLen]byte
	for i := range block {
		block[i] = 0x80 | byte(i+1)
	}
	if _, err := dec.Write(block[:]); err != nil || n != len(t) {
		panic("mockpush: x/net's HPACK decoder does not know the static table")
	}
	return &t
}

// hpackDecoder decodes the request header blocks of one connection. Decoded fields stay in
// fields until the next block.
type hpackDecoder struct {
	static *[hpackStaticLen]hpackEntry // shared, read-only
	// dyn[head:] is the dynamic table, oldest entry first.
	dyn  []hpackEntry
	head int
	// size is the table's size (RFC 7541 4.1); max the limit the encoder set (at most
	// limit, the SETTINGS_HEADER_TABLE_SIZE the server advertises).
	size, max, limit int
	// maxList bounds the decoded header list (names, values and 32 per field); a longer
	// list is still decoded, to keep the table in step, but its fields are dropped and
	// tooBig is set.
	maxList int
	// maxString bounds one string literal, before or after Huffman decoding.
	maxString int
	// arena holds the strings of the current block's literals that were not indexed.
	arena  []byte
	fields []hpackField
	tooBig bool
	// listSize is the decoded list size of the current block.
	listSize int
}

// newHPACKDecoder returns a decoder on static, the table of hpackStaticTable.
func newHPACKDecoder(static *[hpackStaticLen]hpackEntry, tableSize, maxList, maxString int) *hpackDecoder {
	return &hpackDecoder{static: static, max: tableSize, limit: tableSize, maxList: maxList, maxString: maxString}
}

// entryFlags computes the flags of a field from its name and value.
func entryFlags(name, value string) uint8 {
	var f uint8
	if strings.HasPrefix(name, ":") {
		f |= hfPseudo
	}
	if validFieldName(name) {
		f |= hfNameOK
	}
	if specialName(name) {
		f |= hfSpecial
	}
	if validFieldValue(value) {
		f |= hfValueOK
	}
	return f
}

// specialName reports whether onHeaderBlock must look at a field of this name.
func specialName(name string) bool {
	return connectionHeader(name) || name == "te" || name == "content-length"
}

// validFieldName reports whether name is a lower-case token.
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		if b >= 'A' && b <= 'Z' || !httpguts.IsTokenRune(rune(b)) {
			return false
		}
	}
	return true
}

// validFieldValue is httpguts.ValidHeaderFieldValue: no control character but tab, no DEL.
// It looks at eight bytes at a time and at single bytes only around a suspect one.
func validFieldValue(v string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	b := unsafe.Slice(unsafe.StringData(v), len(v))
	for len(b) >= 8 {
		w := binary.LittleEndian.Uint64(b)
		// A byte below 0x20, or a byte equal to 0x7f, sets its high bit in one of these
		// (with false positives only for bytes of 0x80 and above, checked below).
		low := (w - 0x20*ones) &^ w & highs
		del := w ^ 0x7f*ones
		del = (del - ones) &^ del & highs
		if low|del != 0 {
			break
		}
		b = b[8:]
	}
	return httpguts.ValidHeaderFieldValue(v[len(v)-len(b):])
}

// at returns table entry idx (1-based: static, then dynamic newest first).
func (d *hpackDecoder) at(idx uint64) (*hpackEntry, bool) {
	if idx == 0 {
		return nil, false
	}
	if idx <= uint64(len(d.static)) {
		return &d.static[idx-1], true
	}
	i := idx - uint64(len(d.static)) - 1
	if i >= uint64(len(d.dyn)-d.head) {
		return nil, false
	}
	return &d.dyn[len(d.dyn)-1-int(i)], true
}

// add inserts an entry, evicting the oldest ones to make room (RFC 7541 4.4).
func (d *hpackDecoder) add(name, value string, flags, code uint8) {
	size := len(name) + len(value) + 32
	d.evict(d.max - min(size, d.max))
	if size > d.max {
		return
	}
	d.dyn = append(d.dyn, hpackEntry{name: name, value: value, flags: flags, code: code})
	d.size += size
}

// evict drops the oldest entries until the table is at most size.
func (d *hpackDecoder) evict(size int) {
	for d.size > size {
		e := &d.dyn[d.head]
		d.size -= len(e.name) + len(e.value) + 32
		*e = hpackEntry{}
		d.head++
	}
	if d.head == len(d.dyn) {
		d.dyn, d.head = d.dyn[:0], 0
	} else if d.head >= 64 && d.head*2 >= len(d.dyn) {
		n := copy(d.dyn, d.dyn[d.head:])
		clear(d.dyn[n:])
		d.dyn, d.head = d.dyn[:n], 0
	}
}

// decode decodes one complete header block into d.fields. No field points into p.
func (d *hpackDecoder) decode(p []byte) error {
	d.fields, d.arena, d.tooBig, d.listSize = d.fields[:0], d.arena[:0], false, 0
	first := true
	for len(p) > 0 {
		b := p[0]
		switch {
		case b&0x80 != 0: // indexed field
			idx := uint64(b & 0x7f)
			if idx < 0x7f {
				p = p[1:]
			} else {
				var n int
				var ok bool
				if idx, n, ok = hpackInt(p, 7); !ok {
					return errHPACK
				}
				p = p[n:]
			}
			e, ok := d.at(idx)
			if !ok {
				return errHPACK
			}
			d.emit(e.name, e.value, e.flags, e.code)
		case b&0xe0 == 0x20: // dynamic table size update
			// It must open the block (RFC 7541 4.2); as in x/net's decoder, a later one is
			// tolerated while the table is empty.
			size, n, ok := hpackInt(p, 5)
			if !ok || !first && d.size > 0 || size > uint64(d.limit) {
				return errHPACK
			}
			p = p[n:]
			d.max = int(size)
			d.evict(d.max)
		default: // literal: with incremental indexing (01), without (0000), never indexed (0001)
			indexing := b&0xc0 == 0x40
			prefix := uint8(4)
			if indexing {
				prefix = 6
			}
			idx, n, ok := hpackInt(p, prefix)
			if !ok {
				return errHPACK
			}
			p = p[n:]
			var name string
			var flags, code uint8
			if idx > 0 {
				e, ok := d.at(idx)
				if !ok {
					return errHPACK
				}
				name, flags, code = e.name, e.flags&^hfValueOK, e.code
			} else {
				if name, p, ok = d.string(p, indexing); !ok {
					return errHPACK
				}
				flags, code = entryFlags(name, "")&^hfValueOK, headerCode(name)
			}
			var value string
			if value, p, ok = d.string(p, indexing); !ok {
				return errHPACK
			}
			if validFieldValue(value) {
				flags |= hfValueOK
			}
			if indexing {
				d.add(name, value, flags, code)
			}
			d.emit(name, value, flags, code)
		}
		first = false
	}
	return nil
}

// emit appends a decoded field, unless the list has grown too big.
func (d *hpackDecoder) emit(name, value string, flags, code uint8) {
	if d.tooBig {
		return
	}
	d.listSize += len(name) + len(value) + 32
	if d.listSize > d.maxList {
		d.tooBig = true
		return
	}
	d.fields = append(d.fields, hpackField{name: name, value: value, flags: flags, code: code})
}

// string reads a string literal (RFC 7541 5.2) and returns the rest of p. The string is a
// new one when it goes into the table (stable), else it is in d.arena.
func (d *hpackDecoder) string(p []byte, stable bool) (string, []byte, bool) {
	if len(p) == 0 {
		return "", nil, false
	}
	huffman := p[0]&0x80 != 0
	n, used, ok := hpackInt(p, 7)
	if !ok || n > uint64(len(p)-used) || n > uint64(d.maxString) {
		return "", nil, false
	}
	raw := p[used : used+int(n)]
	p = p[used+int(n):]
	if !huffman && stable {
		return string(raw), p, true
	}
	// Strings already made point into the arena's array; when append moves the arena to a
	// larger one, they keep the old array, which nothing writes to again.
	start := len(d.arena)
	if !huffman {
		d.arena = append(d.arena, raw...)
	} else if _, err := hpack.HuffmanDecode(d, raw); err != nil || len(d.arena)-start > d.maxString {
		return "", nil, false
	}
	s := d.arena[start:]
	if len(s) == 0 {
		return "", p, true
	}
	if stable {
		return string(s), p, true
	}
	return unsafe.String(&s[0], len(s)), p, true
}

// Write appends Huffman-decoded bytes to the arena (for hpack.HuffmanDecode).
func (d *hpackDecoder) Write(b []byte) (int, error) {
	d.arena = append(d.arena, b...)
	return len(b), nil
}

// take hands the fields of the last block and the arena holding their strings to the caller,
// and takes the caller's spare buffers (emptied) in their place.
func (d *hpackDecoder) take(fields []hpackField, arena []byte) ([]hpackField, []byte) {
	f, a := d.fields, d.arena
	d.fields, d.arena = fields[:0], arena[:0]
	return f, a
}

// hpackInt reads an integer with an n-bit prefix (RFC 7541 5.1) and returns it with the
// bytes it took. As in x/net's decoder, at most nine continuation bytes are read (zero ones
// included); no value the server accepts comes near that limit.
func hpackInt(p []byte, n uint8) (uint64, int, bool) {
	if len(p) == 0 {
		return 0, 0, false
	}
	limit := uint64(1)<<n - 1
	v := uint64(p[0]) & limit
	if v < limit {
		return v, 1, true
	}
	for i, shift := 1, uint(0); i < len(p) && shift < 63; i, shift = i+1, shift+7 {
		b := p[i]
		v += uint64(b&0x7f) << shift
		if b&0x80 == 0 {
			return v, i + 1, true
		}
	}
	return 0, 0, false
}

// appendHpackLiteral appends a literal field without indexing, naming it by its static-table
// index when it has one.
func appendHpackLiteral(dst []byte, name, value string) []byte {
	idx := 0
	switch name {
	case "content-type":
		idx = 31
	case "retry-after":
		idx = 53
	case "www-authenticate":
		idx = 61
	}
	if idx > 0 {
		dst = appendHpackInt(dst, 4, 0x00, uint64(idx))
	} else {
		dst = append(dst, 0x00)
		dst = appendHpackString(dst, name)
	}
	return appendHpackString(dst, value)
}

func appendHpackString(dst []byte, s string) []byte {
	dst = appendHpackInt(dst, 7, 0, uint64(len(s)))
	return append(dst, s...)
}

// appendHpackInt appends an HPACK integer with an n-bit prefix; first holds the bits above.
func appendHpackInt(dst []byte, n uint8, first byte, v uint64) []byte {
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

// staticStatus is the HPACK static-table index of ":status: code", or 0.
func staticStatus(code int) int {
	switch code {
	case 200:
		return 8
	case 204:
		return 9
	case 206:
		return 10
	case 304:
		return 11
	case 400:
		return 12
	case 404:
		return 13
	case 500:
		return 14
	}
	return 0
}
