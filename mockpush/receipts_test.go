package mockpush

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

func TestLedgerCounts(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	l := newLedger(t0)
	steps := []struct {
		token, campaign string
		reject          string
	}{
		{"a", "c1", ""},              // new pair
		{"a", "c1", ""},              // same token, same campaign: duplicate
		{"a", "c2", ""},              // same token, another campaign: unique
		{"b", "c1", ""},              // another token: unique
		{"x", "", "BadDeviceToken"},  // a rejection
		{"y", "", "BadDeviceToken"},  // another one of the same reason
		{"z", "", "ConnectionReset"}, // an injected reset
	}
	for i, s := range steps {
		if s.reject != "" {
			l.reject(s.reject)
			continue
		}
		l.accept(s.token, s.campaign, t0.Add(time.Duration(i)*time.Millisecond))
	}
	got := l.stats()
	want := PlatformStats{Received: 7, Accepted: 4, Unique: 3, Duplicates: 1,
		Rejected: map[string]int64{"BadDeviceToken": 2, "ConnectionReset": 1}}
	if !equalStats(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	rc := l.receipts()
	b, _ := rc.MarshalBinary()
	var back Receipts
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !back.Epoch.Equal(t0) || len(back.Offsets) != 4 || back.Offsets[3] != 3000 {
		t.Fatalf("round trip: %+v", back)
	}
	since := back.Since(t0.Add(-time.Second))
	if since[0] != time.Second || since[3] != time.Second+3*time.Millisecond {
		t.Fatalf("Since: %v", since)
	}
	l.reset(t0.Add(time.Hour))
	if s := l.stats(); s.Received != 0 || len(s.Rejected) != 0 || len(l.receipts().Offsets) != 0 {
		t.Fatalf("after reset: %+v", s)
	}
}

func TestHashSet(t *testing.T) {
	var s hashSet
	for i := uint64(0); i < 10000; i++ {
		if !s.add(i * 0x9E3779B97F4A7C15) {
			t.Fatalf("%d not new", i)
		}
	}
	for i := uint64(0); i < 10000; i++ {
		if s.add(i*0x9E3779B97F4A7C15) || !s.has(i*0x9E3779B97F4A7C15) {
			t.Fatalf("%d lost", i)
		}
	}
	if s.has(12345) {
		t.Fatal("has an absent hash")
	}
}

// TestReceiptMemory measures the bytes 4 million receipts take (distinct tokens, one
// campaign) and keeps the figure documented in docs/mockpush.md honest.
func TestReceiptMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates about 100 MB")
	}
	const n = 4_000_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	t0 := time.Now()
	l := newLedger(t0)
	token := []byte(hexToken(0))
	for i := 0; i < n; i++ {
		for j, v := 63, i; j >= 48; j-- {
			token[j] = "0123456789abcdef"[v&0xf]
			v >>= 4
		}
		l.accept(string(token), "campaign-1", t0)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	st := l.stats()
	if st.Unique != n {
		t.Fatalf("unique %d", st.Unique)
	}
	perReceipt := float64(heap) / n
	t.Logf("%d receipts: %.1f MB heap, %.1f bytes per receipt (peak heap %.1f MB)", n, float64(heap)/1e6, perReceipt, float64(after.HeapSys)/1e6)
	if perReceipt > 50 {
		t.Fatalf("%.1f bytes per receipt, want at most 50 (200 MB for 4M)", perReceipt)
	}
	runtime.KeepAlive(l)
}

// TestHashSetAgainstMap inserts random hashes, repeats and hashes that share many top bits
// (which split blocks deeply) and checks membership and counts against a map.
func TestHashSetAgainstMap(t *testing.T) {
	var s hashSet
	model := map[uint64]bool{}
	x := uint64(88172645463325252)
	next := func() uint64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x }
	for i := 0; i < 300000; i++ {
		var h uint64
		switch i % 10 {
		case 0: // a repeat
			h = x
		case 1: // the same top 40 bits
			h = 0xABCDEF1234<<24 | next()>>40
		default:
			h = next()
		}
		if h == 0 {
			h = 1
		}
		if got, want := s.add(h), !model[h]; got != want {
			t.Fatalf("add %#x: %v, want %v", h, got, want)
		}
		model[h] = true
	}
	if s.n != len(model) {
		t.Fatalf("%d hashes, want %d", s.n, len(model))
	}
	for h := range model {
		if !s.has(h) {
			t.Fatalf("lost %#x", h)
		}
	}
	blocks := map[*setBlock]bool{}
	for _, b := range s.dir {
		blocks[b] = true
	}
	if len(s.over) == 0 {
		t.Fatal("hashes sharing 40 top bits did not fill a block of the deepest level")
	}
	t.Logf("%d hashes in %d blocks and %d in the map, directory of %d", s.n, len(blocks), len(s.over), len(s.dir))
}

// TestLedgerReuse fills a ledger, resets it and fills it again: the counts and receipts of
// the second run are its own.
func TestLedgerReuse(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	l := newLedger(t0)
	for run, n := range []int{200_000, 70_000} {
		for i := 0; i < n; i++ {
			l.accept(fmt.Sprintf("%064x", i), "c", t0.Add(time.Duration(i)*time.Microsecond))
		}
		l.accept(fmt.Sprintf("%064x", 0), "c", t0)
		st, rc := l.stats(), l.receipts()
		if st.Accepted != int64(n+1) || st.Unique != int64(n) || st.Duplicates != 1 || len(rc.Offsets) != n+1 ||
			rc.Offsets[n-1] != uint32(n-1) || rc.Offsets[n] != 0 {
			t.Fatalf("run %d: %+v, %d receipts", run, st, len(rc.Offsets))
		}
		l.reset(t0)
	}
}
