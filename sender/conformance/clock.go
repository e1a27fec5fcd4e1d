package conformance

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Clock is a time that moves only when told to: the suites drive leases with one, and
// implementations' own tests may too. It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock at a fixed instant.
func NewClock() *Clock { return &Clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// name returns a name unique to the running (sub)test and the process, usable as a
// campaign ID, a key or a queue name: implementations may share one table or bucket across
// subtests.
func name(t *testing.T) string {
	r := strings.NewReplacer("/", "-", " ", "-", "#", "-")
	return r.Replace(t.Name()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}
