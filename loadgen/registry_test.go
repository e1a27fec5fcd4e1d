package loadgen

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/diskregistry"
)

func spec(users int, f func(*RegistrySpec)) RegistrySpec {
	s := DefaultRegistrySpec()
	s.Users = users
	if f != nil {
		f(&s)
	}
	return s
}

func TestRegistrySpecValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		spec  RegistrySpec
		field string // "" when valid
	}{
		{spec(1, nil), ""}, // smallest registry
		{spec(10, func(s *RegistrySpec) { s.IOSShare, s.MultiDeviceShare, s.InvalidShare, s.LongTokenShare = 1, 1, 1, 1 }), ""}, // every share at its top
		{spec(0, nil), "Users"},          // Users must be set
		{spec(MaxUsers+1, nil), "Users"}, // beyond the limit
		{spec(1, func(s *RegistrySpec) { s.IOSShare = -0.1 }), "IOSShare"},
		{spec(1, func(s *RegistrySpec) { s.MultiDeviceShare = 1.5 }), "MultiDeviceShare"},
		{spec(1, func(s *RegistrySpec) { s.InvalidShare = math.NaN() }), "InvalidShare"}, // NaN compares false to everything
		{spec(1, func(s *RegistrySpec) { s.LongTokenShare = math.Inf(1) }), "LongTokenShare"},
		{RegistrySpec{Users: 1}, ""},                                                      // a literal: empty app names mean the defaults
		{spec(1, func(s *RegistrySpec) { s.APNsTopic = "com.example/app" }), "APNsTopic"}, // '/' cannot be in a topic
		{spec(1, func(s *RegistrySpec) { s.FCMProject = "my project" }), "FCMProject"},    // space in an ID
	} {
		err := tc.spec.Validate()
		var se *SpecError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("Validate(%+v) = %v, want nil", tc.spec, err)
		case tc.field != "" && (!errors.As(err, &se) || se.Field != tc.field):
			t.Errorf("Validate(%+v) = %v, want a SpecError on %s", tc.spec, err, tc.field)
		}
	}
}

// isAPNsToken reports whether tok is 64 or 160 lowercase hex digits.
func isAPNsToken(tok string) bool {
	return (len(tok) == 64 || len(tok) == 160) && strings.Trim(tok, hexDigits) == ""
}

// isFCMToken reports whether tok is 22 base64url characters, ":APA91b" and 123 to 134 more.
func isFCMToken(tok string) bool {
	return len(tok) >= 152 && len(tok) <= 163 && tok[22:29] == ":APA91b" &&
		strings.Trim(tok[:22], b64urlDigits) == "" && strings.Trim(tok[29:], b64urlDigits) == ""
}

// TestShares generates large registries and checks every share against its expected value
// within five standard deviations (a false alarm about once in 1.7 million runs per check),
// and that every token has its platform's shape.
func TestShares(t *testing.T) {
	t.Parallel()
	n := 200_000
	if testing.Short() {
		n = 20_000
	}
	for _, tc := range []struct {
		name string
		spec RegistrySpec
	}{
		{"defaults", spec(n, nil)}, // half iOS, one device each, all valid
		{"mixed", spec(n, func(s *RegistrySpec) { // every share in play at once
			s.IOSShare, s.MultiDeviceShare, s.InvalidShare, s.LongTokenShare, s.Seed = 0.3, 0.25, 0.1, 0.2, 7
		})},
		{"all iOS, all invalid, all long", spec(n/10, func(s *RegistrySpec) { // the top of every share is exact
			s.IOSShare, s.MultiDeviceShare, s.InvalidShare, s.LongTokenShare = 1, 1, 1, 1
		})},
		{"all Android", spec(n/10, func(s *RegistrySpec) { s.IOSShare = 0 })}, // the bottom is exact too
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := tc.spec
			var users, multi, devices, ios, invalid, long int
			prev := ""
			err := s.Each(func(id string, devs []sender.Device) error {
				if id <= prev {
					t.Fatalf("user %q after %q", id, prev)
				}
				prev = id
				users++
				if len(devs) == 2 {
					multi++
				}
				for _, d := range devs {
					devices++
					bad := mockpush.IsUnregistered(d.Token)
					if bad {
						invalid++
					}
					tok := d.Token // the marker is hex and base64url: invalid tokens keep their shape
					switch d.Platform {
					case sender.PlatformIOS:
						ios++
						if len(d.Token) == apnsLongTokenLen {
							long++
						}
						if !isAPNsToken(tok) || d.App != s.APNsTopic {
							t.Fatalf("user %s: bad iOS device %+v", id, d)
						}
					case sender.PlatformAndroid:
						if !isFCMToken(tok) || d.App != s.FCMProject {
							t.Fatalf("user %s: bad Android device %+v", id, d)
						}
					default:
						t.Fatalf("user %s: platform %v", id, d.Platform)
					}
					if len(d.Locale) != 5 {
						t.Fatalf("user %s: locale %q", id, d.Locale)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if users != s.Users {
				t.Fatalf("%d users, want %d", users, s.Users)
			}
			checkFraction(t, "two devices", multi, users, s.MultiDeviceShare)
			checkFraction(t, "iOS", ios, devices, s.IOSShare)
			checkFraction(t, "invalid", invalid, devices, s.InvalidShare)
			checkFraction(t, "long APNs", long, ios, s.LongTokenShare)
		})
	}
}

// checkFraction checks that got of n is within five standard deviations of share p.
func checkFraction(t *testing.T, what string, got, n int, p float64) {
	t.Helper()
	if n == 0 {
		return
	}
	tol := 5 * math.Sqrt(p*(1-p)/float64(n))
	if share := float64(got) / float64(n); math.Abs(share-p) > tol {
		t.Errorf("%s: %d of %d = %.4f, want %.4f ± %.4f", what, got, n, share, p, tol)
	}
}

// TestLiteralSpecDefaults: a spec written as a literal gets the default app names.
func TestLiteralSpecDefaults(t *testing.T) {
	t.Parallel()
	sum, err := WriteRegistry(context.Background(), RegistrySpec{Users: 20, IOSShare: 0.5}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Flags.APNsTopic != DefaultAPNsTopic || sum.Flags.FCMProject != DefaultFCMProject {
		t.Fatalf("flags %+v, want the default app names", sum.Flags)
	}
	RegistrySpec{Users: 20, IOSShare: 0.5}.Each(func(id string, devs []sender.Device) error {
		if d := devs[0]; d.App != map[sender.Platform]string{sender.PlatformIOS: DefaultAPNsTopic, sender.PlatformAndroid: DefaultFCMProject}[d.Platform] {
			t.Fatalf("user %s: app %q", id, d.App)
		}
		return nil
	})
}

func TestEachStopsAndValidates(t *testing.T) {
	t.Parallel()
	stop := errors.New("stop")
	n := 0
	if err := spec(100, nil).Each(func(string, []sender.Device) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("Each = %v after %d users, want the callback's error after 1", err, n)
	}
	if err := spec(0, nil).Each(func(string, []sender.Device) error { t.Fatal("called"); return nil }); err == nil {
		t.Fatal("Each of an invalid spec succeeded")
	}
}

// TestUsersKeepTheirDevices: a user's devices depend on the seed and its number only.
func TestUsersKeepTheirDevices(t *testing.T) {
	t.Parallel()
	collect := func(s RegistrySpec) map[string][]sender.Device {
		m := map[string][]sender.Device{}
		s.Each(func(id string, devs []sender.Device) error {
			m[id] = slices.Clone(devs)
			return nil
		})
		return m
	}
	small, large := collect(spec(100, nil)), collect(spec(1000, nil))
	for id, devs := range small {
		if !reflect.DeepEqual(devs, large[id]) {
			t.Fatalf("user %s differs between 100 and 1000 users", id)
		}
	}
	other := collect(spec(100, func(s *RegistrySpec) { s.Seed = 2 }))
	if reflect.DeepEqual(small["u00000001"], other["u00000001"]) {
		t.Fatal("seeds 1 and 2 give the same first user")
	}
}

// TestValidTokenAvoidsMarker forces a valid token to come out with the marker: it must be
// drawn again, while an invalid one keeps the marker.
func TestValidTokenAvoidsMarker(t *testing.T) {
	t.Parallel()
	g := newGenerator(spec(1, nil))
	draws := 0
	g.draw = func(dst []byte, r *rng, p sender.Platform, long bool) []byte {
		draws++
		if draws == 1 {
			return append(dst, mockpush.UnregisteredMarker+"0123"...)
		}
		return append(dst, "abcdef0123456789"...)
	}
	r := newRNG(1, 1)
	if tok := g.token(&r, sender.PlatformIOS, false, false); mockpush.IsUnregistered(tok) || draws != 2 {
		t.Fatalf("valid token %q after %d draws", tok, draws)
	}
	if tok := g.token(&r, sender.PlatformIOS, false, true); tok != mockpush.UnregisteredMarker+"23456789" {
		t.Fatalf("invalid token %q", tok)
	}
}

func TestUserIDWidth(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		users, n int
		want     string
	}{
		{1, 1, "u00000001"},                      // at least eight digits
		{99_999_999, 42, "u00000042"},            // eight digits suffice
		{100_000_000, 42, "u000000042"},          // nine needed
		{123_456_789, 123_456_789, "u123456789"}, // the last user
	} {
		if got := string(appendUserID(nil, tc.n, idWidth(tc.users))); got != tc.want {
			t.Errorf("user %d of %d = %q, want %q", tc.n, tc.users, got, tc.want)
		}
	}
}

func TestWriteRegistryDeterministic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := spec(3000, func(s *RegistrySpec) { s.MultiDeviceShare, s.InvalidShare, s.LongTokenShare = 0.3, 0.1, 0.2 })
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	for _, dir := range []string{a, b} {
		if _, err := WriteRegistry(ctx, s, dir); err != nil {
			t.Fatal(err)
		}
	}
	s.Seed++
	if _, err := WriteRegistry(ctx, s, c); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{diskregistry.FileName, AudienceFileName, SummaryFileName} {
		fa, fb, fc := readFile(t, a, name), readFile(t, b, name), readFile(t, c, name)
		if !bytes.Equal(fa, fb) {
			t.Errorf("%s differs between two runs of the same spec", name)
		}
		if name != AudienceFileName && bytes.Equal(fa, fc) {
			t.Errorf("%s is the same for seeds 1 and 2", name)
		}
	}
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRoundTrip writes a registry and reads every user back through diskregistry.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s := spec(5000, func(s *RegistrySpec) {
		s.IOSShare, s.MultiDeviceShare, s.InvalidShare, s.LongTokenShare = 0.6, 0.3, 0.1, 0.2
		s.APNsTopic, s.FCMProject = "com.example.news", "example-news"
	})
	sum, err := WriteRegistry(ctx, s, dir)
	if err != nil {
		t.Fatal(err)
	}
	if disk, err := ReadSummary(dir); err != nil || !reflect.DeepEqual(disk, sum) {
		t.Fatalf("registry.json = %+v, %v; want %+v", disk, err, sum)
	}

	var ids []string
	var want [][]sender.Device
	s.Each(func(id string, devs []sender.Device) error {
		ids = append(ids, id)
		want = append(want, slices.Clone(devs))
		return nil
	})
	wantCSV := "user_id\n" + strings.Join(ids, "\n") + "\n"
	if got := string(readFile(t, dir, AudienceFileName)); got != wantCSV {
		t.Fatalf("audience.csv does not list every user in order")
	}

	reg, err := diskregistry.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if err := reg.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	query := append([]string{"u00005001", "u0000000", "x"}, ids...) // unknown users first
	got, err := reg.Devices(ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if got[i] != nil {
			t.Errorf("unknown user %q has devices %v", query[i], got[i])
		}
	}
	if !reflect.DeepEqual(got[3:], want) {
		t.Fatal("devices read back differ from the generated ones")
	}

	var recount Summary
	for _, devs := range got[3:] {
		if len(devs) == 2 {
			recount.MultiDeviceUsers++
		}
		for _, d := range devs {
			recount.Devices.add(d.Platform)
			if mockpush.IsUnregistered(d.Token) {
				recount.InvalidTokens.add(d.Platform)
			}
		}
	}
	if sum.Users != 5000 || sum.Devices != recount.Devices || sum.InvalidTokens != recount.InvalidTokens ||
		sum.MultiDeviceUsers != recount.MultiDeviceUsers || recount.MultiDeviceUsers == 0 || recount.InvalidTokens.IOS == 0 ||
		recount.InvalidTokens.Android == 0 {
		t.Fatalf("summary %+v, counted in the registry %+v", sum, recount)
	}
	if st, _ := os.Stat(filepath.Join(dir, diskregistry.FileName)); sum.RegistryBytes != st.Size() {
		t.Fatalf("summary says %d bytes, the file has %d", sum.RegistryBytes, st.Size())
	}
}

// TestWriteRegistryCancelled: a cancelled run over an old registry leaves no temporary
// files and no registry.json, the mark of a complete registry.
func TestWriteRegistryCancelled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := WriteRegistry(context.Background(), spec(10, nil), dir); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := WriteRegistry(ctx, spec(10000, nil), dir); !errors.Is(err, context.Canceled) {
		t.Fatalf("WriteRegistry = %v, want context.Canceled", err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{AudienceFileName, diskregistry.FileName}; !reflect.DeepEqual(names, want) {
		t.Fatalf("a cancelled run left %v, want %v", names, want)
	}
}
