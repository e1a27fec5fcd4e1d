package provider

import (
	"net/http"
	"strconv"
	"time"
)

// maxRetryAfterSeconds caps a Retry-After (a day), against absurd values.
const maxRetryAfterSeconds = 24 * 60 * 60

// ParseRetryAfter reads a Retry-After header, delay seconds or an HTTP date, relative to
// now. It returns 0 for an empty, malformed or past value and caps the delay at a day.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(min(max(s, 0), maxRetryAfterSeconds)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfterSeconds*time.Second)
	}
	return 0
}
