package burst

import (
	"math/rand/v2"
	"testing"
)

// escapesByByte is the plain definition jsonEscapes must agree with.
func escapesByByte(tok []byte) bool {
	for _, c := range tok {
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			return true
		}
	}
	return false
}

// TestJSONEscapes compares the word-at-a-time check with the byte loop: every single byte
// value at every position of tokens of several lengths, and random tokens.
func TestJSONEscapes(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 7, 8, 9, 16, 23, 152} {
		for pos := range n {
			for c := range 256 {
				tok := make([]byte, n)
				for i := range tok {
					tok[i] = 'a' + byte(i%26)
				}
				tok[pos] = byte(c)
				if got, want := jsonEscapes(tok), escapesByByte(tok); got != want {
					t.Fatalf("len %d, byte %#x at %d: jsonEscapes %v, want %v", n, c, pos, got, want)
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 100000 {
		tok := make([]byte, rng.IntN(40))
		for i := range tok {
			tok[i] = byte(0x1c + rng.IntN(0x68)) // mostly printable, some on either side
		}
		if got, want := jsonEscapes(tok), escapesByByte(tok); got != want {
			t.Fatalf("%q: jsonEscapes %v, want %v", tok, got, want)
		}
	}
}

// FuzzJSONEscapes checks jsonEscapes against the byte loop on any input.
func FuzzJSONEscapes(f *testing.F) {
	f.Add([]byte("fcm-token:APA91b_0123456789"))
	f.Add([]byte("with\"quote"))
	f.Fuzz(func(t *testing.T, tok []byte) {
		if got, want := jsonEscapes(tok), escapesByByte(tok); got != want {
			t.Fatalf("%q: jsonEscapes %v, want %v", tok, got, want)
		}
	})
}

// BenchmarkFCMBadToken is the check every FCM request's token goes through.
func BenchmarkFCMBadToken(b *testing.B) {
	tok := make([]byte, 152)
	for i := range tok {
		tok[i] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789-_:"[i%49]
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, bad := fcmBadToken(tok); bad {
			b.Fatal("reported bad")
		}
	}
}
