package diskregistry

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"testing"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/localstore"
)

// devicesOnly hides VisitDevices, so that a resolution takes the Devices path.
type devicesOnly struct{ sender.Registry }

// TestVisitResolvesAsDevices resolves one audience twice, through VisitDevices and through
// Devices, and wants the same manifest and the same shards: the allocation-free path may
// not change a single recipient. The audience has unknown users, users without devices,
// two-device users, repeats, variants and a control group; shards are small so that many
// are cut across chunks.
func TestVisitResolvesAsDevices(t *testing.T) {
	t.Parallel()
	var audience []string
	dir := writeRegistry(t, func(add func(string, []sender.Device)) {
		for i := range 3000 {
			id := fmt.Sprintf("u%05d", i)
			var devs []sender.Device
			switch i % 4 {
			case 0:
				devs = []sender.Device{{Platform: sender.PlatformIOS, Token: fmt.Sprintf("%064x", i), App: "com.example.app"}}
			case 1:
				devs = []sender.Device{{Platform: sender.PlatformAndroid, Token: fmt.Sprintf("fcm-%0150d", i), App: "proj"}}
			case 2:
				devs = []sender.Device{{Platform: sender.PlatformIOS, Token: fmt.Sprintf("%064x", i), App: "com.example.other"},
					{Platform: sender.PlatformAndroid, Token: fmt.Sprintf("fcm-%0150d", i), App: "proj"}}
			}
			add(id, devs)
			audience = append(audience, id)
			if i%97 == 0 {
				audience = append(audience, fmt.Sprintf("nobody%d", i), id) // unknown, and a repeat
			}
		}
	})
	reg, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	msg := sender.MessageSpec{APNs: &sender.APNsSpec{Payload: json.RawMessage(`{"aps":{"alert":"hi"}}`)},
		FCM: &sender.FCMSpec{Title: "hi"}}
	spec := &sender.CampaignSpec{Name: "c", Message: msg, ControlPercent: 10,
		Variants: []sender.VariantSpec{{Name: "a", Percent: 45, Message: msg}, {Name: "b", Percent: 45, Message: msg}}}
	resolve := func(r sender.Registry, spillDir string) (*sender.Resolved, map[string][]byte) {
		store, err := localstore.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		rv := sender.Resolver{Registry: r, Objects: store, Config: sender.ResolveConfig{Chunk: 128, ShardSize: 500, SpillDir: spillDir}}
		res, err := rv.Resolve(context.Background(), "c1", spec, audience, nil)
		if err != nil {
			t.Fatal(err)
		}
		shards := map[string][]byte{}
		for _, sh := range res.Manifest.Shards {
			if shards[sh.Key], err = store.Get(context.Background(), sh.Key); err != nil {
				t.Fatal(err)
			}
		}
		return res, shards
	}
	visited, vshards := resolve(reg, "")
	listed, lshards := resolve(devicesOnly{reg}, "")
	if !reflect.DeepEqual(visited, listed) {
		t.Errorf("VisitDevices resolved\n%+v\nDevices resolved\n%+v", visited, listed)
	}
	if !reflect.DeepEqual(vshards, lshards) {
		t.Error("the shards differ")
	}
	// Spilled to files while looking up: the same campaign, and nothing left behind.
	spillDir := t.TempDir()
	spilled, sshards := resolve(reg, spillDir)
	if !reflect.DeepEqual(visited, spilled) {
		t.Errorf("VisitDevices resolved\n%+v\nspilled, resolved\n%+v", visited, spilled)
	}
	if !reflect.DeepEqual(vshards, sshards) {
		t.Error("the spilled resolution's shards differ")
	}
	if left, err := os.ReadDir(spillDir); err != nil || len(left) != 0 {
		t.Errorf("spill folder after the resolution: %v, %v", left, err)
	}
	if c := visited.Manifest.Counts; c.UnknownUsers == 0 || c.ControlUsers == 0 || c.DuplicatesRemoved == 0 || len(visited.Manifest.Shards) < 5 {
		t.Errorf("the audience did not exercise every case: %+v, %d shards", c, len(visited.Manifest.Shards))
	}
}
