package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/salvopush/salvo/sender"
)

// NewRecordStore returns a record store for one test. The suite writes keys under a root
// unique to each subtest, so stores may share storage.
type NewRecordStore func(t *testing.T) sender.RecordStore

func cas(t *testing.T, s sender.RecordStore, key string, expected int64, data string) (int64, error) {
	t.Helper()
	v, err := s.CompareAndSwap(t.Context(), key, expected, []byte(data))
	if err != nil && !errors.Is(err, sender.ErrConflict) {
		t.Fatalf("CompareAndSwap(%q, %d): %v, want nil or ErrConflict", key, expected, err)
	}
	return v, err
}

func mustCAS(t *testing.T, s sender.RecordStore, key string, expected int64, data string) int64 {
	t.Helper()
	v, err := cas(t, s, key, expected, data)
	if err != nil || v <= 0 {
		t.Fatalf("CompareAndSwap(%q, %d) = %d, %v; want a positive version", key, expected, v, err)
	}
	return v
}

var recordCases = []struct {
	name string
	run  func(t *testing.T, s sender.RecordStore, root string)
}{
	// Version 0 creates; the returned version is the one to swap from next; a stale,
	// future or zero version on an existing record conflicts and writes nothing.
	{"compare and swap", func(t *testing.T, s sender.RecordStore, root string) {
		k := root + "/go"
		v1 := mustCAS(t, s, k, 0, `{"n":1}`)
		if _, err := cas(t, s, k, 0, `{"n":9}`); !errors.Is(err, sender.ErrConflict) {
			t.Fatalf("second create: %v, want ErrConflict", err)
		}
		v2 := mustCAS(t, s, k, v1, `{"n":2}`)
		if v2 == v1 {
			t.Fatalf("version %d unchanged by a write", v2)
		}
		for _, stale := range []int64{v1, v2 + 7} {
			if _, err := cas(t, s, k, stale, `{"n":9}`); !errors.Is(err, sender.ErrConflict) {
				t.Fatalf("swap from version %d (stored %d): %v, want ErrConflict", stale, v2, err)
			}
		}
		got, err := s.Get(t.Context(), k)
		if err != nil || got.Key != k || got.Version != v2 || string(got.Data) != `{"n":2}` {
			t.Fatalf("Get = %+v (%s), %v; want version %d and the second write", got, got.Data, err, v2)
		}
	}},
	// A missing record is ErrNotFound to Get, and a conflict to a swap from any version but 0.
	{"missing", func(t *testing.T, s sender.RecordStore, root string) {
		if _, err := s.Get(t.Context(), root+"/none"); !errors.Is(err, sender.ErrNotFound) {
			t.Fatalf("Get of a missing record: %v, want ErrNotFound", err)
		}
		if _, err := cas(t, s, root+"/none", 3, `{}`); !errors.Is(err, sender.ErrConflict) {
			t.Fatalf("swap of a missing record from version 3: %v, want ErrConflict", err)
		}
	}},
	// Empty data is a record like any other.
	{"empty data", func(t *testing.T, s sender.RecordStore, root string) {
		v := mustCAS(t, s, root+"/empty", 0, "")
		got, err := s.Get(t.Context(), root+"/empty")
		if err != nil || got.Version != v || len(got.Data) != 0 {
			t.Fatalf("Get = %+v, %v; want version %d and no data", got, err, v)
		}
	}},
	// List returns the records under a prefix, sorted by key, with versions and data;
	// the prefix need not end at a "/".
	{"list", func(t *testing.T, s sender.RecordStore, root string) {
		other := root + "x"
		keys := []string{root + "/b", root + "/a2", root + "/c/d", root + "/a", other + "/a"}
		for i, k := range keys {
			mustCAS(t, s, k, 0, fmt.Sprintf(`{"i":%d}`, i))
		}
		tests := []struct {
			prefix string
			want   []string
		}{
			// A folder-like prefix: everything under it, nested keys included, sorted.
			{root + "/", []string{root + "/a", root + "/a2", root + "/b", root + "/c/d"}},
			// A prefix that ends inside a key.
			{root + "/a", []string{root + "/a", root + "/a2"}},
			// A prefix without "/": other roots that start with it too.
			{root, []string{root + "/a", root + "/a2", root + "/b", root + "/c/d", other + "/a"}},
			// Nothing there.
			{root + "/zz", nil},
		}
		for _, tt := range tests {
			recs, err := s.List(t.Context(), tt.prefix)
			if err != nil {
				t.Fatalf("List(%q): %v", tt.prefix, err)
			}
			var got []string
			for _, r := range recs {
				got = append(got, r.Key)
				i := slices.Index(keys, r.Key)
				if r.Version <= 0 || !bytes.Equal(r.Data, fmt.Appendf(nil, `{"i":%d}`, i)) {
					t.Fatalf("List(%q): record %+v (%s) lost its version or data", tt.prefix, r, r.Data)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("List(%q) = %v, want %v", tt.prefix, got, tt.want)
			}
		}
	}},
	// Of many swaps from the same version at once, exactly one wins.
	{"race", func(t *testing.T, s sender.RecordStore, root string) {
		k := root + "/press"
		var from int64
		for round := range 2 {
			var wg sync.WaitGroup
			var mu sync.Mutex
			var won []int64
			for i := range 6 {
				wg.Go(func() {
					v, err := s.CompareAndSwap(t.Context(), k, from, fmt.Appendf(nil, `{"r":%d,"i":%d}`, round, i))
					switch {
					case err == nil:
						mu.Lock()
						won = append(won, v)
						mu.Unlock()
					case !errors.Is(err, sender.ErrConflict):
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if len(won) != 1 {
				t.Fatalf("round %d: %d swaps from version %d won, want 1", round, len(won), from)
			}
			from = won[0]
		}
	}},
}

// RecordStore runs the sender.RecordStore suite against stores from newStore, each
// behaviour in its own parallel subtest.
func RecordStore(t *testing.T, newStore NewRecordStore) {
	for _, c := range recordCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, newStore(t), name(t))
		})
	}
}
