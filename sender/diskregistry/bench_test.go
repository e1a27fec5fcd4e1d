package diskregistry_test

import (
	"context"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"testing"

	"github.com/salvopush/salvo/loadgen"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/diskregistry"
	"github.com/salvopush/salvo/sender/localstore"
)

var registryDir = flag.String("registry", "", "registry directory for the benchmarks (default: generate 1,000,000 users)")

// benchRegistry returns the -registry directory, or a fresh registry of 1,000,000 users with
// the bench defaults (half iOS).
func benchRegistry(b *testing.B) string {
	b.Helper()
	if *registryDir != "" {
		return *registryDir
	}
	spec := loadgen.DefaultRegistrySpec()
	spec.Users = 1_000_000
	dir := b.TempDir()
	if _, err := loadgen.WriteRegistry(context.Background(), spec, dir); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkOpen loads a registry (warm page cache) and checks its checksums.
func BenchmarkOpen(b *testing.B) {
	dir := benchRegistry(b)
	var users int
	b.ReportAllocs()
	for b.Loop() {
		r, err := diskregistry.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		users = r.Len()
		r.Close()
	}
	b.ReportMetric(float64(users), "users")
}

// openBench opens the benchmarks' registry (closed when b ends) and lists its user IDs.
func openBench(b *testing.B) (*diskregistry.Registry, []string) {
	b.Helper()
	r, err := diskregistry.Open(benchRegistry(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	all := make([]string, 0, r.Len())
	if err := r.Users(context.Background(), func(id string) error { all = append(all, id); return nil }); err != nil {
		b.Fatal(err)
	}
	return r, all
}

// BenchmarkDevices looks up 1,000 users per call: random ones, or consecutive ones (an
// audience in ID order).
func BenchmarkDevices(b *testing.B) {
	ctx := context.Background()
	r, all := openBench(b)
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, bc := range []struct {
		name    string
		unknown int // of the 1,000 IDs
		inOrder bool
	}{
		{"known", 0, false},           // every user is in the registry
		{"10pct_unknown", 100, false}, // stale IDs in a campaign audience
		{"in_order", 0, true},         // the records one after the other
	} {
		ids := make([]string, 1000)
		first := rnd.IntN(len(all) - len(ids))
		for i := range ids {
			ids[i] = all[rnd.IntN(len(all))]
			if bc.inOrder {
				ids[i] = all[first+i]
			}
			if i < bc.unknown {
				ids[i] = "x" + ids[i]
			}
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Devices(ctx, ids); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ids)), "ns/user")
		})
		// The same lookups handed to a function (what resolution uses): no allocation.
		b.Run(bc.name+"/visit", func(b *testing.B) {
			var n int
			count := func(_ int, _ bool, devs []sender.Device) { n += len(devs) }
			b.ReportAllocs()
			for b.Loop() {
				if err := r.VisitDevices(ctx, ids, count); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ids)), "ns/user")
		})
	}
}

// BenchmarkResolve resolves 100,000 random users of the registry into shards in a local
// store: lookups, sorting into segments, shards, manifest. One op is one resolution;
// allocations are per resolution (about a thousand chunks), not per user.
func BenchmarkResolve(b *testing.B) {
	ctx := context.Background()
	r, all := openBench(b)
	rnd := rand.New(rand.NewPCG(3, 4))
	ids := make([]string, 100_000)
	for i := range ids {
		ids[i] = all[rnd.IntN(len(all))]
	}
	store, err := localstore.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	spec := &sender.CampaignSpec{Name: "bench", Message: sender.MessageSpec{
		APNs: &sender.APNsSpec{Payload: json.RawMessage(`{"aps":{"content-available":1}}`)}, FCM: &sender.FCMSpec{Title: "t"}}}
	rv := sender.Resolver{Registry: r, Objects: store}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rv.Resolve(ctx, "c1", spec, ids, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ids)), "ns/user")
}
