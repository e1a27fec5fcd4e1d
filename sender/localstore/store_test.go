package localstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/salvopush/salvo/sender"
)

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	tests := []struct {
		name string
		key  string
		data []byte
	}{
		// A top-level object.
		{"flat", "manifest.json", []byte(`{"n":1}`)},
		// Nested keys create directories.
		{"nested", "campaigns/c1/shards/0001.bin", []byte{0, 1, 2, 255}},
		// Empty objects exist and read back empty.
		{"empty", "campaigns/c1/empty", nil},
		// Dots inside a segment are ordinary characters.
		{"dots", "a/..b/c..", []byte("x")},
		// A Put replaces the object: the second value is read back.
		{"overwrite", "manifest.json", []byte(`{"n":2}`)},
	}
	for _, tt := range tests {
		if err := s.Put(ctx, tt.key, tt.data); err != nil {
			t.Fatalf("%s: Put: %v", tt.name, err)
		}
		got, err := s.Get(ctx, tt.key)
		if err != nil {
			t.Fatalf("%s: Get: %v", tt.name, err)
		}
		if !bytes.Equal(got, tt.data) {
			t.Fatalf("%s: Get = %q, want %q", tt.name, got, tt.data)
		}
	}
	// Nothing but the objects is left in the directory.
	keys, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a/..b/c..", "campaigns/c1/empty", "campaigns/c1/shards/0001.bin", "manifest.json"}
	if !slices.Equal(keys, want) {
		t.Fatalf("List = %q, want %q", keys, want)
	}
}

func TestBadKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	tests := []struct {
		name string
		key  string
	}{
		// Keys must name something.
		{"empty", ""},
		// No escaping the directory.
		{"absolute", "/etc/passwd"},
		{"dotdot", "../outside"},
		{"inner dotdot", "a/../../b"},
		{"dot", "./a"},
		// Empty segments would alias other keys.
		{"double slash", "a//b"},
		{"trailing slash", "a/"},
		// Windows separators and NUL are never part of a key.
		{"backslash", `a\b`},
		{"nul", "a\x00b"},
		// Reserved for files being written.
		{"temp prefix", "a/.salvo-tmp-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			errs := map[string]error{"Put": s.Put(ctx, tt.key, []byte("x"))}
			_, errs["Get"] = s.Get(ctx, tt.key)
			errs["Delete"] = s.Delete(ctx, tt.key)
			for op, err := range errs {
				if !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.key)) {
					t.Errorf("%s(%q) = %v, want ErrBadKey naming the key", op, tt.key, err)
				}
			}
		})
	}
	if keys, err := s.List(ctx, ""); err != nil || len(keys) != 0 {
		t.Fatalf("List after bad keys = %q, %v; want nothing written", keys, err)
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	for _, k := range []string{"ab", "a/c/d", "a/b", "b", "a.b", "a/c/e"} {
		if err := s.Put(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	// A file being written by a Put elsewhere is never listed.
	if err := os.WriteFile(filepath.Join(s.Dir(), "a", tempPrefix+"123"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		prefix  string
		want    []string
		wantErr bool
	}{
		// Everything, sorted as strings ("." < "/" < "b").
		{"all", "", []string{"a.b", "a/b", "a/c/d", "a/c/e", "ab", "b"}, false},
		// A directory prefix.
		{"dir", "a/", []string{"a/b", "a/c/d", "a/c/e"}, false},
		// A prefix that stops inside a segment.
		{"partial segment", "a", []string{"a.b", "a/b", "a/c/d", "a/c/e", "ab"}, false},
		{"partial nested", "a/c/", []string{"a/c/d", "a/c/e"}, false},
		{"exact key", "a/c/d", []string{"a/c/d"}, false},
		// Nothing there.
		{"missing dir", "zz/", nil, false},
		{"missing partial", "zz", nil, false},
		// A prefix below an object ("b" is a file).
		{"below a file", "b/x", nil, false},
		// A prefix that would leave the directory.
		{"dotdot", "../", nil, true},
		{"absolute", "/a", nil, true},
	}
	for _, tt := range tests {
		got, err := s.List(ctx, tt.prefix)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: List(%q) error = %v, want error %v", tt.name, tt.prefix, err, tt.wantErr)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: List(%q) = %q, want %q", tt.name, tt.prefix, got, tt.want)
		}
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	if err := s.Put(ctx, "a/b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  string
	}{
		// Never written.
		{"missing", "nope"},
		// Only a prefix of another key.
		{"prefix", "a"},
		// Below an object.
		{"below object", "a/b/c"},
	}
	for _, tt := range tests {
		_, err := s.Get(ctx, tt.key)
		if !errors.Is(err, sender.ErrNotFound) || !strings.Contains(err.Error(), tt.key) {
			t.Errorf("%s: Get(%q) = %v, want ErrNotFound naming the key", tt.name, tt.key, err)
		}
	}
	// Deleting makes a key missing; deleting again is fine.
	for range 2 {
		if err := s.Delete(ctx, "a/b"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Get(ctx, "a/b"); !errors.Is(err, sender.ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}
}

func TestCancelledContext(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, gerr := s.Get(ctx, "k")
	_, lerr := s.List(ctx, "")
	for _, err := range []error{s.Put(ctx, "k", nil), gerr, lerr} {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	}
}

// TestConcurrentPuts has writers replace one key while readers read it: a reader sees one
// whole value, never a mix or a partial file.
func TestConcurrentPuts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	const writers, rounds, size = 4, 25, 64 << 10
	values := make([][]byte, writers)
	for i := range values {
		values[i] = bytes.Repeat([]byte{byte('a' + i)}, size)
	}
	if err := s.Put(ctx, "k", values[0]); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers)
	for w := range writers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range rounds {
				if err := s.Put(ctx, "k", values[w]); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range rounds {
				got, err := s.Get(ctx, "k")
				if err != nil {
					errs <- err
					return
				}
				if len(got) != size || !bytes.Equal(got, bytes.Repeat(got[:1], size)) {
					errs <- fmt.Errorf("read a torn value of %d bytes", len(got))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
