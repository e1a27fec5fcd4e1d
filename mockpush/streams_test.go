package mockpush

import (
	"math/rand/v2"
	"testing"
)

// TestStreamTable runs random opens and closes, with streams that stay open long enough to
// collide, against a map.
func TestStreamTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tab := newStreamTable()
	model := map[uint32]*h2stream{}
	var open []*h2stream
	next := uint32(1)
	for i := 0; i < 200000; i++ {
		if len(open) == 0 || rng.IntN(100) < 52 {
			st := &h2stream{id: next}
			next += 2
			tab.put(st)
			model[st.id] = st
			open = append(open, st)
		} else {
			// Mostly close a recent stream; now and then an old one.
			k := len(open) - 1 - rng.IntN(min(len(open), 8))
			if rng.IntN(50) == 0 {
				k = rng.IntN(len(open))
			}
			st := open[k]
			open = append(open[:k], open[k+1:]...)
			tab.del(st)
			delete(model, st.id)
		}
		if i%1000 == 0 {
			if tab.n != len(model) {
				t.Fatalf("step %d: %d streams, want %d", i, tab.n, len(model))
			}
			seen := 0
			tab.each(func(st *h2stream) {
				seen++
				if model[st.id] != st {
					t.Fatalf("step %d: stray stream %d", i, st.id)
				}
			})
			if seen != len(model) {
				t.Fatalf("step %d: each saw %d, want %d", i, seen, len(model))
			}
		}
		probe := uint32(rng.IntN(int(next)+4)) | 1
		if got := tab.get(probe); got != model[probe] {
			t.Fatalf("step %d: get(%d) = %v, want %v", i, probe, got, model[probe])
		}
	}
	t.Logf("%d open at the end, %d slots, %d in the map", len(model), len(tab.slots), len(tab.overflow))
}
