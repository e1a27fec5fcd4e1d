package k6

import (
	"sync/atomic"

	"github.com/salvopush/salvo/sender"
)

// Generated token lengths: APNs tokens are 64 hex digits (the common length), FCM
// registration tokens 152 characters (they run ~150-170).
const (
	apnsTokenLen = 64
	fcmTokenLen  = 152
)

// maxGenerated bounds the tokens one call may generate.
const maxGenerated = 1 << 20

// tokenSource generates device tokens that no other call of the process has used: a
// per-process prefix and a sequence number. The prefix starts with "6b36" ("k6" in hex), so
// no token carries the mocks' unregistered marker and the mocks accept every one.
type tokenSource struct {
	prefix string // 16 hex digits
	seq    atomic.Uint64
}

// newTokenSource makes a source whose prefix ends with the first 12 hex digits of id.
func newTokenSource(id string) *tokenSource {
	return &tokenSource{prefix: "6b36" + (id + "000000000000")[:12]}
}

// next returns n new tokens for platform, in one backing array.
func (s *tokenSource) next(platform sender.Platform, n int) [][]byte {
	first := s.seq.Add(uint64(n)) - uint64(n)
	size, head := apnsTokenLen, s.prefix
	if platform == sender.PlatformAndroid {
		size, head = fcmTokenLen, s.prefix+":APA91b"
	}
	arena := make([]byte, n*size)
	out := make([][]byte, n)
	for i := range out {
		t := arena[i*size : (i+1)*size : (i+1)*size]
		copy(t, head)
		putHex(t[len(head):], first+uint64(i))
		out[i] = t
	}
	return out
}

// putHex writes v as lower-case hex digits, right-aligned and zero-filled, over all of dst.
func putHex(dst []byte, v uint64) {
	const digits = "0123456789abcdef"
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = digits[v&0xf]
		v >>= 4
	}
}
