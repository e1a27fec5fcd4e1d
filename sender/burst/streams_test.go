package burst

import (
	"math/rand/v2"
	"testing"
)

// TestStreamTable checks streamTable against a map through random opens and ends,
// including streams that outlive many later ones (they overflow their ring slot).
func TestStreamTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var tab streamTable
	want := map[uint32]*stream{}
	next := uint32(1)
	for step := range 200_000 {
		if rng.IntN(100) < 52 || len(want) == 0 {
			st := &stream{id: next}
			next += 2
			tab.put(st)
			want[st.id] = st
		} else {
			// End a random open stream; most are recent, a few are old.
			var id uint32
			for id = range want {
				break
			}
			if rng.IntN(10) > 0 {
				if cand := next - 2*uint32(1+rng.IntN(64)); want[cand] != nil {
					id = cand
				}
			}
			tab.del(id)
			delete(want, id)
			tab.del(id) // a second end does nothing
		}
		if tab.len() != len(want) {
			t.Fatalf("step %d: len %d, want %d", step, tab.len(), len(want))
		}
		if step%997 == 0 {
			for id, st := range want {
				if got := tab.get(id); got != st {
					t.Fatalf("step %d: get(%d) = %v, want %v", step, id, got, st)
				}
			}
			if got := tab.get(next); got != nil {
				t.Fatalf("step %d: get of an unopened ID %d = %v", step, next, got)
			}
			all := tab.appendAll(nil)
			if len(all) != len(want) {
				t.Fatalf("step %d: appendAll gave %d, want %d", step, len(all), len(want))
			}
			for _, st := range all {
				if want[st.id] != st {
					t.Fatalf("step %d: appendAll gave stream %d, not open", step, st.id)
				}
			}
		}
	}
	if len(tab.over) == 0 {
		t.Fatal("no stream overflowed its ring slot: the test did not reach that path")
	}
}
