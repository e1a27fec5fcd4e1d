package memqueue

import (
	"strconv"
	"testing"
)

// FuzzParseReceipt: any string either fails to parse or is a receipt this queue could have
// handed out, and parses back to the same message and delivery.
func FuzzParseReceipt(f *testing.F) {
	for _, r := range []string{"1.1", "18446744073709551615.3", "1.0", ".", "1.", "a.b", "1.1.1", "-1.2", "+1.2"} {
		f.Add(r)
	}
	f.Fuzz(func(t *testing.T, r string) {
		seq, count, err := parseReceipt(r)
		if err != nil {
			return
		}
		if count < 1 {
			t.Fatalf("%q parsed to count %d", r, count)
		}
		again := string(appendReceipt(nil, strconv.FormatUint(seq, 10), count))
		s2, c2, err := parseReceipt(again)
		if err != nil || s2 != seq || c2 != count {
			t.Fatalf("%q -> (%d, %d) -> %q -> (%d, %d, %v)", r, seq, count, again, s2, c2, err)
		}
	})
}
