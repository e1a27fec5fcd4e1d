package conformance

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a time that moves only when told to.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
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
