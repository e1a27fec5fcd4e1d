package diskregistry

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/salvopush/salvo/sender"
)

const (
	hex64  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	fcmTok = "cX9aB-_1Z2y3X4w5V6u7T8:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx5a6b7c8d9e0f1g2h3i4j5k6l7m8n9o0p1q2r3s4t5u6v7w8x9y0z1A2B3C4D5E6F7G8H9I0J1K2L3M4N5O6P7Q8R9S0T1U2V3W4X"
)

// testUsers is a small registry exercising every record shape.
func testUsers() []struct {
	id   string
	devs []sender.Device
} {
	ios := func(tok string) sender.Device {
		return sender.Device{Platform: sender.PlatformIOS, Token: tok, App: "com.example.app", Locale: "en-US"}
	}
	android := func(tok string) sender.Device {
		return sender.Device{Platform: sender.PlatformAndroid, Token: tok, App: "example-project", Locale: "de-DE"}
	}
	return []struct {
		id   string
		devs []sender.Device
	}{
		{"u01", []sender.Device{ios(hex64)}},                                           // one APNs token, hex kind
		{"u02", []sender.Device{android(fcmTok)}},                                      // one FCM token, base64url kind
		{"u03", []sender.Device{ios(strings.Repeat("ab12", 40)), android(fcmTok[1:])}}, // two devices, 160-hex token
		{"u04", nil}, // known user without devices
		{"u05", []sender.Device{{Platform: sender.PlatformIOS, Token: "Not Hex, raw!", App: "x"}}}, // raw kind, empty locale
		{"u06", []sender.Device{android("dead0410" + fcmTok[8:])}},                                 // unregistered FCM token
		{"u07", []sender.Device{ios("DEADBEEF")}},                                                  // uppercase hex is not hex kind
		{"u08\u00e9", []sender.Device{android(fcmTok + ":again")}},                                 // non-ASCII ID, two colons: raw
	}
}

// writeTest writes testUsers into a new directory and returns it.
func writeTest(t testing.TB) string {
	t.Helper()
	return writeRegistry(t, func(add func(string, []sender.Device)) {
		for _, u := range testUsers() {
			add(u.id, u.devs)
		}
	})
}

// writeRegistry writes the users fill adds into a registry in a new directory and returns
// the directory.
func writeRegistry(t testing.TB, fill func(add func(id string, devs []sender.Device))) string {
	t.Helper()
	dir := t.TempDir()
	w, err := NewWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	fill(func(id string, devs []sender.Device) {
		if err := w.Add(id, devs); err != nil {
			t.Fatal(err)
		}
	})
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestTokenCodec(t *testing.T) {
	t.Parallel()
	c := newCodec()
	for _, tc := range []struct {
		tok  string
		kind int
	}{
		{hex64, kindHex},                           // common APNs token
		{strings.Repeat("0f", 80), kindHex},        // long APNs token
		{"ab", kindHex},                            // shortest hex
		{"abc", kindRaw},                           // odd length hex: base64url would not be smaller
		{fcmTok, kindB64},                          // FCM token with its ':'
		{fcmTok[23:], kindB64},                     // base64url without ':'
		{":" + fcmTok[23:], kindB64},               // ':' first
		{fcmTok[23:] + ":", kindB64},               // ':' last
		{"DEADBEEFdeadbeef", kindB64},              // mixed case hex
		{"a", kindRaw},                             // too short to pack
		{"a:b:c:d:e:f:g:h", kindRaw},               // several ':'
		{"token with spaces", kindRaw},             // outside the alphabet
		{strings.Repeat("A", 300) + ":x", kindRaw}, // ':' too far to record
		{strings.Repeat("Z", 254) + ":", kindB64},  // ':' at the last place one byte records
		{strings.Repeat("Z", 1023) + ":", kindRaw}, // longest token, ':' too far to record
	} {
		if got := c.kind(tc.tok); got != tc.kind {
			t.Errorf("kind(%.20q...) = %d, want %d", tc.tok, got, tc.kind)
		}
		checkRoundTrip(t, c, tc.tok)
	}
}

func checkRoundTrip(t *testing.T, c *codec, tok string) {
	t.Helper()
	kind := c.kind(tok)
	enc := c.appendToken([]byte("prefix"), tok, kind)
	if !bytes.HasPrefix(enc, []byte("prefix")) {
		t.Fatalf("appendToken(%q) overwrote dst", tok)
	}
	enc = enc[len("prefix"):]
	colon := kind == kindB64 && enc[0] != noColon
	if n, ok := encodedLen(kind, len(tok), colon); !ok || n != len(enc) {
		t.Fatalf("token %q kind %d: encoded %d bytes, encodedLen says %d (%v)", tok, kind, len(enc), n, ok)
	}
	dst := make([]byte, len(tok))
	if !decodeToken(dst, enc, kind, len(tok)) || string(dst) != tok {
		t.Fatalf("token %q kind %d: decoded %q", tok, kind, dst)
	}
}

func FuzzTokenCodec(f *testing.F) {
	f.Add(hex64)
	f.Add(fcmTok)
	f.Add("a:b")
	f.Add("x")
	c := newCodec()
	f.Fuzz(func(t *testing.T, tok string) {
		if tok == "" || len(tok) > MaxTokenLen {
			return
		}
		checkRoundTrip(t, c, tok)
	})
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, err := Open(writeTest(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	users := testUsers()
	if r.Len() != len(users) || r.DeviceCount() != 8 {
		t.Fatalf("Len %d, DeviceCount %d", r.Len(), r.DeviceCount())
	}
	if err := r.Verify(ctx); err != nil {
		t.Fatal(err)
	}

	var ids []string
	for _, u := range users {
		ids = append(ids, u.id)
	}
	query := append([]string{"nobody", "u0", "u09"}, ids...) // unknown IDs (one a prefix of others) first
	query = append(query, ids[2], "")                        // a repeat, and the empty ID
	got, err := r.Devices(ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(query) {
		t.Fatalf("%d answers for %d IDs", len(got), len(query))
	}
	for i, id := range query {
		var want []sender.Device
		for _, u := range users {
			if u.id == id {
				want = u.devs
				if want == nil {
					want = []sender.Device{}
				}
			}
		}
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("Devices(%q) = %v, want %v", id, got[i], want)
		}
		if (got[i] == nil) != (want == nil) {
			t.Errorf("Devices(%q): nil is %v, want %v", id, got[i] == nil, want == nil)
		}
	}

	var each []string
	err = r.Each(ctx, func(id string, devs []sender.Device) error {
		each = append(each, id)
		if u := users[len(each)-1]; len(devs) != len(u.devs) || len(devs) > 0 && !reflect.DeepEqual(devs, u.devs) {
			t.Errorf("Each(%q) = %v, want %v", id, devs, u.devs)
		}
		return nil
	})
	if err != nil || !reflect.DeepEqual(each, ids) {
		t.Errorf("Each gave %v, %v; want %v", each, err, ids)
	}
	stop := errors.New("stop")
	n := 0
	if err := r.Users(ctx, func(string) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("Users stopped after %d with %v, want 1 and the callback's error", n, err)
	}
}

func TestWriterRejects(t *testing.T) {
	t.Parallel()
	ok := []sender.Device{{Platform: sender.PlatformIOS, Token: hex64}}
	for _, tc := range []struct {
		name string
		id   string
		devs []sender.Device
		want string
	}{
		{"empty ID", "", ok, "empty user ID"},                                                     // IDs are keys
		{"long ID", strings.Repeat("u", MaxUserIDLen+1), ok, "longer than"},                       // bounded record size
		{"same ID", "u2", ok, "increasing order"},                                                 // duplicate of the previous user
		{"earlier ID", "u1", ok, "increasing order"},                                              // out of order
		{"no platform", "u3", []sender.Device{{Token: hex64}}, "unknown platform"},                // zero Platform
		{"empty token", "u3", []sender.Device{{Platform: sender.PlatformAndroid}}, "empty token"}, // nothing to push to
		{"long token", "u3", []sender.Device{{Platform: sender.PlatformIOS, Token: strings.Repeat("a", MaxTokenLen+1)}}, "token longer"},
		{"too many devices", "u3", make([]sender.Device, MaxDevicesPerUser+1), "devices, at most"}, // bounded record size
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			w, err := NewWriter(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Abort()
			if err := w.Add("u2", ok); err != nil {
				t.Fatal(err)
			}
			err = w.Add(tc.id, tc.devs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Add(%.10q) = %v, want an error containing %q", tc.id, err, tc.want)
			}
			if err := w.Add("u4", ok); err != nil { // a rejected user is not sticky
				t.Fatalf("Add after a rejected user: %v", err)
			}
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			r, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.Len() != 2 {
				t.Fatalf("Len = %d, want 2", r.Len())
			}
		})
	}
}

func TestAbortLeavesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w, err := NewWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	w.Add("u1", nil)
	w.Abort()
	if err := w.Commit(); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("Abort left %v", entries)
	}
	if _, err := Open(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of an empty dir = %v, want ErrNotExist", err)
	}
}

// reseal recomputes every checksum of a registry file whose header layout is readable,
// so that damage inside a section reaches the record parser.
func reseal(b []byte) []byte {
	b = bytes.Clone(b)
	if len(b) < headerSize {
		return b
	}
	tab := castagnoli()
	for i := range numSecs {
		p := offSections + 24*i
		off, size := binary.LittleEndian.Uint64(b[p:]), binary.LittleEndian.Uint64(b[p+8:])
		if off <= uint64(len(b)) && size <= uint64(len(b))-off {
			binary.LittleEndian.PutUint32(b[p+16:], crc32.Checksum(b[off:off+size], tab))
		}
	}
	binary.LittleEndian.PutUint32(b[offHeaderCRC:], crc32.Checksum(b[:offHeaderCRC], tab))
	return b
}

func TestOpenCorrupt(t *testing.T) {
	t.Parallel()
	good, err := os.ReadFile(filepath.Join(writeTest(t), FileName))
	if err != nil {
		t.Fatal(err)
	}
	recordsEnd := int(binary.LittleEndian.Uint64(good[offSections+8:])) + headerSize
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, tc := range []struct {
		name   string
		data   []byte
		offset int64 // where the error must point
		want   string
	}{
		{"empty file", nil, 0, "shorter than the 128-byte header"},                      // zero bytes
		{"truncated", good[:len(good)-3], offSections + 24*secTable, "does not follow"}, // the last section is cut
		{"trailing bytes", append(bytes.Clone(good), 0), int64(len(good)), "after the last section"},
		{"bad magic", edit(func(b []byte) []byte { b[0] = 'X'; return b }), 0, "bad magic"},
		{"header bit flip", edit(func(b []byte) []byte { b[offUsers] ^= 1; return b }), offHeaderCRC, "header checksum"},
		{"newer version", reseal(edit(func(b []byte) []byte { b[offVersion] = 9; return b })), offVersion, "unsupported format version 9"},
		{"bad slot width", reseal(edit(func(b []byte) []byte { b[offSlotWidth] = 3; return b })), offSlotWidth, "slot width 3"},
		{"record bit flip", edit(func(b []byte) []byte { b[headerSize+5] ^= 0x10; return b }), headerSize, "records section"},
		{"index bit flip", edit(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), -1, "index section"},
		{"strings bit flip", edit(func(b []byte) []byte { b[recordsEnd+1] ^= 1; return b }), int64(recordsEnd), "strings section"},
		{"bad string count", reseal(edit(func(b []byte) []byte { b[recordsEnd] = 0x7f; return b })), int64(recordsEnd), "bad string count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := Open(dir)
			if err == nil {
				r.Close()
				t.Fatal("Open succeeded")
			}
			var ce *CorruptError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) {
				t.Fatalf("Open = %v, want a *CorruptError", err)
			}
			if ce.Path != path || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Open = %q, want the path and %q", err, tc.want)
			}
			if tc.offset >= 0 && ce.Offset != tc.offset {
				t.Fatalf("Open = %q: offset %d, want %d", err, ce.Offset, tc.offset)
			}
		})
	}
}

// TestDamagedRecords damages records behind valid checksums: Verify and the lookups that
// meet the damage report it, nothing panics.
func TestDamagedRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	good, err := os.ReadFile(filepath.Join(writeTest(t), FileName))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, u := range testUsers() {
		ids = append(ids, u.id)
	}
	recordsEnd := int(binary.LittleEndian.Uint64(good[offSections+8:])) + headerSize
	for pos := headerSize; pos < recordsEnd; pos++ {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			b := bytes.Clone(good)
			b[pos] ^= x
			r, err := newRegistry("damaged", reseal(b))
			if err != nil {
				t.Fatalf("byte %d ^ %#x: Open: %v", pos, x, err)
			}
			if err := r.Verify(ctx); err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("byte %d ^ %#x: Verify = %v, want ErrCorrupt or nil", pos, x, err)
			}
			if _, err := r.Devices(ctx, ids); err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("byte %d ^ %#x: Devices = %v, want ErrCorrupt or nil", pos, x, err)
			}
		}
	}
	// A damaged ID that still parses is caught by Verify's order and index checks.
	b := bytes.Clone(good)
	b[headerSize+3] = 'Z' // "u01" -> "u0Z", now after "u02"
	r, err := newRegistry("damaged", reseal(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(ctx); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "offset") {
		t.Fatalf("Verify = %v, want ErrCorrupt with an offset", err)
	}
}

func FuzzOpen(f *testing.F) {
	dir := writeTest(f)
	good, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:headerSize])
	f.Add([]byte(magic))
	var ids []string
	for _, u := range testUsers() {
		ids = append(ids, u.id)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, b := range [][]byte{data, reseal(data)} {
			r, err := newRegistry("fuzz", b)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Open error %v does not match ErrCorrupt", err)
				}
				continue
			}
			for _, err := range []error{
				r.Verify(ctx),
				r.Each(ctx, func(string, []sender.Device) error { return nil }),
				func() error { _, err := r.Devices(ctx, ids); return err }(),
			} {
				if err != nil && !errors.Is(err, ErrCorrupt) {
					t.Fatalf("error %v does not match ErrCorrupt", err)
				}
			}
		}
	})
}

func TestDevicesAllocs(t *testing.T) {
	r, err := Open(writeTest(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	ids := []string{"u01", "u02", "u03", "nobody", "u04", "u06"}
	r.Devices(ctx, ids) // fill the scratch pool
	// The result, the Device array and the token buffer; the pool may drop its scratch at a GC.
	if n := testing.AllocsPerRun(100, func() { r.Devices(ctx, ids) }); n > 3.1 {
		t.Fatalf("Devices allocates %.1f times per call, want 3", n)
	}
}

// TestOpenAllocs checks that loading allocates nothing per user.
func TestOpenAllocs(t *testing.T) {
	allocs := func(users int) float64 {
		dir := t.TempDir()
		w, err := NewWriter(dir)
		if err != nil {
			t.Fatal(err)
		}
		for i := range users {
			if err := w.Add(fmt.Sprintf("u%06d", i), []sender.Device{{Platform: sender.PlatformIOS, Token: hex64, App: "a", Locale: "b"}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		return testing.AllocsPerRun(10, func() {
			r, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			r.Close()
		})
	}
	if small, large := allocs(10), allocs(20000); large > small {
		t.Fatalf("Open allocates %.0f times for 10 users and %.0f for 20,000", small, large)
	}
}

func TestCloseAndCancel(t *testing.T) {
	t.Parallel()
	r, err := Open(writeTest(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	got, err := r.Devices(ctx, []string{"u01"})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := r.Devices(ctx, []string{"u01"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Devices with a cancelled context = %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if _, err := r.Devices(context.Background(), []string{"u01"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Devices after Close = %v, want ErrClosed", err)
	}
	if got[0][0].Token != hex64 { // results outlive the registry
		t.Fatalf("token after Close = %q", got[0][0].Token)
	}
}

func TestConcurrentDevices(t *testing.T) {
	t.Parallel()
	r, err := Open(writeTest(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				got, err := r.Devices(context.Background(), []string{"u02", "u01"})
				if err != nil || got[1][0].Token != hex64 || got[0][0].Token != fcmTok {
					t.Errorf("Devices = %v, %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestDropResidentKeepsLookups(t *testing.T) {
	t.Parallel()
	reg, err := Open(writeTest(t))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	ids := []string{"u01", "u03", "nobody"}
	before, err := reg.Devices(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.DropResident(); err != nil {
		t.Fatal(err)
	}
	after, err := reg.Devices(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("after DropResident: %v, before: %v", after, before)
	}
}
