package localstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/salvopush/salvo/sender"
)

// recordStores returns one store of each kind, by name.
func recordStores(t *testing.T) map[string]func() *Records {
	return map[string]func() *Records{
		"memory": NewRecords,
		"disk": func() *Records {
			r, err := OpenRecords(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return r
		},
	}
}

func TestCompareAndSwap(t *testing.T) {
	t.Parallel()
	steps := []struct {
		name     string
		key      string
		expected int64
		data     string
		want     int64 // new version; 0 when the step must fail
		conflict bool  // the failure wraps ErrConflict
	}{
		// Version 0 creates.
		{"create", "campaigns/c1", 0, `{"state":"new"}`, 1, false},
		// Creating again loses: the key exists.
		{"create twice", "campaigns/c1", 0, `{"state":"other"}`, 0, true},
		// The current version updates.
		{"update", "campaigns/c1", 1, `{"state":"sending"}`, 2, false},
		// A stale version loses.
		{"stale", "campaigns/c1", 1, `{"state":"late"}`, 0, true},
		// A version from the future loses too.
		{"future", "campaigns/c1", 7, `{}`, 0, true},
		// Other keys are independent; data need not be JSON.
		{"other key", "workers/w1", 0, "\x00raw", 1, false},
		// Negative versions are a caller bug, not a conflict.
		{"negative", "campaigns/c1", -1, `{}`, 0, false},
		// Keys must not be empty.
		{"empty key", "", 0, `{}`, 0, false},
	}
	for kind, open := range recordStores(t) {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			r := open()
			for _, st := range steps {
				got, err := r.CompareAndSwap(ctx, st.key, st.expected, []byte(st.data))
				if st.want != 0 {
					if err != nil || got != st.want {
						t.Fatalf("%s: CompareAndSwap = %d, %v; want %d", st.name, got, err, st.want)
					}
					continue
				}
				if err == nil || errors.Is(err, sender.ErrConflict) != st.conflict {
					t.Fatalf("%s: CompareAndSwap = %d, %v; want an error (conflict: %v)", st.name, got, err, st.conflict)
				}
			}
			rec, err := r.Get(ctx, "campaigns/c1")
			if err != nil || rec.Version != 2 || string(rec.Data) != `{"state":"sending"}` {
				t.Fatalf("Get = %+v, %v; want version 2, state sending", rec, err)
			}
			if _, err := r.Get(ctx, "campaigns/none"); !errors.Is(err, sender.ErrNotFound) {
				t.Fatalf("Get(missing) = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestRecordsList(t *testing.T) {
	t.Parallel()
	for kind, open := range recordStores(t) {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			r := open()
			for _, k := range []string{"ready/c1/w2", "campaigns/c1", "ready/c1/w1", "ready/c10/w1", "ready/c2/w1"} {
				if _, err := r.CompareAndSwap(ctx, k, 0, []byte(k)); err != nil {
					t.Fatal(err)
				}
			}
			tests := []struct {
				prefix string
				want   string
			}{
				// A prefix ending at a separator.
				{"ready/c1/", "ready/c1/w1 ready/c1/w2"},
				// A prefix inside a segment matches more.
				{"ready/c1", "ready/c1/w1 ready/c1/w2 ready/c10/w1"},
				// Everything, sorted.
				{"", "campaigns/c1 ready/c1/w1 ready/c1/w2 ready/c10/w1 ready/c2/w1"},
				// Nothing.
				{"zzz", ""},
			}
			for _, tt := range tests {
				recs, err := r.List(ctx, tt.prefix)
				if err != nil {
					t.Fatal(err)
				}
				keys := make([]string, len(recs))
				for i, rec := range recs {
					keys[i] = rec.Key
					if string(rec.Data) != rec.Key || rec.Version != 1 {
						t.Errorf("record %+v: want data = key, version 1", rec)
					}
				}
				if got := strings.Join(keys, " "); got != tt.want {
					t.Errorf("List(%q) = %q, want %q", tt.prefix, got, tt.want)
				}
			}
		})
	}
}

func TestRecordsAreCopies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := NewRecords()
	data := []byte("abc")
	if _, err := r.CompareAndSwap(ctx, "k", 0, data); err != nil {
		t.Fatal(err)
	}
	data[0] = 'X'
	got, _ := r.Get(ctx, "k")
	got.Data[1] = 'Y'
	if again, _ := r.Get(ctx, "k"); string(again.Data) != "abc" {
		t.Fatalf("stored data = %q, want abc: callers' slices leaked in", again.Data)
	}
}

// TestCompareAndSwapRace has many goroutines race to move one record forward: each version
// is won by exactly one of them.
func TestCompareAndSwapRace(t *testing.T) {
	t.Parallel()
	const goroutines, versions = 16, 200
	for kind, open := range recordStores(t) {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			r := open()
			var wins [versions]atomic.Int32
			var conflicts atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, goroutines)
			for g := range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						var v int64
						rec, err := r.Get(ctx, "k")
						switch {
						case err == nil:
							v = rec.Version
						case !errors.Is(err, sender.ErrNotFound):
							errs <- err
							return
						}
						if v >= versions {
							return
						}
						_, err = r.CompareAndSwap(ctx, "k", v, []byte(fmt.Sprint(g)))
						switch {
						case err == nil:
							wins[v].Add(1)
						case errors.Is(err, sender.ErrConflict):
							conflicts.Add(1)
						default:
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			for v := range wins {
				if n := wins[v].Load(); n != 1 {
					t.Errorf("version %d won %d times, want once", v, n)
				}
			}
			t.Logf("%d conflicts", conflicts.Load())
		})
	}
}

func TestOpenRecordsReloads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	r, err := OpenRecords(dir)
	if err != nil {
		t.Fatal(err)
	}
	writes := []struct {
		key  string
		data string
	}{
		// JSON is stored readable and comes back byte for byte.
		{"campaigns/c1", `{"name":"<TV spot> & more"}`},
		// Non-compact JSON and raw bytes come back unchanged too.
		{"spaced", "{ \"a\": 1 }\n"},
		{"raw", "\xff\x00binary"},
		// Odd characters and long keys map to safe file names.
		{"weird/../..%2F key", "x"},
		{strings.Repeat("long/", 60), "y"},
	}
	for _, w := range writes {
		if _, err := r.CompareAndSwap(ctx, w.key, 0, []byte(w.data)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.CompareAndSwap(ctx, "campaigns/c1", 1, []byte(`{"name":"v2"}`)); err != nil {
		t.Fatal(err)
	}
	writes[0].data = `{"name":"v2"}`

	again, err := OpenRecords(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range writes {
		rec, err := again.Get(ctx, w.key)
		if err != nil || string(rec.Data) != w.data {
			t.Errorf("after reopen Get(%q) = %+v, %v; want %q", w.key, rec, err, w.data)
		}
	}
	if rec, _ := again.Get(ctx, "campaigns/c1"); rec.Version != 2 {
		t.Errorf("version after reopen = %d, want 2", rec.Version)
	}
	// Every file stays inside dir.
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(writes) {
		t.Errorf("%d files in dir, want %d", len(ents), len(writes))
	}
	// A damaged file is reported with its name.
	if err := os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenRecords(dir); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Errorf("OpenRecords with a damaged file = %v, want an error naming it", err)
	}
}
