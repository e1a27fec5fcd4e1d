package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/diskregistry"
)

// parseAudience decodes an audience file with the campaign API's own parser.
func parseAudience(t *testing.T, data []byte, f sender.AudienceFormat) []string {
	t.Helper()
	ids, err := sender.ParseAudience(data, f)
	if err != nil {
		t.Fatalf("the campaign API refuses the file: %v\n%.200s", err, data)
	}
	return ids
}

// openRegistry generates a registry of users with the default spec and opens it.
func openRegistry(t *testing.T, users int) *diskregistry.Registry {
	t.Helper()
	dir := t.TempDir()
	if _, err := WriteRegistry(context.Background(), spec(users, nil), dir); err != nil {
		t.Fatal(err)
	}
	reg, err := diskregistry.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}

func TestWriteAudience(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := openRegistry(t, 10_000)
	for _, tc := range []struct {
		name         string
		spec         AudienceSpec
		known, unkwn int
	}{
		{"everyone", AudienceSpec{Sample: 1, Seed: 1, Format: sender.AudienceCSV}, 10_000, 0},                              // the whole registry
		{"tenth as ndjson", AudienceSpec{Sample: 0.1, Seed: 3, Format: sender.AudienceNDJSON}, 1000, 0},                    // exact count
		{"with unknown as json", AudienceSpec{Sample: 0.0123, Seed: 1, Unknown: 25, Format: sender.AudienceJSON}, 123, 25}, // rounded count, unknowns mixed in
		{"only unknown", AudienceSpec{Sample: 0, Seed: 1, Unknown: 3, Format: sender.AudienceCSV}, 0, 3},                   // no registry users at all
		{"empty json", AudienceSpec{Sample: 0, Seed: 1, Format: sender.AudienceJSON}, 0, 0},                                // still a valid file
		{"empty csv", AudienceSpec{Sample: 0.00001, Seed: 1, Format: sender.AudienceCSV}, 0, 0},                            // rounds to nobody: header only
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			sum, err := WriteAudience(ctx, reg, tc.spec, &buf)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Known != tc.known || sum.Unknown != tc.unkwn {
				t.Fatalf("summary %+v, want %d known and %d unknown", sum, tc.known, tc.unkwn)
			}
			ids := parseAudience(t, buf.Bytes(), tc.spec.Format)
			if len(ids) != tc.known+tc.unkwn {
				t.Fatalf("%d IDs in the file, want %d", len(ids), tc.known+tc.unkwn)
			}
			devs, err := reg.Devices(ctx, ids)
			if err != nil {
				t.Fatal(err)
			}
			var known, unknown []string
			for i, d := range devs {
				if d == nil {
					unknown = append(unknown, ids[i])
				} else {
					known = append(known, ids[i])
				}
			}
			if len(known) != tc.known || len(unknown) != tc.unkwn {
				t.Fatalf("registry knows %d and not %d of the IDs, want %d and %d", len(known), len(unknown), tc.known, tc.unkwn)
			}
			if !slices.IsSorted(known) || len(slices.Compact(slices.Clone(known))) != len(known) {
				t.Fatal("known users are not distinct and in registry order")
			}
			if len(slices.Compact(slices.Sorted(slices.Values(unknown)))) != len(unknown) {
				t.Fatal("unknown IDs repeat")
			}
			var again bytes.Buffer
			if _, err := WriteAudience(ctx, reg, tc.spec, &again); err != nil || !bytes.Equal(again.Bytes(), buf.Bytes()) {
				t.Fatalf("a second run differs (%v)", err)
			}
		})
	}

	// Another seed picks other users.
	var a, b bytes.Buffer
	WriteAudience(ctx, reg, AudienceSpec{Sample: 0.01, Seed: 1, Format: sender.AudienceCSV}, &a)
	WriteAudience(ctx, reg, AudienceSpec{Sample: 0.01, Seed: 2, Format: sender.AudienceCSV}, &b)
	if bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("seeds 1 and 2 give the same audience")
	}
}

// TestUnknownMixedIn: unknown IDs are spread through the file, not bunched at one end.
func TestUnknownMixedIn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := openRegistry(t, 2000)
	out := filepath.Join(t.TempDir(), "audience.csv")
	if _, err := WriteAudienceFile(ctx, reg, AudienceSpec{Sample: 0.5, Seed: 1, Unknown: 200, Format: sender.AudienceCSV}, out); err != nil {
		t.Fatal(err)
	}
	ids := parseAudience(t, readFile(t, filepath.Dir(out), "audience.csv"), sender.AudienceCSV)
	firstHalf := 0
	for _, id := range ids[:len(ids)/2] {
		if id > "u00002000" {
			firstHalf++
		}
	}
	if firstHalf < 70 || firstHalf > 130 { // 100 expected, standard deviation 6.5: the bounds are 4.6 of them away
		t.Fatalf("%d of 200 unknown IDs in the first half of the file", firstHalf)
	}
}

func TestAudienceSpecValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		spec  AudienceSpec
		field string // "" when valid
	}{
		{DefaultAudienceSpec(), ""},                                        // the defaults
		{AudienceSpec{Sample: 1.01, Format: sender.AudienceCSV}, "Sample"}, // more than everyone
		{AudienceSpec{Sample: 0.5, Unknown: -1, Format: sender.AudienceCSV}, "Unknown"},
		{AudienceSpec{Sample: 0.5, Format: "xml"}, "Format"}, // unknown format
		{AudienceSpec{Sample: 0.5}, "Format"},                // format left out
	} {
		err := tc.spec.Validate()
		var se *SpecError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("Validate(%+v) = %v", tc.spec, err)
		case tc.field != "" && (!errors.As(err, &se) || se.Field != tc.field):
			t.Errorf("Validate(%+v) = %v, want a SpecError on %s", tc.spec, err, tc.field)
		}
	}
}

func TestAudienceEscaping(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		id      string
		csv, js string
	}{
		{"u1", "u1", `"u1"`},                         // plain
		{"a,b", `"a,b"`, `"a,b"`},                    // comma needs CSV quotes
		{`say "hi"`, `"say ""hi"""`, `"say \"hi\""`}, // quotes doubled in CSV, escaped in JSON
		{"tab\there", "tab\there", `"tab\there"`},    // control character escaped in JSON
		{" pad", `" pad"`, `" pad"`},                 // surrounding space kept by quoting
		{"\xff", "\xff", `"\ufffd"`},                 // invalid UTF-8 replaced in JSON
	} {
		if got := string(appendCSVField(nil, tc.id)); got != tc.csv {
			t.Errorf("CSV of %q = %s, want %s", tc.id, got, tc.csv)
		}
		if got := string(appendJSONString(nil, tc.id)); got != tc.js {
			t.Errorf("JSON of %q = %s, want %s", tc.id, got, tc.js)
		}
		if strings.ContainsAny(tc.id, "\xff") {
			continue
		}
		var back string
		if err := json.Unmarshal(appendJSONString(nil, tc.id), &back); err != nil || back != tc.id {
			t.Errorf("JSON of %q reads back as %q (%v)", tc.id, back, err)
		}
	}
}

// TestUserListGivesTheRegistrysAudience: an audience drawn from the registry's user IDs
// alone, given in any order (as a DynamoDB scan gives them), is the registry's own, byte
// for byte, unknown IDs included.
func TestUserListGivesTheRegistrysAudience(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := openRegistry(t, 3000)
	var ids []string
	if err := reg.Users(ctx, func(id string) error { ids = append(ids, id); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Reverse(ids)
	ids = append(ids, ids[7]) // a repeat, dropped
	list := NewUserList(ids)
	if list.Len() != reg.Len() {
		t.Fatalf("UserList holds %d users, the registry %d", list.Len(), reg.Len())
	}
	for _, spec := range []AudienceSpec{
		{Sample: 1, Seed: 1, Format: sender.AudienceCSV},
		{Sample: 0.3, Seed: 9, Unknown: 40, Format: sender.AudienceNDJSON},
	} {
		var want, got bytes.Buffer
		if _, err := WriteAudience(ctx, reg, spec, &want); err != nil {
			t.Fatal(err)
		}
		if _, err := WriteAudience(ctx, list, spec, &got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("spec %+v: the UserList's audience differs from the registry's", spec)
		}
	}
}
