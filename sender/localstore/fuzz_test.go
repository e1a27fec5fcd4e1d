package localstore

import (
	"path/filepath"
	"strings"
	"testing"
)

// FuzzCheckKey: a key that passes CheckKey maps to a path inside the store's directory, and
// that path maps back to the same key.
func FuzzCheckKey(f *testing.F) {
	for _, k := range []string{"a", "a/b/c.json", "../x", "a//b", "/abs", `a\b`, "a/./b", "..a/b..", ".salvo-tmp-1", "é/ü"} {
		f.Add(k)
	}
	s := &Store{dir: filepath.FromSlash("/srv/objects")}
	f.Fuzz(func(t *testing.T, key string) {
		if CheckKey(key) != nil {
			return
		}
		p := s.path(key)
		rel, err := filepath.Rel(s.dir, p)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			t.Fatalf("key %q maps to %q, outside %q", key, p, s.dir)
		}
		if back := filepath.ToSlash(rel); back != key {
			t.Fatalf("key %q maps to %q, which lists as %q", key, p, back)
		}
	})
}
