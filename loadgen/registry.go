package loadgen

import (
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender"
)

// Defaults of a RegistrySpec.
const (
	DefaultAPNsTopic  = "com.salvo.bench"
	DefaultFCMProject = "salvo-bench"
	DefaultIOSShare   = 0.5
	DefaultSeed       = 1
	// MaxUsers bounds RegistrySpec.Users.
	MaxUsers = 1_000_000_000
)

// RegistrySpec describes a synthetic device registry. The same spec always gives the same
// users, devices and tokens; each user's devices depend only on Seed and the user's number,
// so growing Users keeps the existing users' devices.
type RegistrySpec struct {
	// Users is the number of users, named u00000001 ... (at least 8 digits, more when Users
	// needs them, so that IDs sort in numeric order).
	Users int `json:"users"`
	// IOSShare is the probability that a device is an iOS device (else Android).
	IOSShare float64 `json:"ios_share"`
	// MultiDeviceShare is the probability that a user has a second device, whose platform is
	// drawn again with IOSShare.
	MultiDeviceShare float64 `json:"multi_device_share"`
	// InvalidShare is the probability that a device's token is unregistered: it starts with
	// mockpush.UnregisteredMarker, and the mocks reject it (APNs 410, FCM 404). No valid
	// token starts with the marker.
	InvalidShare float64 `json:"invalid_share"`
	// LongTokenShare is the probability that an APNs token has 160 hex digits instead of 64.
	LongTokenShare float64 `json:"long_token_share"`
	// Seed selects the pseudo-random sequence.
	Seed uint64 `json:"seed"`
	// APNsTopic is the App of iOS devices (the APNs topic, a bundle ID); empty means
	// DefaultAPNsTopic.
	APNsTopic string `json:"apns_topic"`
	// FCMProject is the App of Android devices (the FCM project ID); empty means
	// DefaultFCMProject.
	FCMProject string `json:"fcm_project"`
}

// DefaultRegistrySpec returns a spec with every default set and Users left at 0 (which
// Validate refuses: the caller chooses the size). In a spec built as a literal, only the
// empty APNsTopic and FCMProject stand for their defaults; a zero share means zero.
func DefaultRegistrySpec() RegistrySpec {
	return RegistrySpec{
		IOSShare:   DefaultIOSShare,
		Seed:       DefaultSeed,
		APNsTopic:  DefaultAPNsTopic,
		FCMProject: DefaultFCMProject,
	}
}

// SpecError is a bad field of a spec. Field is the Go field name, e.g. "IOSShare".
type SpecError struct {
	Field  string
	Reason string
}

// Error names the field and the reason.
func (e *SpecError) Error() string { return "loadgen: " + e.Field + ": " + e.Reason }

// Validate checks every field and reports the first bad one as a *SpecError.
func (s RegistrySpec) Validate() error {
	if s.Users < 1 || s.Users > MaxUsers {
		return &SpecError{"Users", fmt.Sprintf("must be between 1 and %d, got %d", MaxUsers, s.Users)}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"IOSShare", s.IOSShare},
		{"MultiDeviceShare", s.MultiDeviceShare},
		{"InvalidShare", s.InvalidShare},
		{"LongTokenShare", s.LongTokenShare},
	} {
		if err := checkShare(f.name, f.v); err != nil {
			return err
		}
	}
	s = s.withDefaults()
	if err := checkApp("APNsTopic", s.APNsTopic); err != nil {
		return err
	}
	return checkApp("FCMProject", s.FCMProject)
}

// withDefaults returns s with the empty app names replaced by their defaults.
func (s RegistrySpec) withDefaults() RegistrySpec {
	if s.APNsTopic == "" {
		s.APNsTopic = DefaultAPNsTopic
	}
	if s.FCMProject == "" {
		s.FCMProject = DefaultFCMProject
	}
	return s
}

func checkShare(field string, v float64) error {
	if !(v >= 0 && v <= 1) { // also catches NaN
		return &SpecError{field, fmt.Sprintf("must be a fraction between 0 and 1, got %v", v)}
	}
	return nil
}

func checkApp(field, v string) error {
	switch {
	case len(v) > 255:
		return &SpecError{field, "longer than 255 bytes"}
	case strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == '/' || r > '~' }):
		return &SpecError{field, fmt.Sprintf("%q holds a space, '/' or a non-ASCII character", v)}
	}
	return nil
}

// Each generates the users in ID order and calls fn for each. devices is reused between
// calls (copy the slice to keep it; its strings may be kept). Each stops at the first error
// from fn and returns it; it returns Validate's error before calling fn at all.
func (s RegistrySpec) Each(fn func(userID string, devices []sender.Device) error) error {
	if err := s.Validate(); err != nil {
		return err
	}
	g := newGenerator(s.withDefaults())
	for n := 1; n <= s.Users; n++ {
		if err := fn(g.user(n)); err != nil {
			return err
		}
	}
	return nil
}

// locales holds the locales devices get, five bytes each, separated by one space.
const locales = "en-US en-GB de-DE fr-FR es-ES es-MX pt-BR it-IT ja-JP ko-KR nl-NL pl-PL"

// Token shapes.
const (
	apnsTokenLen     = 64
	apnsLongTokenLen = 160
	fcmPrefixLen     = 22 // instance ID part, before ':'
	fcmMinLen        = 152
	fcmMaxLen        = 163
	fcmMarker        = ":APA91b"
	hexDigits        = "0123456789abcdef"
	b64urlDigits     = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
)

// generator makes users for one spec; it reuses its buffers between users.
type generator struct {
	spec  RegistrySpec
	width int // digits of a user number
	devs  []sender.Device
	buf   []byte
	// draw appends a random token; drawToken, or a stand-in in tests.
	draw func(dst []byte, r *rng, p sender.Platform, long bool) []byte
}

func newGenerator(s RegistrySpec) *generator {
	return &generator{spec: s, width: idWidth(s.Users), devs: make([]sender.Device, 0, 2), draw: drawToken}
}

// idWidth is the number of digits of user IDs for a registry of users users.
func idWidth(users int) int { return max(8, len(strconv.Itoa(users))) }

// appendUserID appends the ID of user number n, zero-padded to width digits.
func appendUserID(buf []byte, n, width int) []byte {
	var d [20]byte
	digits := strconv.AppendInt(d[:0], int64(n), 10)
	buf = append(buf, 'u')
	for range width - len(digits) {
		buf = append(buf, '0')
	}
	return append(buf, digits...)
}

// user generates user number n (1-based) from its own random stream.
func (g *generator) user(n int) (string, []sender.Device) {
	r := newRNG(g.spec.Seed, uint64(n))
	g.buf = appendUserID(g.buf[:0], n, g.width)
	id := string(g.buf)
	ndev := 1
	if r.chance(g.spec.MultiDeviceShare) {
		ndev = 2
	}
	li := r.intn(len(locales)/6 + 1)
	locale := locales[li*6 : li*6+5]
	g.devs = g.devs[:0]
	for range ndev {
		d := sender.Device{Platform: sender.PlatformAndroid, App: g.spec.FCMProject, Locale: locale}
		if r.chance(g.spec.IOSShare) {
			d.Platform, d.App = sender.PlatformIOS, g.spec.APNsTopic
		}
		invalid := r.chance(g.spec.InvalidShare)
		long := d.Platform == sender.PlatformIOS && r.chance(g.spec.LongTokenShare)
		d.Token = g.token(&r, d.Platform, long, invalid)
		g.devs = append(g.devs, d)
	}
	return id, g.devs
}

// token draws a token for the platform; an invalid one gets the unregistered marker over
// its first characters, and a valid one that happens to start with the marker is drawn
// again.
func (g *generator) token(r *rng, p sender.Platform, long, invalid bool) string {
	for {
		g.buf = g.draw(g.buf[:0], r, p, long)
		if invalid {
			copy(g.buf, mockpush.UnregisteredMarker)
			return string(g.buf)
		}
		if string(g.buf[:len(mockpush.UnregisteredMarker)]) != mockpush.UnregisteredMarker {
			return string(g.buf)
		}
	}
}

// drawToken appends a random token of the platform's shape.
func drawToken(dst []byte, r *rng, p sender.Platform, long bool) []byte {
	switch {
	case p == sender.PlatformAndroid:
		return appendFCMToken(dst, r)
	case long:
		return appendRandom(dst, r, hexDigits, apnsLongTokenLen)
	}
	return appendRandom(dst, r, hexDigits, apnsTokenLen)
}

// appendFCMToken appends an FCM-like registration token: 22 base64url characters, ":APA91b"
// and more base64url characters, fcmMinLen to fcmMaxLen in all.
func appendFCMToken(b []byte, r *rng) []byte {
	n := fcmMinLen + r.intn(fcmMaxLen-fcmMinLen+1)
	b = appendRandom(b, r, b64urlDigits, fcmPrefixLen)
	b = append(b, fcmMarker...)
	return appendRandom(b, r, b64urlDigits, n-fcmPrefixLen-len(fcmMarker))
}

// appendRandom appends n characters drawn uniformly from digits, whose length is a power of
// two (16 or 64).
func appendRandom(b []byte, r *rng, digits string, n int) []byte {
	width := uint(bits.Len(uint(len(digits) - 1))) // bits per character
	mask := uint64(len(digits) - 1)
	b, out := grow(b, n)
	for len(out) > 0 {
		x := r.next()
		k := min(64/int(width), len(out))
		for i := range out[:k] {
			out[i] = digits[x&mask]
			x >>= width
		}
		out = out[k:]
	}
	return b
}

// grow extends b by n bytes and returns it with the new part.
func grow(b []byte, n int) ([]byte, []byte) {
	b = slices.Grow(b, n)[:len(b)+n]
	return b, b[len(b)-n:]
}

// rng is SplitMix64: tiny, fast, and fully specified here, so the generated registry never
// changes with the Go version.
type rng struct{ s uint64 }

// newRNG returns the stream of one user: its state mixes the seed and the user number.
func newRNG(seed, stream uint64) rng {
	r := rng{s: seed}
	r.s = r.next() ^ stream*0xd1342543de82ef95
	r.next()
	return r
}

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// chance returns true with probability p (never for 0, always for 1).
func (r *rng) chance(p float64) bool {
	return float64(r.next()>>11)/(1<<53) < p
}

// intn returns a number in [0, n).
func (r *rng) intn(n int) int {
	hi, _ := bits.Mul64(r.next(), uint64(n))
	return int(hi)
}
