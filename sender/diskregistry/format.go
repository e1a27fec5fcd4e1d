package diskregistry

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
)

// FileName is the name of the registry file inside a registry directory.
const FileName = "registry.bin"

// Version is the file format version this package writes and reads.
const Version = 1

// Limits the writer enforces. The reader checks them too, and every length against the
// bytes actually present.
const (
	// MaxUserIDLen is the longest user ID, in bytes.
	MaxUserIDLen = 1024
	// MaxTokenLen is the longest device token, in bytes.
	MaxTokenLen = 1024
	// MaxDevicesPerUser is the most devices one user may have.
	MaxDevicesPerUser = 256
	// maxStringLen bounds an app or locale string.
	maxStringLen = 1024
)

// File layout (all integers little endian; see docs/registry.md):
//
//	header   128 bytes: magic, version, slot width, counts, three section descriptors, CRC
//	records  users sorted by ID, each: uvarint len, ID, uvarint n, n device records
//	strings  uvarint count, then per string: uvarint len, bytes (apps and locales)
//	table    open-addressing hash index: 2^k slots of 4 or 8 bytes, record offset + 1
const (
	magic      = "SALVOREG"
	headerSize = 128

	// Header field offsets.
	offVersion   = 8
	offSlotWidth = 10
	offUsers     = 16
	offDevices   = 24
	offSlots     = 32
	offSections  = 40 // three descriptors of 24 bytes: offset u64, length u64, crc u32, 0 u32
	offHeaderCRC = 112

	secRecords = 0
	secStrings = 1
	secTable   = 2
	numSecs    = 3
)

// Token kinds, in bits 4-5 of a device's first byte (bits 0-3 hold the platform).
const (
	kindRaw = 0 // the token's bytes as they are
	kindHex = 1 // lowercase hex of even length, stored as the bytes it spells (half size)
	kindB64 = 2 // base64url characters with at most one ':', packed 6 bits per character
)

// b64Alphabet is the base64url alphabet; kindB64 stores each character as its index.
const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// noColon in the first byte of a kindB64 token means the token has no ':'.
const noColon = 0xff

// ErrCorrupt matches (errors.Is) every error about a damaged or foreign registry file.
var ErrCorrupt = errors.New("corrupt registry file")

// ErrClosed is returned by calls on a closed Registry.
var ErrClosed = errors.New("diskregistry: registry is closed")

// CorruptError says where a registry file is damaged. It matches ErrCorrupt with errors.Is.
type CorruptError struct {
	Path   string // the registry file
	Offset int64  // byte offset in the file where the damage was found
	Reason string
}

// Error names the file, the offset and the reason.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("diskregistry: %s: offset %d: %s", e.Path, e.Offset, e.Reason)
}

// Is reports whether target is ErrCorrupt.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// castagnoli is the CRC-32C table; crc32.MakeTable caches it, so this is cheap.
func castagnoli() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) }

// hashID hashes a user ID for the index: FNV-1a followed by a 64-bit finalizer so that
// sequential IDs spread over the low bits. The value is part of the file format.
func hashID(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// tableSlots returns the number of index slots for users: a power of two with the load
// factor at most 0.7, and at least one empty slot.
func tableSlots(users uint64) uint64 {
	want := users + users*3/7 + 1
	n := uint64(8)
	for n < want {
		n <<= 1
	}
	return n
}

// section is one section descriptor of the header.
type section struct {
	off, size uint64
	crc       uint32
}

// header is the decoded fixed-size header.
type header struct {
	version   uint16
	slotWidth uint8
	users     uint64
	devices   uint64
	slots     uint64
	secs      [numSecs]section
}

func (h *header) encode() []byte {
	b := make([]byte, headerSize)
	copy(b, magic)
	binary.LittleEndian.PutUint16(b[offVersion:], h.version)
	b[offSlotWidth] = h.slotWidth
	binary.LittleEndian.PutUint64(b[offUsers:], h.users)
	binary.LittleEndian.PutUint64(b[offDevices:], h.devices)
	binary.LittleEndian.PutUint64(b[offSlots:], h.slots)
	for i, s := range h.secs {
		p := offSections + 24*i
		binary.LittleEndian.PutUint64(b[p:], s.off)
		binary.LittleEndian.PutUint64(b[p+8:], s.size)
		binary.LittleEndian.PutUint32(b[p+16:], s.crc)
	}
	binary.LittleEndian.PutUint32(b[offHeaderCRC:], crc32.Checksum(b[:offHeaderCRC], castagnoli()))
	return b
}

// decodeHeader parses and checks the header of a file of fileSize bytes. It returns the
// reason and the offset of the first problem found.
func decodeHeader(b []byte, fileSize uint64) (header, int64, string) {
	var h header
	if len(b) < headerSize {
		return h, 0, fmt.Sprintf("file is %d bytes, shorter than the %d-byte header", len(b), headerSize)
	}
	if string(b[:len(magic)]) != magic {
		return h, 0, "bad magic: not a salvo device registry"
	}
	if want, got := binary.LittleEndian.Uint32(b[offHeaderCRC:]), crc32.Checksum(b[:offHeaderCRC], castagnoli()); want != got {
		return h, offHeaderCRC, fmt.Sprintf("header checksum mismatch (stored %08x, computed %08x)", want, got)
	}
	h.version = binary.LittleEndian.Uint16(b[offVersion:])
	if h.version != Version {
		return h, offVersion, fmt.Sprintf("unsupported format version %d (this build reads %d)", h.version, Version)
	}
	h.slotWidth = b[offSlotWidth]
	if h.slotWidth != 4 && h.slotWidth != 8 {
		return h, offSlotWidth, fmt.Sprintf("slot width %d, want 4 or 8", h.slotWidth)
	}
	h.users = binary.LittleEndian.Uint64(b[offUsers:])
	h.devices = binary.LittleEndian.Uint64(b[offDevices:])
	h.slots = binary.LittleEndian.Uint64(b[offSlots:])
	next := uint64(headerSize)
	for i := range h.secs {
		p := offSections + 24*i
		s := section{
			off:  binary.LittleEndian.Uint64(b[p:]),
			size: binary.LittleEndian.Uint64(b[p+8:]),
			crc:  binary.LittleEndian.Uint32(b[p+16:]),
		}
		if s.off != next || s.size > fileSize-next {
			return h, int64(p), fmt.Sprintf("%s section at %d+%d does not follow at %d within the %d-byte file",
				sectionName(i), s.off, s.size, next, fileSize)
		}
		next += s.size
		h.secs[i] = s
	}
	if next != fileSize {
		return h, int64(next), fmt.Sprintf("%d bytes after the last section", fileSize-next)
	}
	if h.slots < 8 || h.slots&(h.slots-1) != 0 || h.slots <= h.users {
		return h, offSlots, fmt.Sprintf("%d index slots for %d users: want a power of two above the user count", h.slots, h.users)
	}
	if h.slots > h.secs[secTable].size || h.secs[secTable].size != h.slots*uint64(h.slotWidth) {
		return h, offSlots, fmt.Sprintf("index section is %d bytes, want %d slots of %d bytes", h.secs[secTable].size, h.slots, h.slotWidth)
	}
	if h.users > h.secs[secRecords].size/2 {
		return h, offUsers, fmt.Sprintf("%d users cannot fit in %d bytes of records", h.users, h.secs[secRecords].size)
	}
	if h.slotWidth == 4 && h.secs[secRecords].size >= 1<<32-1 {
		return h, offSlotWidth, "4-byte slots cannot address the records section"
	}
	return h, 0, ""
}

func sectionName(i int) string {
	return [numSecs]string{"records", "strings", "index"}[i]
}

// codec classifies and encodes tokens for the writer. Its table maps a byte to its index in
// b64Alphabet, with flag bits for lowercase hex digits and for bytes outside the alphabet.
type codec struct {
	tab  [256]byte
	hex  [256]byte             // value of a lowercase hex digit
	vals [MaxTokenLen + 3]byte // scratch: a token's characters as alphabet indices
}

const (
	notB64 = 0x80 // the byte is not in b64Alphabet
	isHex  = 0x40 // the byte is a lowercase hex digit
)

func newCodec() *codec {
	c := &codec{}
	for i := range c.tab {
		c.tab[i] = notB64
	}
	for i := 0; i < len(b64Alphabet); i++ {
		c.tab[b64Alphabet[i]] = byte(i)
	}
	for i, h := range []byte("0123456789abcdef") {
		c.tab[h] |= isHex
		c.hex[h] = byte(i)
	}
	return c
}

// scan returns the AND of the table entries of s's bytes and the index of the first byte
// outside b64Alphabet, or -1.
func (c *codec) scan(s string) (and byte, bad int) {
	and = 0xff
	for i := 0; i < len(s); i++ {
		e := c.tab[s[i]]
		if e&notB64 != 0 {
			return and, i
		}
		and &= e
	}
	return and, -1
}

// kind picks the most compact encoding for tok.
func (c *codec) kind(tok string) int {
	and, bad := c.scan(tok)
	hasColon := bad >= 0
	if hasColon { // only one ':', early enough to store its place, is allowed
		if tok[bad] != ':' || bad >= noColon {
			return kindRaw
		}
		if _, bad2 := c.scan(tok[bad+1:]); bad2 >= 0 {
			return kindRaw
		}
	} else if and&isHex != 0 && len(tok)%2 == 0 {
		return kindHex
	}
	if el, _ := encodedLen(kindB64, len(tok), hasColon); el >= len(tok) {
		return kindRaw
	}
	return kindB64
}

// appendToken appends the encoding of tok in kind, which c.kind chose for tok.
func (c *codec) appendToken(dst []byte, tok string, kind int) []byte {
	switch kind {
	case kindHex:
		dst, out := grow(dst, len(tok)/2)
		for i := range out {
			out[i] = c.hex[tok[2*i]]<<4 | c.hex[tok[2*i+1]]
		}
		return dst
	case kindB64:
		hdr := byte(noColon)
		m := 0
		for i := 0; i < len(tok); i++ {
			if tok[i] == ':' {
				hdr = byte(i)
				continue
			}
			c.vals[m] = c.tab[tok[i]] & 0x3f
			m++
		}
		vals := c.vals[:m+3]
		vals[m], vals[m+1], vals[m+2] = 0, 0, 0 // padding of the last group
		el, _ := encodedLen(kindB64, len(tok), hdr != noColon)
		dst, out := grow(dst, el)
		out[0] = hdr
		out = out[1:]
		i := 0
		for ; len(out) >= 3; i += 4 {
			v := uint32(vals[i])<<18 | uint32(vals[i+1])<<12 | uint32(vals[i+2])<<6 | uint32(vals[i+3])
			out[0], out[1], out[2] = byte(v>>16), byte(v>>8), byte(v)
			out = out[3:]
		}
		if len(out) > 0 { // 1 or 2 characters left, in 1 or 2 bytes
			v := uint32(vals[i])<<18 | uint32(vals[i+1])<<12
			for k := range out {
				out[k] = byte(v >> (16 - 8*k))
			}
		}
		return dst
	}
	return append(dst, tok...)
}

// grow extends b by n bytes and returns it with the new part.
func grow(b []byte, n int) ([]byte, []byte) {
	b = slices.Grow(b, n)[:len(b)+n]
	return b, b[len(b)-n:]
}

// encodedLen returns how many bytes a token of n characters takes in the given kind; for
// kindB64 hasColon says whether one of the characters is the stored ':'. ok is false for a
// kind that cannot hold n characters.
func encodedLen(kind int, n int, hasColon bool) (int, bool) {
	switch kind {
	case kindRaw:
		return n, true
	case kindHex:
		return n / 2, n%2 == 0
	case kindB64:
		m := n
		if hasColon {
			m--
		}
		return 1 + (m*6+7)/8, m >= 0
	}
	return 0, false
}

// decodeToken writes the n characters of a token stored as enc (exactly encodedLen bytes)
// into dst[:n]. It reports false when enc does not hold a valid token of that kind.
func decodeToken(dst []byte, enc []byte, kind int, n int) bool {
	switch kind {
	case kindRaw:
		copy(dst[:n], enc)
		return true
	case kindHex:
		hex.Encode(dst[:n], enc)
		return true
	case kindB64:
		colon := int(enc[0])
		m := n // characters other than the ':'
		if colon != noColon {
			if colon >= n {
				return false
			}
			m--
		}
		src, out := enc[1:], dst[:m]
		for len(out) >= 4 {
			v := uint32(src[0])<<16 | uint32(src[1])<<8 | uint32(src[2])
			out[0] = b64Alphabet[v>>18&63]
			out[1] = b64Alphabet[v>>12&63]
			out[2] = b64Alphabet[v>>6&63]
			out[3] = b64Alphabet[v&63]
			src, out = src[3:], out[4:]
		}
		if len(out) > 0 { // 1 to 3 characters in the last 1 to 3 bytes
			var v uint32
			for i, b := range src {
				v |= uint32(b) << (16 - 8*i)
			}
			for i := range out {
				out[i] = b64Alphabet[v>>(18-6*i)&63]
			}
		}
		if colon != noColon {
			copy(dst[colon+1:n], dst[colon:m])
			dst[colon] = ':'
		}
		return true
	}
	return false
}
