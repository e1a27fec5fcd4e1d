package mockpush

import (
	"encoding/binary"
	"unsafe"
)

// This file holds the character-class checks of device tokens, which every request goes
// through: they look at eight bytes at a time.

// charClass is a set of ASCII characters allOf checks.
type charClass uint8

const (
	// classHex is [0-9a-fA-F]: APNs device tokens.
	classHex charClass = iota
	// classFCMToken is [A-Za-z0-9_:.-]: FCM registration tokens.
	classFCMToken
)

const (
	asciiOnes  = 0x0101010101010101
	asciiHighs = 0x8080808080808080
)

// allOf reports whether every byte of s is in class.
func allOf(s string, class charClass) bool {
	b := unsafe.Slice(unsafe.StringData(s), len(s))
	for ; len(b) >= 8; b = b[8:] {
		if !class.word(binary.LittleEndian.Uint64(b)) {
			return false
		}
	}
	for _, c := range b {
		if !class.has(c) {
			return false
		}
	}
	return true
}

// word reports whether the eight bytes of w are all in the class.
func (cl charClass) word(w uint64) bool {
	if w&asciiHighs != 0 {
		return false
	}
	lower := w | 0x20*asciiOnes // letters folded to lower case
	if cl == classHex {
		return inRange(w, '0', '9')|inRange(lower, 'a', 'f') == asciiHighs
	}
	// '@' and '[' to '^' fold outside a..z; '_' is checked unfolded.
	return inRange(w, '-', '.')|inRange(w, '0', ':')|inRange(lower, 'a', 'z')|inRange(w, '_', '_') == asciiHighs
}

// has reports whether c is in the class.
func (cl charClass) has(c byte) bool {
	digit, lower, upper := '0' <= c && c <= '9', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z'
	if cl == classHex {
		return digit || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
	}
	return digit || lower || upper || c == '_' || c == '-' || c == ':' || c == '.'
}

// inRange sets the high bit of each byte of w that is within lo..hi. Every byte of w must be
// below 0x80, so that no sum carries into the next byte.
func inRange(w uint64, lo, hi byte) uint64 {
	return (w + (0x80-uint64(lo))*asciiOnes) &^ (w + (0x7f-uint64(hi))*asciiOnes) & asciiHighs
}
