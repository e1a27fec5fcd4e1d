package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"slices"

	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender"
)

// Expected is what a send of one campaign must deliver, worked out from the registry and the
// audience alone, with none of the sender's code: the device tokens of the audience's users
// on the platforms the message covers, less those the mock always rejects
// (mockpush.IsUnregistered) and the devices of the control group. Compare holds it against
// the tokens the mock accepted (mockpush.Accepted): "nothing lost" by identity, not count.
// It keeps 8 bytes per device.
type Expected struct {
	// Devices counts the devices of the audience's users on the covered platforms.
	Devices int64
	// Invalid counts those the mock rejects for good (not expected to be accepted).
	Invalid int64
	// Control counts those of control-group users (never pushed).
	Control int64
	// ByVariant counts the devices of each variant's users (ExpectSpec.Variants, in order;
	// one entry without variants), those the mock rejects included.
	ByVariant []int64

	keys []uint64 // identityKey of every expected device, sorted
	each func(fn func(userID string, devices []sender.Device) error) error
	keep func(userID string, d sender.Device) bool
}

// ExpectSpec says which campaign Expected is for.
type ExpectSpec struct {
	// Campaign is the campaign's ID, which decides the control group.
	Campaign string
	// ControlPercent of the users are the control group (the campaign's control_percent).
	ControlPercent float64
	// Platforms the message covers; empty means both.
	Platforms []sender.Platform
	// Variants are the percentages of the campaign's variants, in order (its variants'
	// percent); none means one variant for everyone outside the control group.
	Variants []float64
}

// Expect works out the expected deliveries of a campaign whose audience file (CSV with a
// user_id header, or one ID a line) is audience, over the registry whose users each walks
// (RegistrySpec.Each for a synthetic one; it may be walked twice). Users of the audience the
// registry does not hold have no devices.
func Expect(each func(fn func(userID string, devices []sender.Device) error) error, audience io.Reader, spec ExpectSpec) (*Expected, error) {
	users, err := audienceKeys(audience)
	if err != nil {
		return nil, err
	}
	e := &Expected{each: each, ByVariant: make([]int64, max(len(spec.Variants), 1))}
	e.keep = func(user string, d sender.Device) bool {
		if _, in := slices.BinarySearch(users, stringKey(user)); !in {
			return false
		}
		return len(spec.Platforms) == 0 || slices.Contains(spec.Platforms, d.Platform)
	}
	err = e.each(func(user string, devices []sender.Device) error {
		v := variantOf(spec.Campaign, user, spec.ControlPercent, spec.Variants)
		for _, d := range devices {
			if !e.keep(user, d) {
				continue
			}
			e.Devices++
			if v == control {
				e.Control++
				continue
			}
			e.ByVariant[v]++
			if mockpush.IsUnregistered(d.Token) {
				e.Invalid++
			} else {
				e.keys = append(e.keys, identityKey(d.Platform, d.Token))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("loadgen: expect: %w", err)
	}
	slices.Sort(e.keys)
	return e, nil
}

// Len is the number of devices expected to be accepted.
func (e *Expected) Len() int64 { return int64(len(e.keys)) }

// Match is how the tokens a mock accepted compare with the expected ones.
type Match struct {
	// Expected counts the devices expected to be accepted; Accepted the distinct tokens the
	// mock accepted; Matched those in both.
	Expected, Accepted, Matched int64
	// Missing = Expected - Matched: expected and never accepted. Unexpected: accepted and not
	// expected (another user's device, a control user's, a token the registry never held).
	Missing, Unexpected int64
	// Repeated counts accepted requests beyond the first for the same token.
	Repeated int64
	// MissingExamples and UnexpectedExamples name a few of each ("ios,<token>").
	MissingExamples, UnexpectedExamples []string
}

// maxExamples bounds the tokens a Match names.
const maxExamples = 5

// Compare holds the mock's accepted tokens against e. Naming missing tokens walks the
// registry again, only when some are missing.
func (e *Expected) Compare(a mockpush.Accepted) (Match, error) {
	type acc struct {
		key  uint64
		name string
	}
	got := make([]acc, 0, a.Len())
	for _, p := range []struct {
		platform sender.Platform
		tokens   []string
	}{{sender.PlatformIOS, a.IOS}, {sender.PlatformAndroid, a.Android}} {
		for _, t := range p.tokens {
			got = append(got, acc{identityKey(p.platform, t), p.platform.String() + "," + t})
		}
	}
	slices.SortFunc(got, func(x, y acc) int { return cmpUint(x.key, y.key) })
	m := Match{Expected: e.Len()}
	for i, g := range got {
		if i > 0 && got[i-1].key == g.key {
			m.Repeated++
			continue
		}
		m.Accepted++
		if _, in := slices.BinarySearch(e.keys, g.key); in {
			m.Matched++
		} else {
			m.Unexpected++
			if len(m.UnexpectedExamples) < maxExamples {
				m.UnexpectedExamples = append(m.UnexpectedExamples, g.name)
			}
		}
	}
	m.Missing = m.Expected - m.Matched
	if m.Missing == 0 {
		return m, nil
	}
	err := e.each(func(user string, devices []sender.Device) error {
		for _, d := range devices {
			if len(m.MissingExamples) == maxExamples {
				return errEnough
			}
			k := identityKey(d.Platform, d.Token)
			if _, want := slices.BinarySearch(e.keys, k); !want || !e.keep(user, d) {
				continue
			}
			if _, found := slices.BinarySearchFunc(got, k, func(g acc, k uint64) int { return cmpUint(g.key, k) }); !found {
				m.MissingExamples = append(m.MissingExamples, d.Platform.String()+","+d.Token)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return m, fmt.Errorf("loadgen: compare: %w", err)
	}
	return m, nil
}

var errEnough = errors.New("enough examples")

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// identityKey is a 64-bit FNV-1a hash of a device (platform and token): among 4M devices
// the chance that two collide is about 4·10⁻⁷.
func identityKey(p sender.Platform, token string) uint64 {
	h := fnv.New64a()
	h.Write([]byte{byte(p), 0})
	h.Write([]byte(token))
	return h.Sum64()
}

func stringKey(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// audienceKeys reads an audience file's user IDs (a user_id header line is skipped) as
// sorted hashes.
func audienceKeys(r io.Reader) ([]uint64, error) {
	var keys []uint64
	sc := bufio.NewScanner(r)
	for first := true; sc.Scan(); first = false {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || first && string(line) == "user_id" {
			continue
		}
		if n := len(line); n >= 2 && line[0] == '"' && line[n-1] == '"' { // a quoted CSV field
			line = bytes.ReplaceAll(line[1:n-1], []byte(`""`), []byte(`"`))
		}
		keys = append(keys, stringKey(string(line)))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("loadgen: audience: %w", err)
	}
	slices.Sort(keys)
	return keys, nil
}

// control is variantOf's answer for the control group.
const control = -1

// variantOf returns the variant of a user (0..len(variants)-1), or control. It restates the
// rule docs/api.md gives for control_percent and variants (the 64-bit FNV-1a hash of campaign
// ID, a zero byte and user ID, modulo 10,000, read as a percentage with two decimals: below
// control_percent the control group, then each variant's percent in order, the last variant
// taking any rest), written here again so that the expectation does not lean on the
// sender's own code.
func variantOf(campaign, user string, controlPercent float64, variants []float64) int {
	h := fnv.New64a()
	h.Write([]byte(campaign))
	h.Write([]byte{0})
	h.Write([]byte(user))
	bucket := float64(h.Sum64()%10000) / 100
	if bucket < controlPercent {
		return control
	}
	acc := controlPercent
	for i, pct := range variants {
		if acc += pct; bucket < acc {
			return i
		}
	}
	return max(len(variants)-1, 0)
}
