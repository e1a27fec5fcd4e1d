// Package cron parses five-field cron expressions and finds their occurrences, for the
// campaign service's recurring schedules.
//
// An expression is five fields separated by spaces: minute (0-59), hour (0-23), day of
// month (1-31), month (1-12 or jan-dec) and day of week (0-7 or sun-sat; 0 and 7 are
// Sunday). Each field is "*" or a comma-separated list of a value, a range "a-b", or either
// with a step: "*/15", "1-30/2", "5/10" (from 5 to the field's maximum). Names are
// case-insensitive. The shorthands @yearly (@annually), @monthly, @weekly, @daily
// (@midnight) and @hourly are accepted too. As in Vixie cron, when both day fields are
// restricted (neither starts with "*"), a day matches if either matches; otherwise both
// must.
//
// Times are wall-clock times in the location of the time given to Next: a daily 09:00 in
// Europe/Berlin stays 09:00 across daylight-saving changes. A wall-clock time that does not
// exist (skipped by a spring-forward) does not occur that day; one that exists twice
// (fall-back) occurs once.
//
// Usage:
//
//	s, err := cron.Parse("0 9 * * mon-fri")
//	next := s.Next(time.Now().In(berlin)) // the next weekday 09:00 in Berlin
package cron

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxLen bounds an expression's length: it is outside input.
const MaxLen = 256

// Schedule is a parsed expression. It is immutable and safe for concurrent use.
type Schedule struct {
	minute, hour, dom, month, dow bits
	// domAny and dowAny record that the day-of-month or day-of-week field started with "*":
	// the day rule then needs the other field only.
	domAny, dowAny bool
	expr           string
}

// bits is a set of small integers (0..63).
type bits uint64

func (b bits) has(i int) bool { return b&(1<<uint(i)) != 0 }

// field describes one of the five fields.
type field struct {
	name     string
	min, max int
	names    []string // names[i] is value min+i... or nil; see lookup
}

var (
	months = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
	days   = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
	fields = [5]field{
		{name: "minute", min: 0, max: 59},
		{name: "hour", min: 0, max: 23},
		{name: "day of month", min: 1, max: 31},
		{name: "month", min: 1, max: 12, names: months},
		{name: "day of week", min: 0, max: 7, names: days},
	}
	shorthands = map[string]string{
		"@yearly":   "0 0 1 1 *",
		"@annually": "0 0 1 1 *",
		"@monthly":  "0 0 1 * *",
		"@weekly":   "0 0 * * 0",
		"@daily":    "0 0 * * *",
		"@midnight": "0 0 * * *",
		"@hourly":   "0 * * * *",
	}
)

// ErrSyntax is wrapped by every error Parse returns.
var ErrSyntax = errors.New("cron: bad expression")

// Parse parses a five-field expression or a shorthand. The error names the bad field.
func Parse(expr string) (*Schedule, error) {
	if len(expr) > MaxLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrSyntax, MaxLen)
	}
	text := strings.TrimSpace(expr)
	if full, ok := shorthands[strings.ToLower(text)]; ok {
		text = full
	}
	parts := strings.Fields(text)
	if len(parts) != 5 {
		return nil, fmt.Errorf("%w: %q has %d fields, want 5 (minute hour day-of-month month day-of-week)", ErrSyntax, expr, len(parts))
	}
	s := &Schedule{expr: strings.Join(strings.Fields(strings.TrimSpace(expr)), " ")}
	out := [5]*bits{&s.minute, &s.hour, &s.dom, &s.month, &s.dow}
	for i, p := range parts {
		b, err := parseField(p, fields[i])
		if err != nil {
			return nil, fmt.Errorf("%w: %s field %q: %v", ErrSyntax, fields[i].name, p, err)
		}
		*out[i] = b
	}
	if s.dow.has(7) {
		s.dow = s.dow&^(1<<7) | 1 // 7 is Sunday too
	}
	s.domAny = strings.HasPrefix(parts[2], "*")
	s.dowAny = strings.HasPrefix(parts[4], "*")
	return s, nil
}

// parseField parses one field's comma-separated list.
func parseField(text string, f field) (bits, error) {
	var b bits
	for item := range strings.SplitSeq(text, ",") {
		if item == "" {
			return 0, errors.New("empty list item")
		}
		rng, stepText, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 || n > f.max-f.min+1 {
				return 0, fmt.Errorf("step %q: want 1 to %d", stepText, f.max-f.min+1)
			}
			step = n
		}
		lo, hi := f.min, f.max
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			a, z, _ := strings.Cut(rng, "-")
			var err error
			if lo, err = value(a, f); err != nil {
				return 0, err
			}
			if hi, err = value(z, f); err != nil {
				return 0, err
			}
			if lo > hi {
				return 0, fmt.Errorf("range %s: start after end", rng)
			}
		default:
			v, err := value(rng, f)
			if err != nil {
				return 0, err
			}
			lo = v
			if !hasStep {
				hi = v // a single value; with a step it runs to the maximum
			}
		}
		for v := lo; v <= hi; v += step {
			b |= 1 << uint(v)
		}
	}
	return b, nil
}

// value parses a number or a name within f's bounds.
func value(text string, f field) (int, error) {
	for i, n := range f.names {
		if strings.EqualFold(text, n) {
			return i + f.min, nil
		}
	}
	n, err := strconv.Atoi(text)
	if err != nil || len(text) > 2 || strings.TrimLeft(text, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a number from %d to %d", text, f.min, f.max)
	}
	if n < f.min || n > f.max {
		return 0, fmt.Errorf("%d is outside %d-%d", n, f.min, f.max)
	}
	return n, nil
}

// String returns the expression as given (spaces normalised).
func (s *Schedule) String() string { return s.expr }

// Matches reports whether t's wall-clock minute (in t's location) is an occurrence.
func (s *Schedule) Matches(t time.Time) bool {
	return s.minute.has(t.Minute()) && s.hour.has(t.Hour()) && s.month.has(int(t.Month())) && s.dayMatches(t)
}

func (s *Schedule) dayMatches(t time.Time) bool {
	dom, dow := s.dom.has(t.Day()), s.dow.has(int(t.Weekday()))
	switch {
	case s.domAny && s.dowAny:
		return dom && dow
	case s.domAny:
		return dow
	case s.dowAny:
		return dom
	}
	return dom || dow
}

// horizon bounds the search of Next: an expression with no occurrence within it (such as
// "0 0 30 2 *", February 30th) never occurs.
const horizon = 5 * 366 * 24 * time.Hour

// Next returns the first occurrence strictly after after, in after's location (seconds
// zero), or the zero time when there is none within five years.
func (s *Schedule) Next(after time.Time) time.Time {
	loc := after.Location()
	t := after.Truncate(time.Minute).Add(time.Minute)
	end := after.Add(horizon)
	for guard := 0; t.Before(end) && guard < 1_000_000; guard++ {
		next := t
		switch {
		case !s.month.has(int(t.Month())):
			next = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, loc)
		case !s.dayMatches(t):
			next = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
		case !s.hour.has(t.Hour()):
			next = time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, loc)
		case !s.minute.has(t.Minute()):
			next = t.Add(time.Minute)
		default:
			return t
		}
		if !next.After(t) { // a wall-clock time that normalises backwards: step on
			next = t.Add(time.Minute)
		}
		t = next
	}
	return time.Time{}
}
