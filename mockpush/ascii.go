package mockpush

import (
	"encoding/binary"
	"unsafe"
)

// This file holds the character-class checks of device tokens, which every request goes
// through: they look at eight bytes at a time.

const (
	asciiOnes  = 0x0101010101010101
	asciiHighs = 0x8080808080808080
)

// inRange sets the high bit of each byte of w that is within lo..hi. Every byte of w must be
// below 0x80, so that no sum carries into the next byte.
func inRange(w uint64, lo, hi byte) uint64 {
	return (w + (0x80-uint64(lo))*asciiOnes) &^ (w + (0x7f-uint64(hi))*asciiOnes) & asciiHighs
}

// allHex reports whether every byte of s is a hexadecimal digit.
func allHex(s string) bool {
	b := unsafe.Slice(unsafe.StringData(s), len(s))
	for ; len(b) >= 8; b = b[8:] {
		w := binary.LittleEndian.Uint64(b)
		if w&asciiHighs != 0 || inRange(w, '0', '9')|inRange(w|0x20*asciiOnes, 'a', 'f') != asciiHighs {
			return false
		}
	}
	for _, c := range b {
		if !isHex(c) {
			return false
		}
	}
	return true
}

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}

// allFCMTokenChars reports whether every byte of s is a registration-token character,
// [A-Za-z0-9_:.-].
func allFCMTokenChars(s string) bool {
	b := unsafe.Slice(unsafe.StringData(s), len(s))
	for ; len(b) >= 8; b = b[8:] {
		w := binary.LittleEndian.Uint64(b)
		// Letters are folded to lower case ('@' and '[' to '^' fold outside a..z); '_' is
		// checked unfolded.
		if w&asciiHighs != 0 || inRange(w, '-', '.')|inRange(w, '0', ':')|inRange(w|0x20*asciiOnes, 'a', 'z')|
			inRange(w, '_', '_') != asciiHighs {
			return false
		}
	}
	for _, c := range b {
		if !isFCMTokenChar(c) {
			return false
		}
	}
	return true
}

func isFCMTokenChar(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '_' || b == '-' || b == ':' || b == '.'
}
