package localstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/salvopush/salvo/sender"
)

// tempPrefix starts the names of files being written; List never shows them and keys may not
// use it.
const tempPrefix = ".salvo-tmp-"

// ErrBadKey is wrapped by the errors for keys that cannot name an object.
var ErrBadKey = errors.New("bad key")

var _ sender.ObjectStore = (*Store)(nil)

// Store is a sender.ObjectStore on a local directory: the object at key "a/b/c" is the file
// dir/a/b/c. It is safe for concurrent use within one process, and by several processes as
// long as they do not write the same key at the same time (the last rename wins).
//
// Unlike S3, a key cannot be both an object and a prefix of other objects' keys ("a" and
// "a/b"): the second Put fails.
type Store struct {
	dir string
}

// Open returns a store on dir, creating the directory if needed. A Store holds no open files;
// there is nothing to close.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("localstore: open: dir is empty")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("localstore: open %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("localstore: open: %w", err)
	}
	return &Store{dir: abs}, nil
}

// Dir returns the store's directory, absolute.
func (s *Store) Dir() string { return s.dir }

// CheckKey reports why key cannot name an object, or nil. A key is a "/"-separated path of
// non-empty segments, none of them "." or "..", with no leading "/", no backslash or NUL, and
// no segment starting with ".salvo-tmp-" (reserved for files being written).
func CheckKey(key string) error {
	if key == "" {
		return fmt.Errorf("key %q is empty: %w", key, ErrBadKey)
	}
	if strings.HasPrefix(key, "/") {
		return fmt.Errorf("key %q is absolute: %w", key, ErrBadKey)
	}
	if strings.ContainsAny(key, "\\\x00") {
		return fmt.Errorf("key %q has a backslash or NUL: %w", key, ErrBadKey)
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return fmt.Errorf("key %q has an empty segment: %w", key, ErrBadKey)
		case seg == "." || seg == "..":
			return fmt.Errorf("key %q has a %q segment: %w", key, seg, ErrBadKey)
		case strings.HasPrefix(seg, tempPrefix):
			return fmt.Errorf("key %q uses the reserved prefix %q: %w", key, tempPrefix, ErrBadKey)
		}
	}
	return nil
}

// path maps a checked key to its file.
func (s *Store) path(key string) string {
	return filepath.Join(s.dir, filepath.FromSlash(key))
}

// Put writes data under key, replacing any previous object. The write is atomic: readers see
// the old object or the new one, never a part (a temporary file renamed into place). It is
// not synced to disk: a power loss may lose it, a process crash does not.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("localstore: put %q: %w", key, err)
	}
	if err := CheckKey(key); err != nil {
		return fmt.Errorf("localstore: put: %w", err)
	}
	if err := writeAtomic(s.path(key), data); err != nil {
		return fmt.Errorf("localstore: put %q: %w", key, err)
	}
	return nil
}

// PutStream writes what r yields under key, replacing any previous object, without holding
// it in memory: it goes to a temporary file that is renamed into place only once r is read
// to its end, so a failed upload leaves the old object (or none). It returns the bytes
// written.
func (s *Store) PutStream(ctx context.Context, key string, r io.Reader) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("localstore: put %q: %w", key, err)
	}
	if err := CheckKey(key); err != nil {
		return 0, fmt.Errorf("localstore: put: %w", err)
	}
	var n int64
	err := writeAtomicFrom(s.path(key), func(f *os.File) error {
		var err error
		n, err = io.Copy(f, r)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("localstore: put %q: %w", key, err)
	}
	return n, nil
}

// writeAtomic writes data to path through a temporary file in the same directory.
func writeAtomic(path string, data []byte) error {
	return writeAtomicFrom(path, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// writeAtomicFrom fills a temporary file in path's directory with fill and renames it into
// place. Objects hold device tokens: directories are 0700 and files 0600, readable by the
// owner only.
func writeAtomicFrom(path string, fill func(*os.File) error) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, tempPrefix+"*") // mode 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = fill(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// Get reads the object at key. A missing key, or a key that is only a prefix of other keys,
// gives an error wrapping sender.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("localstore: get %q: %w", key, err)
	}
	if err := CheckKey(key); err != nil {
		return nil, fmt.Errorf("localstore: get: %w", err)
	}
	p := s.path(key)
	data, err := os.ReadFile(p)
	if err != nil {
		// A directory is only a prefix; a file parent ("a" for "a/b") means no such key.
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || isDir(p) {
			return nil, fmt.Errorf("localstore: get %q: %w", key, sender.ErrNotFound)
		}
		return nil, fmt.Errorf("localstore: get %q: %w", key, err)
	}
	return data, nil
}

// Delete removes the object at key; deleting a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("localstore: delete %q: %w", key, err)
	}
	if err := CheckKey(key); err != nil {
		return fmt.Errorf("localstore: delete: %w", err)
	}
	p := s.path(key)
	if isDir(p) {
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("localstore: delete %q: %w", key, err)
	}
	return nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// List returns the keys that start with prefix, sorted. The prefix need not end at a "/":
// "camp" lists "campaigns/x". A prefix with a ".." segment, a leading "/", a backslash or NUL
// is refused.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("localstore: list %q: %w", prefix, err)
	}
	if prefix != "" {
		// Every complete segment of the prefix must be valid; the last may be partial.
		if err := CheckKey(prefix + "x"); err != nil {
			return nil, fmt.Errorf("localstore: list: bad prefix %q: %w", prefix, ErrBadKey)
		}
	}
	// Walk the deepest directory the prefix names in full.
	root := s.dir
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		root = s.path(prefix[:i])
	}
	var keys []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)) {
				return fs.SkipAll
			}
			return err
		}
		if d.IsDir() {
			return ctx.Err()
		}
		if strings.HasPrefix(d.Name(), tempPrefix) {
			return nil
		}
		rel, err := filepath.Rel(s.dir, p)
		if err != nil {
			return err
		}
		if key := filepath.ToSlash(rel); strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("localstore: list %q: %w", prefix, err)
	}
	slices.Sort(keys)
	return keys, nil
}
