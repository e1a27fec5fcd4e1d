package conformance

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/salvopush/salvo/sender"
)

// NewObjectStore returns an object store for one test. The suite writes keys under a root
// unique to each subtest, so stores may share storage.
type NewObjectStore func(t *testing.T) sender.ObjectStore

func put(t *testing.T, s sender.ObjectStore, key string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, data); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func wantObject(t *testing.T, s sender.ObjectStore, key string, want []byte) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %d bytes, %v; want %d bytes", key, len(got), err, len(want))
	}
}

var objectCases = []struct {
	name string
	run  func(t *testing.T, s sender.ObjectStore, root string)
}{
	// What is put is got back; a second Put replaces it; empty and binary objects are fine.
	{"put and get", func(t *testing.T, s sender.ObjectStore, root string) {
		big := make([]byte, 300<<10)
		for i := range big {
			big[i] = byte(i * 7)
		}
		put(t, s, root+"/obj", []byte("first"))
		wantObject(t, s, root+"/obj", []byte("first"))
		put(t, s, root+"/obj", big)
		wantObject(t, s, root+"/obj", big)
		put(t, s, root+"/empty", nil)
		wantObject(t, s, root+"/empty", nil)
	}},
	// A missing key is an error wrapping ErrNotFound.
	{"missing", func(t *testing.T, s sender.ObjectStore, root string) {
		if _, err := s.Get(t.Context(), root+"/none"); !errors.Is(err, sender.ErrNotFound) {
			t.Fatalf("Get of a missing key: %v, want ErrNotFound", err)
		}
	}},
	// List returns the keys under a prefix, sorted; the prefix need not end at a "/".
	{"list", func(t *testing.T, s sender.ObjectStore, root string) {
		other := root + "x"
		for _, k := range []string{root + "/b", root + "/a/y", root + "/a/x", root + "/c", other + "/z"} {
			put(t, s, k, []byte(k))
		}
		tests := []struct {
			prefix string
			want   []string
		}{
			// A folder-like prefix: everything under it, nested keys included, sorted.
			{root + "/", []string{root + "/a/x", root + "/a/y", root + "/b", root + "/c"}},
			// A nested folder.
			{root + "/a/", []string{root + "/a/x", root + "/a/y"}},
			// A prefix that ends inside a segment.
			{root + "/a", []string{root + "/a/x", root + "/a/y"}},
			// A prefix without "/": other roots that start with it too.
			{root, []string{root + "/a/x", root + "/a/y", root + "/b", root + "/c", other + "/z"}},
			// Nothing there.
			{root + "/none/", nil},
		}
		for _, tt := range tests {
			got, err := s.List(t.Context(), tt.prefix)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("List(%q) = %v, %v; want %v", tt.prefix, got, err, tt.want)
			}
		}
	}},
}

// ObjectStore runs the sender.ObjectStore suite against stores from newStore, each
// behaviour in its own parallel subtest.
func ObjectStore(t *testing.T, newStore NewObjectStore) {
	for _, c := range objectCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, newStore(t), name(t))
		})
	}
}
