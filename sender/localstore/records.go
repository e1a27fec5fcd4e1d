package localstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/salvopush/salvo/sender"
)

var _ sender.RecordStore = (*Records)(nil)

// Records is a sender.RecordStore with compare-and-set versions, safe for concurrent use.
// NewRecords keeps records in memory only; OpenRecords also writes each record to a file
// so that they survive a restart. Reads never touch the disk.
type Records struct {
	dir string // "" for memory only

	mu   sync.RWMutex
	recs map[string]stored
}

type stored struct {
	version int64
	data    []byte
}

// NewRecords returns an empty in-memory record store. There is nothing to close.
func NewRecords() *Records {
	return &Records{recs: make(map[string]stored)}
}

// OpenRecords returns a record store kept in dir, one JSON file per record, loading the
// records already there. Each write replaces its file atomically before it is acknowledged.
// Only one process may use dir at a time. There is nothing to close.
func OpenRecords(dir string) (*Records, error) {
	if dir == "" {
		return nil, errors.New("localstore: open records: dir is empty")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("localstore: open records: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("localstore: open records: %w", err)
	}
	r := &Records{dir: dir, recs: make(map[string]stored, len(ents))}
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, tempPrefix) {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("localstore: open records: %w", err)
		}
		var f recordFile
		if err := json.Unmarshal(raw, &f); err != nil {
			return nil, fmt.Errorf("localstore: open records: %s: %w", name, err)
		}
		if f.Key == "" || f.Version < 1 || recordFileName(f.Key) != name {
			return nil, fmt.Errorf("localstore: open records: %s: key %q or version %d does not match the file", name, f.Key, f.Version)
		}
		data := f.Bytes
		if f.JSON != nil {
			data = f.JSON
		}
		r.recs[f.Key] = stored{version: f.Version, data: data}
	}
	return r, nil
}

// recordFile is the on-disk form of a record: JSON data is kept readable, other data is
// base64.
type recordFile struct {
	Key     string          `json:"key"`
	Version int64           `json:"version"`
	JSON    json.RawMessage `json:"json,omitempty"`
	Bytes   []byte          `json:"bytes,omitempty"`
}

// recordFileName maps a key to its file name: the key with every byte outside [A-Za-z0-9_-]
// escaped as %XX, or a hash of the key when that would be too long for a file name.
func recordFileName(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	if b.Len() > 200 {
		sum := sha256.Sum256([]byte(key))
		return "h-" + hex.EncodeToString(sum[:]) + ".json"
	}
	return b.String() + ".json"
}

// Get returns a copy of the record at key, or an error wrapping sender.ErrNotFound.
func (r *Records) Get(ctx context.Context, key string) (sender.Record, error) {
	if err := ctx.Err(); err != nil {
		return sender.Record{}, fmt.Errorf("localstore: get record %q: %w", key, err)
	}
	r.mu.RLock()
	s, ok := r.recs[key]
	r.mu.RUnlock()
	if !ok {
		return sender.Record{}, fmt.Errorf("localstore: get record %q: %w", key, sender.ErrNotFound)
	}
	return sender.Record{Key: key, Version: s.version, Data: bytes.Clone(s.data)}, nil
}

// CompareAndSwap stores a copy of data at key if the stored version equals expected (0: the
// key must not exist) and returns the new version, expected+1. Otherwise it returns an error
// wrapping sender.ErrConflict and changes nothing. Of concurrent calls with the same expected
// version exactly one succeeds.
func (r *Records) CompareAndSwap(ctx context.Context, key string, expected int64, data []byte) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("localstore: compare-and-swap %q: %w", key, err)
	}
	if key == "" {
		return 0, errors.New("localstore: compare-and-swap: key is empty")
	}
	if expected < 0 {
		return 0, fmt.Errorf("localstore: compare-and-swap %q: expected version %d is negative", key, expected)
	}
	data = bytes.Clone(data)
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur := r.recs[key].version; cur != expected {
		return 0, fmt.Errorf("localstore: compare-and-swap %q: expected version %d, stored %d: %w", key, expected, cur, sender.ErrConflict)
	}
	next := stored{version: expected + 1, data: data}
	if r.dir != "" {
		if err := r.write(key, next); err != nil {
			return 0, fmt.Errorf("localstore: compare-and-swap %q: %w", key, err)
		}
	}
	r.recs[key] = next
	return next.version, nil
}

// write persists one record; called with r.mu held.
func (r *Records) write(key string, s stored) error {
	f := recordFile{Key: key, Version: s.version}
	if isCompactJSON(s.data) {
		f.JSON = s.data
	} else {
		f.Bytes = s.data
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(f); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(r.dir, recordFileName(key)), buf.Bytes())
}

// isCompactJSON reports whether data is JSON that the encoder would copy unchanged.
func isCompactJSON(data []byte) bool {
	if len(data) == 0 {
		return false
	}
	var c bytes.Buffer
	return json.Compact(&c, data) == nil && bytes.Equal(c.Bytes(), data)
}

// List returns copies of the records whose key starts with prefix, sorted by key.
func (r *Records) List(ctx context.Context, prefix string) ([]sender.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("localstore: list records %q: %w", prefix, err)
	}
	r.mu.RLock()
	var out []sender.Record
	for k, s := range r.recs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, sender.Record{Key: k, Version: s.version, Data: bytes.Clone(s.data)})
		}
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b sender.Record) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}
