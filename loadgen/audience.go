package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/diskregistry"
)

// AudienceSpec describes an audience drawn from a registry.
type AudienceSpec struct {
	// Sample is the fraction of the registry's users to take, in [0, 1]; exactly
	// round(Sample * users) of them are taken, in registry order.
	Sample float64 `json:"sample"`
	// Seed selects which users are taken and where the unknown IDs go.
	Seed uint64 `json:"seed"`
	// Unknown is the number of user IDs absent from the registry to mix in, at random places.
	// They look like the registry's own IDs (the numbers after the last user).
	Unknown int `json:"unknown"`
	// Format is the file encoding: sender.AudienceCSV (a "user_id" header, then one ID per
	// line), sender.AudienceNDJSON (one {"user_id": "..."} object per line) or
	// sender.AudienceJSON (an array of ID strings, one per line): what the campaign API reads.
	Format sender.AudienceFormat `json:"format"`
}

// MaxUnknown bounds AudienceSpec.Unknown.
const MaxUnknown = 100_000_000

// DefaultAudienceSpec returns the whole registry as CSV, with seed 1.
func DefaultAudienceSpec() AudienceSpec {
	return AudienceSpec{Sample: 1, Seed: DefaultSeed, Format: sender.AudienceCSV}
}

// Validate checks every field and reports the first bad one as a *SpecError.
func (s AudienceSpec) Validate() error {
	if err := checkShare("Sample", s.Sample); err != nil {
		return err
	}
	if s.Unknown < 0 || s.Unknown > MaxUnknown {
		return &SpecError{"Unknown", fmt.Sprintf("must be between 0 and %d, got %d", MaxUnknown, s.Unknown)}
	}
	switch s.Format {
	case sender.AudienceCSV, sender.AudienceNDJSON, sender.AudienceJSON:
		return nil
	}
	return &SpecError{"Format", fmt.Sprintf("unknown audience format %q (want csv, ndjson or json)", s.Format)}
}

// AudienceSummary counts what WriteAudience wrote.
type AudienceSummary struct {
	Known   int `json:"known"`   // users of the registry
	Unknown int `json:"unknown"` // IDs the registry does not know
}

// Users is a registry as an audience is drawn from it: *diskregistry.Registry, or a
// UserList (the user IDs of a registry that lives elsewhere, such as DynamoDB).
type Users interface {
	// Len is the number of users.
	Len() int
	// Users calls fn with every user ID in ID order, stopping at fn's first error.
	Users(ctx context.Context, fn func(userID string) error) error
	// Devices answers, for each ID, nil when the registry does not know the user.
	Devices(ctx context.Context, userIDs []string) ([][]sender.Device, error)
}

var _ Users = (*diskregistry.Registry)(nil)

// UserList is a registry's user IDs held in memory, sorted: what an audience needs of a
// registry it cannot read in order (a DynamoDB table is scanned in no particular order).
// Devices says only whether a user is known: a known one gets an empty, non-nil list.
type UserList struct {
	ids []string
}

// NewUserList sorts ids (in place) and drops repeats.
func NewUserList(ids []string) *UserList {
	slices.Sort(ids)
	return &UserList{ids: slices.Compact(ids)}
}

// Len is the number of distinct users.
func (l *UserList) Len() int { return len(l.ids) }

// Users calls fn with every user ID in ID order.
func (l *UserList) Users(ctx context.Context, fn func(userID string) error) error {
	for i, id := range l.ids {
		if i%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if err := fn(id); err != nil {
			return err
		}
	}
	return nil
}

// Devices returns, for each ID, an empty list when the user is known and nil otherwise.
func (l *UserList) Devices(_ context.Context, userIDs []string) ([][]sender.Device, error) {
	out := make([][]sender.Device, len(userIDs))
	for i, id := range userIDs {
		if _, ok := slices.BinarySearch(l.ids, id); ok {
			out[i] = []sender.Device{}
		}
	}
	return out, nil
}

// WriteAudience writes to w an audience drawn from reg per spec. Equal registries and specs
// give identical output: a UserList of a registry's IDs gives what the registry itself
// gives. The caller owns reg and w.
func WriteAudience(ctx context.Context, reg Users, spec AudienceSpec, w io.Writer) (AudienceSummary, error) {
	var sum AudienceSummary
	if err := spec.Validate(); err != nil {
		return sum, err
	}
	unknown, err := unknownIDs(ctx, reg, spec.Unknown)
	if err != nil {
		return sum, fmt.Errorf("loadgen: write audience: %w", err)
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	out := newAudienceWriter(bw, spec.Format)
	r := newRNG(spec.Seed, 0)
	left := reg.Len()                                 // users not yet considered
	want := int(spec.Sample*float64(reg.Len()) + 0.5) // users still to take
	err = reg.Users(ctx, func(id string) error {
		take := r.intn(left) < want // selection sampling: exactly want users in the end
		left--
		if !take {
			return nil
		}
		for len(unknown) > 0 && r.intn(want+len(unknown)) < len(unknown) {
			if err := out.write(unknown[0]); err != nil {
				return err
			}
			unknown = unknown[1:]
			sum.Unknown++
		}
		want--
		sum.Known++
		return out.write(id)
	})
	for ; err == nil && len(unknown) > 0; unknown = unknown[1:] {
		err = out.write(unknown[0])
		sum.Unknown++
	}
	if err == nil {
		err = out.close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return AudienceSummary{}, fmt.Errorf("loadgen: write audience: %w", err)
	}
	return sum, nil
}

// WriteAudienceFile writes the audience drawn from reg to the file out, replacing it
// atomically.
func WriteAudienceFile(ctx context.Context, reg Users, spec AudienceSpec, out string) (AudienceSummary, error) {
	if err := spec.Validate(); err != nil {
		return AudienceSummary{}, err
	}
	f, err := newAtomicFile(out)
	if err != nil {
		return AudienceSummary{}, fmt.Errorf("loadgen: write audience: %w", err)
	}
	defer f.abort()
	sum, err := WriteAudience(ctx, reg, spec, f.w)
	if err != nil {
		return sum, err
	}
	if err := f.commit(); err != nil {
		return AudienceSummary{}, fmt.Errorf("loadgen: write audience: %w", err)
	}
	return sum, nil
}

// unknownIDs returns n user IDs that reg does not know, numbered after its last user in
// the generator's style.
func unknownIDs(ctx context.Context, reg Users, n int) ([]string, error) {
	width := idWidth(reg.Len() + n)
	ids := make([]string, 0, n)
	next := reg.Len() + 1
	for len(ids) < n {
		batch := make([]string, 0, n-len(ids))
		for range n - len(ids) {
			batch = append(batch, string(appendUserID(nil, next, width)))
			next++
		}
		devs, err := reg.Devices(ctx, batch)
		if err != nil {
			return nil, err
		}
		for i, d := range devs {
			if d == nil {
				ids = append(ids, batch[i])
			}
		}
	}
	return ids, nil
}

// audienceWriter encodes user IDs in one format.
type audienceWriter struct {
	w      *bufio.Writer
	format sender.AudienceFormat
	n      int
	buf    []byte
}

func newAudienceWriter(w *bufio.Writer, f sender.AudienceFormat) *audienceWriter {
	return &audienceWriter{w: w, format: f}
}

func (a *audienceWriter) write(id string) error {
	b := a.buf[:0]
	switch a.format {
	case sender.AudienceCSV:
		if a.n == 0 {
			b = append(b, "user_id\n"...)
		}
		b = appendCSVField(b, id)
		b = append(b, '\n')
	case sender.AudienceNDJSON:
		b = append(b, `{"user_id":`...)
		b = appendJSONString(b, id)
		b = append(b, "}\n"...)
	case sender.AudienceJSON:
		if a.n == 0 {
			b = append(b, "[\n"...)
		} else {
			b = append(b, ",\n"...)
		}
		b = appendJSONString(b, id)
	}
	a.n++
	a.buf = b
	_, err := a.w.Write(b)
	return err
}

// close ends the file (an empty CSV still gets its header, an empty JSON array its brackets).
func (a *audienceWriter) close() error {
	var err error
	switch {
	case a.format == sender.AudienceCSV && a.n == 0:
		_, err = a.w.WriteString("user_id\n")
	case a.format == sender.AudienceJSON && a.n == 0:
		_, err = a.w.WriteString("[]\n")
	case a.format == sender.AudienceJSON:
		_, err = a.w.WriteString("\n]\n")
	}
	return err
}

// appendCSVField appends s as one CSV field, quoted when it holds a comma, a quote, a line
// break or surrounding space.
func appendCSVField(b []byte, s string) []byte {
	if !strings.ContainsAny(s, ",\"\r\n") && strings.TrimSpace(s) == s {
		return append(b, s...)
	}
	b = append(b, '"')
	b = append(b, strings.ReplaceAll(s, `"`, `""`)...)
	return append(b, '"')
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	plain := utf8.ValidString(s)
	for i := 0; plain && i < len(s); i++ {
		plain = s[i] >= 0x20 && s[i] != '"' && s[i] != '\\' && s[i] != 0x7f
	}
	if plain {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	js, _ := json.Marshal(s) // a string always marshals
	return append(b, js...)
}

// atomicFile is a buffered temporary file renamed to its final name on commit.
type atomicFile struct {
	f    *os.File
	w    *bufio.Writer
	path string
	done bool
}

func newAtomicFile(path string) (*atomicFile, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, err
	}
	return &atomicFile{f: f, w: bufio.NewWriterSize(f, 256<<10), path: path}, nil
}

func (a *atomicFile) commit() error {
	err := a.w.Flush()
	if err == nil {
		err = a.f.Chmod(0o644)
	}
	if err == nil {
		err = a.f.Close()
	}
	if err == nil {
		err = os.Rename(a.f.Name(), a.path)
	}
	if err != nil {
		a.abort()
		return err
	}
	a.done = true
	return nil
}

// abort removes the temporary file; a no-op after commit.
func (a *atomicFile) abort() {
	if a.done {
		return
	}
	a.done = true
	a.f.Close()
	os.Remove(a.f.Name())
}

// writeFileAtomic writes data to path through a temporary file and a rename.
func writeFileAtomic(path string, data []byte) error {
	f, err := newAtomicFile(path)
	if err != nil {
		return err
	}
	if _, err := f.w.Write(data); err != nil {
		f.abort()
		return err
	}
	return f.commit()
}
