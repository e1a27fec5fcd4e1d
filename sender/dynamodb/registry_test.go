package dynamodb_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/salvopush/salvo/loadgen"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/dynamodb"
)

// users is a small synthetic registry: user u<i> has i%3 devices (so a third have none),
// alternating platforms, every other device with a locale.
func users(n int) func(fn func(string, []sender.Device) error) error {
	return func(fn func(string, []sender.Device) error) error {
		devs := make([]sender.Device, 0, 2) // reused between users, as generators do
		for i := range n {
			devs = devs[:0]
			for d := range i % 3 {
				dev := sender.Device{Platform: sender.PlatformIOS, Token: fmt.Sprintf("%064x", i*10+d), App: "com.salvo.app"}
				if d%2 == 1 {
					dev = sender.Device{Platform: sender.PlatformAndroid, Token: fmt.Sprintf("fcm:%d:%d", i, d), App: "salvo-project", Locale: "en-US"}
				}
				devs = append(devs, dev)
			}
			if err := fn(fmt.Sprintf("u%d", i), devs); err != nil {
				return err
			}
		}
		return nil
	}
}

// wantDevices is what users(n) wrote for user i.
func wantDevices(i int) []sender.Device {
	devs := []sender.Device{}
	for d := range i % 3 {
		dev := sender.Device{Platform: sender.PlatformIOS, Token: fmt.Sprintf("%064x", i*10+d), App: "com.salvo.app"}
		if d%2 == 1 {
			dev = sender.Device{Platform: sender.PlatformAndroid, Token: fmt.Sprintf("fcm:%d:%d", i, d), App: "salvo-project", Locale: "en-US"}
		}
		devs = append(devs, dev)
	}
	return devs
}

func TestLoadRegistryAndDevices(t *testing.T) {
	e := newEnv(t, nil)
	const n = 300
	got, err := dynamodb.LoadRegistry(t.Context(), e.client, e.tables.Registry, users(n))
	if err != nil || got != n {
		t.Fatalf("LoadRegistry = %d, %v; want %d, nil", got, err, n)
	}
	if calls := e.calls["BatchWriteItem"].Load(); calls != n/25 {
		t.Errorf("BatchWriteItem calls: %d, want %d", calls, n/25)
	}
	reg, err := dynamodb.NewRegistry(e.client, e.tables.Registry, dynamodb.Options{})
	if err != nil {
		t.Fatal(err)
	}

	// 250 keys: users 0..199, 40 unknown, user 5 three more times, an empty ID, user 7 again.
	var mixed []string
	for i := range 200 {
		mixed = append(mixed, fmt.Sprintf("u%d", i))
	}
	for i := range 40 {
		mixed = append(mixed, fmt.Sprintf("nobody-%d", i))
	}
	mixed = append(mixed, "u5", "u5", "u5", "", "u7", "u8", "u9", "u10", "u11", "u12")

	tests := []struct {
		name      string
		ids       []string
		wantCalls int64 // BatchGetItem calls (unique, non-empty IDs / 100, rounded up)
	}{
		// 250 keys with unknowns, repeats and an empty ID: 240 unique keys, 3 calls.
		{"250 mixed", mixed, 3},
		// Exactly 100 known users: one call.
		{"100 known", mixed[:100], 1},
		// Only unknown users: all nil.
		{"unknown only", []string{"x", "y"}, 1},
		// Nothing asked: no call.
		{"empty", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.calls["BatchGetItem"].Load()
			devs, err := reg.Devices(t.Context(), tt.ids)
			if err != nil {
				t.Fatal(err)
			}
			if calls := e.calls["BatchGetItem"].Load() - before; calls != tt.wantCalls {
				t.Errorf("BatchGetItem calls: %d, want %d", calls, tt.wantCalls)
			}
			if len(devs) != len(tt.ids) {
				t.Fatalf("%d results for %d IDs", len(devs), len(tt.ids))
			}
			for i, id := range tt.ids {
				var k int
				if _, err := fmt.Sscanf(id, "u%d", &k); err != nil || k >= n {
					if devs[i] != nil {
						t.Errorf("%q (unknown): %v, want nil", id, devs[i])
					}
					continue
				}
				if want := wantDevices(k); devs[i] == nil || !slices.Equal(devs[i], want) {
					t.Errorf("%q: %+v, want %+v", id, devs[i], want)
				}
			}
		})
	}
}

func TestRetryUnprocessed(t *testing.T) {
	tests := []struct {
		name     string
		faults   int64 // calls that leave keys or items unprocessed
		attempts int   // Options.MaxAttempts
		wantErr  bool
	}{
		// Two throttled calls: the leftovers are retried and everything goes through.
		{"recovers", 2, 0, false},
		// Every call throttled and 3 attempts: the call fails rather than losing users.
		{"gives up", 1 << 20, 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &unprocessed{keep: 7}
			e := newEnv(t, f)
			opts := dynamodb.Options{MaxAttempts: tt.attempts, RetryBase: 1, Concurrency: 2}
			f.left.Store(tt.faults)
			n, err := dynamodb.LoadRegistryOpts(t.Context(), e.client, e.tables.Registry, opts, users(120))
			if (err != nil) != tt.wantErr {
				t.Fatalf("LoadRegistry = %d, %v; want error %v", n, err, tt.wantErr)
			}
			if tt.wantErr {
				f.left.Store(0)
				if _, err := dynamodb.LoadRegistry(t.Context(), e.client, e.tables.Registry, users(120)); err != nil {
					t.Fatal(err)
				}
			}
			reg, _ := dynamodb.NewRegistry(e.client, e.tables.Registry, opts)
			ids := make([]string, 120)
			for i := range ids {
				ids[i] = fmt.Sprintf("u%d", i)
			}
			f.left.Store(tt.faults)
			devs, err := reg.Devices(t.Context(), ids)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Devices: %v; want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			for i, d := range devs {
				if d == nil {
					t.Fatalf("user %d lost in the retries", i)
				}
			}
		})
	}
}

func TestLoadRegistryErrors(t *testing.T) {
	e := newEnv(t, nil)
	stop := errors.New("generator failed")
	tests := []struct {
		name string
		each func(fn func(string, []sender.Device) error) error
	}{
		// The generator's own error comes back.
		{"generator error", func(fn func(string, []sender.Device) error) error { return stop }},
		// An empty user ID cannot be a key.
		{"empty id", func(fn func(string, []sender.Device) error) error { return fn("", nil) }},
		// A device without a platform is refused before writing.
		{"bad device", func(fn func(string, []sender.Device) error) error {
			return fn("u1", []sender.Device{{Token: "t"}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := dynamodb.LoadRegistry(t.Context(), e.client, e.tables.Registry, tt.each); err == nil {
				t.Fatal("LoadRegistry succeeded, want an error")
			}
		})
	}
}

func TestLoadRegistryRepeatedUser(t *testing.T) {
	e := newEnv(t, nil)
	// The same user twice in a row (one call may not name a key twice).
	each := func(fn func(string, []sender.Device) error) error {
		for range 2 {
			if err := fn("u1", []sender.Device{{Platform: sender.PlatformIOS, Token: "aa", App: "app"}}); err != nil {
				return err
			}
		}
		return nil
	}
	if n, err := dynamodb.LoadRegistry(t.Context(), e.client, e.tables.Registry, each); err != nil || n != 2 {
		t.Fatalf("LoadRegistry = %d, %v; want 2 writes", n, err)
	}
}

// TestLoadRegistryFromLoadgen loads the synthetic registry `salvo gen registry` makes and
// reads every user back.
func TestLoadRegistryFromLoadgen(t *testing.T) {
	e := newEnv(t, nil)
	spec := loadgen.DefaultRegistrySpec()
	spec.Users = 700
	n, err := dynamodb.LoadRegistry(t.Context(), e.client, e.tables.Registry, spec.Each)
	if err != nil || n != spec.Users {
		t.Fatalf("LoadRegistry = %d, %v; want %d", n, err, spec.Users)
	}
	var ids []string
	want := map[string][]sender.Device{}
	err = spec.Each(func(id string, devs []sender.Device) error {
		ids = append(ids, id)
		want[id] = slices.Clone(devs)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := dynamodb.NewRegistry(e.client, e.tables.Registry, dynamodb.Options{ConsistentRead: true})
	got, err := reg.Devices(t.Context(), ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if !slices.Equal(got[i], want[id]) {
			t.Fatalf("user %q: %+v, want %+v", id, got[i], want[id])
		}
	}
}

// TestRegistryUsers checks that Users scans every user exactly once and
// stops at fn's error.
func TestRegistryUsers(t *testing.T) {
	e := newEnv(t, nil)
	const n = 1200
	if _, err := dynamodb.LoadRegistry(t.Context(), e.client, e.tables.Registry, users(n)); err != nil {
		t.Fatal(err)
	}
	reg, _ := dynamodb.NewRegistry(e.client, e.tables.Registry, dynamodb.Options{})
	seen := map[string]int{}
	if err := reg.Users(t.Context(), func(id string) error { seen[id]++; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Fatalf("Users gave %d distinct users, want %d", len(seen), n)
	}
	for i := range n {
		if c := seen[fmt.Sprintf("u%d", i)]; c != 1 {
			t.Fatalf("user u%d seen %d times, want once", i, c)
		}
	}
	stop := errors.New("stop")
	calls := 0
	if err := reg.Users(t.Context(), func(string) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("Users with a failing fn = %v after %d calls, want its error after 1", err, calls)
	}
}
