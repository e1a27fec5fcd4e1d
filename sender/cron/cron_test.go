package cron

import (
	"errors"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the DST cases need Europe/Berlin wherever the test runs
)

func TestParseRefusesBadExpressions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, expr, want string // want: a part of the error that names the problem
	}{
		// Four fields are not an expression.
		{"too few fields", "* * * *", "4 fields"},
		// Six fields (a seconds field) are not taken either.
		{"seconds field", "0 * * * * *", "6 fields"},
		{"empty", "", "0 fields"},
		// Values are checked against each field's bounds.
		{"minute 60", "60 * * * *", "minute field"},
		{"hour 24", "0 24 * * *", "hour field"},
		{"day 0", "0 0 0 * *", "day of month field"},
		{"month 13", "0 0 1 13 *", "month field"},
		{"weekday 8", "0 0 * * 8", "day of week field"},
		// Ranges run forwards only.
		{"backwards range", "0 5-1 * * *", "start after end"},
		// A step is at least 1 and at most the field's width.
		{"step 0", "*/0 * * * *", "step"},
		{"step too big", "*/61 * * * *", "step"},
		// Empty list items and stray text are refused.
		{"empty item", "1,,2 * * * *", "empty list item"},
		{"signed number", "+5 * * * *", "not a number"},
		{"unknown name", "0 0 * foo *", "month field"},
		{"unknown shorthand", "@sometimes", "1 fields"},
		// An expression longer than MaxLen is refused before it is read.
		{"too long", strings.Repeat("1,", MaxLen) + "1 * * * *", "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(tt.expr)
			if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse(%q) = %v, want an ErrSyntax naming %q", tt.expr, err, tt.want)
			}
		})
	}
}

func TestNext(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	in := func(loc *time.Location, s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name, expr string
		after      time.Time
		want       time.Time // zero: never
	}{
		// Every minute: the next whole minute, strictly after.
		{"every minute", "* * * * *", utc("2026-03-01T12:00:00Z"), utc("2026-03-01T12:01:00Z")},
		// Seconds are dropped: 12:00:30 is followed by 12:01.
		{"mid-minute", "* * * * *", utc("2026-03-01T12:00:30Z"), utc("2026-03-01T12:01:00Z")},
		// A daily time later the same day.
		{"daily later today", "30 9 * * *", utc("2026-03-01T08:00:00Z"), utc("2026-03-01T09:30:00Z")},
		// A daily time already past today: tomorrow.
		{"daily tomorrow", "30 9 * * *", utc("2026-03-01T09:30:00Z"), utc("2026-03-02T09:30:00Z")},
		// Steps: every 15 minutes.
		{"step", "*/15 * * * *", utc("2026-03-01T12:16:00Z"), utc("2026-03-01T12:30:00Z")},
		// A stepped range and a list.
		{"range step", "0 8-18/5 * * *", utc("2026-03-01T13:00:00Z"), utc("2026-03-01T18:00:00Z")},
		{"list", "0 7,19 * * *", utc("2026-03-01T08:00:00Z"), utc("2026-03-01T19:00:00Z")},
		// Weekdays by name: 2026-03-01 is a Sunday, so Monday 09:00.
		{"weekday names", "0 9 * * mon-fri", utc("2026-03-01T10:00:00Z"), utc("2026-03-02T09:00:00Z")},
		// 7 is Sunday as well as 0.
		{"sunday as 7", "0 9 * * 7", utc("2026-03-02T10:00:00Z"), utc("2026-03-08T09:00:00Z")},
		// Month names and the year's end.
		{"yearly", "@yearly", utc("2026-03-01T00:00:00Z"), utc("2027-01-01T00:00:00Z")},
		{"month name", "0 0 1 jun *", utc("2026-03-01T00:00:00Z"), utc("2026-06-01T00:00:00Z")},
		// Both day fields restricted: either matches (the 15th, or a Friday).
		{"day or weekday", "0 0 15 * fri", utc("2026-03-01T00:00:00Z"), utc("2026-03-06T00:00:00Z")},
		// Day of month restricted, weekday "*": the day only.
		{"day only", "0 0 15 * *", utc("2026-03-01T00:00:00Z"), utc("2026-03-15T00:00:00Z")},
		// The 31st skips months that have none.
		{"31st", "0 0 31 * *", utc("2026-04-01T00:00:00Z"), utc("2026-05-31T00:00:00Z")},
		// February 29th: the next leap year.
		{"leap day", "0 0 29 2 *", utc("2026-03-01T00:00:00Z"), utc("2028-02-29T00:00:00Z")},
		// February 30th never comes.
		{"never", "0 0 30 2 *", utc("2026-03-01T00:00:00Z"), time.Time{}},
		// Wall-clock time in the location of after: 09:00 Berlin is 08:00 UTC in winter...
		{"berlin winter", "0 9 * * *", in(berlin, "2026-03-01 10:00"), in(berlin, "2026-03-02 09:00")},
		// ...and 07:00 UTC in summer: still 09:00 on the wall.
		{"berlin summer", "0 9 * * *", in(berlin, "2026-03-29 08:00"), in(berlin, "2026-03-29 09:00")},
		// 02:30 does not exist on the spring-forward night in Berlin: not that day.
		{"spring forward", "30 2 * * *", in(berlin, "2026-03-29 01:00"), in(berlin, "2026-03-30 02:30")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Parse(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			got := s.Next(tt.after)
			if !got.Equal(tt.want) {
				t.Fatalf("Next(%s) = %s, want %s", tt.after, got, tt.want)
			}
			if !got.IsZero() && got.Location() != tt.after.Location() {
				t.Fatalf("Next in %s, want %s", got.Location(), tt.after.Location())
			}
		})
	}
}

// TestNextFallBackOnce checks that an hour that occurs twice (the autumn fall-back) gives
// one occurrence, not two.
func TestNextFallBackOnce(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse("30 2 * * *")
	if err != nil {
		t.Fatal(err)
	}
	first := s.Next(time.Date(2026, 10, 25, 0, 0, 0, 0, berlin))
	second := s.Next(first)
	if first.Hour() != 2 || first.Minute() != 30 || first.Day() != 25 {
		t.Fatalf("first = %s, want 02:30 on the 25th", first)
	}
	if second.Day() != 26 {
		t.Fatalf("second = %s, want the 26th: 02:30 must occur once on the fall-back night", second)
	}
}

// FuzzParse feeds Parse arbitrary text: it must never panic, and whatever it accepts must
// read back the same from its String, and give occurrences that are later than the time
// asked about and match the expression.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{"* * * * *", "*/5 1-3 1,15 jan-mar mon-fri", "@daily", "0 0 30 2 *", "5/7 */3 * * 7",
		"0 0 15 * fri", "60 * * * *", "1-", "-1 * * * *", "*/", ",,", "@hourly"} {
		f.Add(seed, int64(1772366400))
	}
	f.Fuzz(func(t *testing.T, expr string, unix int64) {
		s, err := Parse(expr)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v does not wrap ErrSyntax", err)
			}
			return
		}
		again, err := Parse(s.String())
		if err != nil {
			t.Fatalf("String %q of %q does not parse: %v", s.String(), expr, err)
		}
		if *again != *s {
			t.Fatalf("String %q of %q reads back differently", s.String(), expr)
		}
		after := time.Unix(unix%(200*365*24*3600), 0).UTC()
		next := s.Next(after)
		if next.IsZero() {
			return
		}
		if !next.After(after) || next.Second() != 0 || !s.Matches(next) {
			t.Fatalf("%q: Next(%s) = %s: not later, not on a minute, or not a match", expr, after, next)
		}
	})
}
