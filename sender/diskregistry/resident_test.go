package diskregistry

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/salvopush/salvo/sender"
)

// writeMany writes a registry of n users (u000000...) whose devices depend on the index:
// none, one APNs, one FCM or both, so that records differ in size.
func writeMany(t testing.TB, n int) (string, []string) {
	t.Helper()
	ids := make([]string, n)
	dir := writeRegistry(t, func(add func(string, []sender.Device)) {
		for i := range n {
			ids[i] = fmt.Sprintf("u%06d", i)
			var devs []sender.Device
			if i%3 != 0 {
				devs = append(devs, sender.Device{Platform: sender.PlatformIOS, Token: fmt.Sprintf("%064x", i), App: "a"})
			}
			if i%2 == 0 {
				devs = append(devs, sender.Device{Platform: sender.PlatformAndroid, Token: fmt.Sprintf("fcm%0140d", i), App: "p"})
			}
			add(ids[i], devs)
		}
	})
	return dir, ids
}

// TestLookupOrders looks audiences up in the orders a resolution meets, through Devices and
// VisitDevices, with and without a tight resident bound, and wants the answers of one user at
// a time: a lookup that guesses the next record from the previous one must find exactly what
// the index finds.
func TestLookupOrders(t *testing.T) {
	t.Parallel()
	dir, ids := writeMany(t, 3000)
	rng := rand.New(rand.NewPCG(1, 2))
	shuffled := slices.Clone(ids)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	reversed := slices.Clone(ids)
	slices.Reverse(reversed)
	var gaps, unknowns, repeats []string
	for i, id := range ids {
		if i%7 != 3 {
			gaps = append(gaps, id)
		}
		unknowns = append(unknowns, id)
		if i%50 == 0 {
			unknowns = append(unknowns, id+"x", "a"+id) // unknown users between known ones
		}
		repeats = append(repeats, id)
		if i%11 == 0 {
			repeats = append(repeats, id, ids[max(i-1, 0)])
		}
	}
	audiences := []struct {
		name string
		ids  []string
	}{
		{"in ID order", ids},                  // the record after the last one, every time
		{"reversed", reversed},                // never the next record
		{"shuffled", shuffled},                // random order: the index every time
		{"in ID order with gaps", gaps},       // the next record is often another user's
		{"with unknown users", unknowns},      // unknown users break the chain
		{"with repeats", repeats},             // a repeated or earlier user is not next
		{"one user", ids[17:18]},              // the first user alone
		{"only unknown", []string{"zz", "u"}}, // nothing found
		{"the last user first", append([]string{ids[len(ids)-1]}, ids[:300]...)}, // no record after the last
	}
	ref, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	want := func(id string) string { // one user alone: through the index
		t.Helper()
		got, err := ref.Devices(context.Background(), []string{id})
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(got[0] == nil, got[0])
	}
	expect := map[string]string{}
	for _, a := range audiences {
		for _, id := range a.ids {
			if _, ok := expect[id]; !ok {
				expect[id] = want(id)
			}
		}
	}
	for _, limit := range []int64{0, 1, 1 << 20} {
		reg, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		reg.LimitResident(limit)
		for _, a := range audiences {
			for _, chunk := range []int{7, 127, 1000, len(a.ids)} {
				for c := 0; c < len(a.ids); c += chunk {
					part := a.ids[c:min(c+chunk, len(a.ids))]
					got, err := reg.Devices(context.Background(), part)
					if err != nil {
						t.Fatalf("limit %d, %s, chunk %d: %v", limit, a.name, chunk, err)
					}
					err = reg.VisitDevices(context.Background(), part, func(i int, known bool, devs []sender.Device) {
						if g := fmt.Sprint(!known, devs); g != expect[part[i]] {
							t.Errorf("limit %d, %s, chunk %d: VisitDevices %s = %s, want %s", limit, a.name, chunk, part[i], g, expect[part[i]])
						}
						if g := fmt.Sprint(got[i] == nil, got[i]); g != expect[part[i]] {
							t.Errorf("limit %d, %s, chunk %d: Devices %s = %s, want %s", limit, a.name, chunk, part[i], g, expect[part[i]])
						}
					})
					if err != nil {
						t.Fatalf("limit %d, %s, chunk %d: %v", limit, a.name, chunk, err)
					}
				}
			}
		}
		if err := reg.Verify(context.Background()); err != nil {
			t.Errorf("limit %d: Verify: %v", limit, err)
		}
		reg.Close()
	}
}

// TestLimitResidentConcurrent looks users up from several goroutines while the bound drops
// the pages under them (run it with -race).
func TestLimitResidentConcurrent(t *testing.T) {
	t.Parallel()
	dir, ids := writeMany(t, 3000)
	reg, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	want, err := reg.Devices(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	reg.LimitResident(1) // every call drops
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for round := range 5 {
				for c := (g + round) % 7 * 100; c < len(ids); c += 500 {
					part := ids[c:min(c+250, len(ids))]
					err := reg.VisitDevices(context.Background(), part, func(i int, known bool, devs []sender.Device) {
						if !known || fmt.Sprint(devs) != fmt.Sprint(want[c+i]) {
							t.Errorf("%s: %v %v, want %v", part[i], known, devs, want[c+i])
						}
					})
					if err != nil {
						t.Error(err)
						return
					}
				}
				if g == 0 {
					reg.LimitResident(int64(round) << 16) // changed while others look up
				}
			}
		})
	}
	wg.Wait()
}
