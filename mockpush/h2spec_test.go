package mockpush

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/summerwind/h2spec/config"
	"github.com/summerwind/h2spec/generic"
	"github.com/summerwind/h2spec/hpack"
	"github.com/summerwind/h2spec/http2"
	"github.com/summerwind/h2spec/spec"
)

// h2specExceptions lists the h2spec cases the mock APNs server fails by design, by
// "group-id/sequence", with the reason.
var h2specExceptions = map[string]string{}

// TestH2Spec runs the h2spec HTTP/2 conformance suite (generic, http2 and hpack groups)
// against the mock APNs server in permissive mode (no provider tokens; every request is
// answered, 404 BadPath for h2spec's "/"). Every case outside h2spec's strict mode must run
// and pass, but for the listed exceptions: a case that was skipped or never ran fails the
// test, so that a suite that could not reach the server cannot pass.
func TestH2Spec(t *testing.T) {
	if testing.Short() {
		t.Skip("h2spec takes a while")
	}
	s := startServer(t, func(c *Config) { c.Permissive = true; c.MaxConcurrentStreams = 100 })
	host, port, err := net.SplitHostPort(s.Ready().APNsURL[len("https://"):])
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	c := &config.Config{Host: host, Port: p, Path: "/", Timeout: 2 * time.Second, MaxHeaderLen: 4000,
		TLS: true, Insecure: true}
	groups := []*spec.TestGroup{generic.Spec(), http2.Spec(), hpack.Spec()}
	cases, passed := 0, 0
	for _, g := range groups {
		g.Test(c)
		walkH2Spec(g, func(id string, tc *spec.TestCase) {
			if tc.Strict {
				return // strict mode is off: h2spec does not run these
			}
			cases++
			r := tc.Result
			reason, excepted := h2specExceptions[id]
			switch {
			case r == nil:
				t.Errorf("h2spec %s %s: did not run", id, tc.Desc)
			case r.Skipped:
				t.Errorf("h2spec %s %s: skipped: %v", id, tc.Desc, r.Error)
			case r.Failed && !excepted:
				t.Errorf("h2spec %s %s: %v", id, tc.Desc, r.Error)
			case !r.Failed && excepted:
				t.Errorf("h2spec %s passes but is listed as an exception (%s)", id, reason)
			case !r.Failed:
				passed++
			}
		})
	}
	// The suite has well over a hundred cases; none found means none ran.
	if cases < 100 || passed+len(h2specExceptions) != cases {
		t.Errorf("h2spec: %d of %d cases passed, %d expected exceptions: every case must run", passed, cases, len(h2specExceptions))
	}
	t.Logf("h2spec: %d of %d cases passed, %d expected exceptions", passed, cases, len(h2specExceptions))
}

func walkH2Spec(g *spec.TestGroup, fn func(id string, tc *spec.TestCase)) {
	for i, tc := range append(append([]*spec.TestCase(nil), g.Tests...), g.StrictTests...) {
		fn(fmt.Sprintf("%s/%d", g.ID(), i+1), tc)
	}
	for _, sub := range g.Groups {
		walkH2Spec(sub, fn)
	}
}
