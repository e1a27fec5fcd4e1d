package loadgen

import (
	"strings"
	"testing"

	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender"
)

// deliveredAll is what a perfect send of spec's audience would leave on the mock: every
// device's token but the unregistered ones and the control group's.
func deliveredAll(t *testing.T, reg RegistrySpec, spec ExpectSpec) mockpush.Accepted {
	t.Helper()
	var a mockpush.Accepted
	err := reg.Each(func(user string, devices []sender.Device) error {
		for _, d := range devices {
			if mockpush.IsUnregistered(d.Token) || variantOf(spec.Campaign, user, spec.ControlPercent, nil) == control {
				continue
			}
			if d.Platform == sender.PlatformIOS {
				a.IOS = append(a.IOS, d.Token)
			} else {
				a.Android = append(a.Android, d.Token)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestExpectedCompare: a perfect delivery matches; each way of breaking it (a token
// dropped, a foreign one, a control user's, one twice, one user's token on the other
// platform) is counted as what it is.
func TestExpectedCompare(t *testing.T) {
	reg := RegistrySpec{Users: 300, IOSShare: 0.5, MultiDeviceShare: 0.2, InvalidShare: 0.05, Seed: 3}
	spec := ExpectSpec{Campaign: "c1", ControlPercent: 10}
	audience := "user_id\n"
	var controlTokens []string
	_ = reg.Each(func(user string, devs []sender.Device) error {
		audience += user + "\n"
		if variantOf(spec.Campaign, user, spec.ControlPercent, nil) == control && len(controlTokens) == 0 {
			controlTokens = append(controlTokens, devs[0].Token)
		}
		return nil
	})
	e, err := Expect(reg.Each, strings.NewReader(audience), spec)
	if err != nil {
		t.Fatal(err)
	}
	if e.Invalid == 0 || e.Control == 0 || e.Len()+e.Invalid+e.Control != e.Devices || e.ByVariant[0]+e.Control != e.Devices {
		t.Fatalf("expected %d of %d devices (%d invalid, %d control, by variant %v)", e.Len(), e.Devices, e.Invalid, e.Control, e.ByVariant)
	}
	perfect := deliveredAll(t, reg, spec)
	for _, tc := range []struct {
		name                          string
		mutate                        func(a *mockpush.Accepted)
		missing, unexpected, repeated int64
	}{
		// Everything expected, once.
		{"perfect", func(*mockpush.Accepted) {}, 0, 0, 0},
		// One token never accepted.
		{"dropped", func(a *mockpush.Accepted) { a.IOS = a.IOS[1:] }, 1, 0, 0},
		// The right number of the wrong recipients: one dropped, a stranger in its place.
		{"swapped", func(a *mockpush.Accepted) { a.IOS[0] = strings.Repeat("ab", 32) }, 1, 1, 0},
		// A control user's device pushed.
		{"control pushed", func(a *mockpush.Accepted) {
			a.Android = append(a.Android, controlTokens...)
			a.IOS = append(a.IOS, controlTokens...)
		}, 0, 2, 0},
		// The same token twice: counted repeated, not missing.
		{"twice", func(a *mockpush.Accepted) { a.Android = append(a.Android, a.Android[0]) }, 0, 0, 1},
		// An iOS token delivered as Android: it was not expected there.
		{"wrong platform", func(a *mockpush.Accepted) {
			a.Android = append(a.Android, a.IOS[0])
			a.IOS = a.IOS[1:]
		}, 1, 1, 0},
	} {
		a := mockpush.Accepted{IOS: append([]string(nil), perfect.IOS...), Android: append([]string(nil), perfect.Android...)}
		tc.mutate(&a)
		m, err := e.Compare(a)
		if err != nil {
			t.Fatal(err)
		}
		if m.Missing != tc.missing || m.Unexpected != tc.unexpected || m.Repeated != tc.repeated ||
			m.Matched != e.Len()-tc.missing || len(m.MissingExamples) != int(tc.missing) ||
			len(m.UnexpectedExamples) != int(tc.unexpected) {
			t.Errorf("%s: %+v; want missing %d, unexpected %d, repeated %d", tc.name, m, tc.missing, tc.unexpected, tc.repeated)
		}
	}
}

// TestExpectedAudienceAndPlatforms: users outside the audience and platforms the message
// leaves out are not expected.
func TestExpectedAudienceAndPlatforms(t *testing.T) {
	reg := RegistrySpec{Users: 50, IOSShare: 0.5, Seed: 1}
	var first string
	var devs int64
	_ = reg.Each(func(user string, d []sender.Device) error {
		if first == "" {
			first, devs = user, int64(len(d))
		}
		return nil
	})
	e, err := Expect(reg.Each, strings.NewReader("user_id\n\""+first+"\"\nnobody\n"), ExpectSpec{Campaign: "c"})
	if err != nil || e.Len() != devs {
		t.Fatalf("one user's audience: %d expected, want %d (%v)", e.Len(), devs, err)
	}
	all := deliveredAll(t, reg, ExpectSpec{})
	e, err = Expect(reg.Each, strings.NewReader(strings.Join(allUsers(reg), "\n")), ExpectSpec{Platforms: []sender.Platform{sender.PlatformAndroid}})
	if err != nil || e.Len() != int64(len(all.Android)) {
		t.Fatalf("Android only: %d expected, want %d (%v)", e.Len(), len(all.Android), err)
	}
}

func allUsers(reg RegistrySpec) []string {
	var ids []string
	_ = reg.Each(func(user string, _ []sender.Device) error { ids = append(ids, user); return nil })
	return ids
}

// TestVariantOfAgreesWithAssign: the rule written out here and the sender's own split the
// users alike (two implementations of the documented rule, held against each other).
func TestVariantOfAgreesWithAssign(t *testing.T) {
	spec := sender.CampaignSpec{ControlPercent: 12.5, Variants: []sender.VariantSpec{{Name: "a", Percent: 40}, {Name: "b", Percent: 47.5}}}
	n := map[int]int{}
	for _, user := range allUsers(RegistrySpec{Users: 2000, Seed: 1}) {
		want := spec.Assign("camp", user)
		if got := variantOf("camp", user, spec.ControlPercent, []float64{40, 47.5}); got != want {
			t.Fatalf("user %s: variantOf %d, Assign %d", user, got, want)
		}
		n[want]++
	}
	if n[control] < 150 || n[control] > 350 || n[0] < 650 || n[1] < 800 {
		t.Fatalf("split of 2000 users over control 12.5%%, a 40%%, b 47.5%%: %v", n)
	}
}
