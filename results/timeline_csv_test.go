package results

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/salvopush/salvo/sender/metrics"
)

func TestTimelineCSVRoundTrip(t *testing.T) {
	t.Parallel()
	tl := metrics.NewTimeline(metrics.DefaultStep)
	tl.Add(10*time.Millisecond, true)
	tl.Add(310*time.Millisecond, true)
	tl.Add(320*time.Millisecond, false)
	var buf bytes.Buffer
	if err := writeTimelineCSV(&buf, tl); err != nil {
		t.Fatal(err)
	}
	want := "t_ms,accepted,rejected,cumulative_accepted\n0,1,0,1\n100,0,0,1\n200,0,0,1\n300,1,1,2\n"
	if buf.String() != want {
		t.Fatalf("csv =\n%s\nwant\n%s", buf.String(), want)
	}
	back, err := readTimelineCSV(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	if back.Step() != metrics.DefaultStep || back.Len() != 4 {
		t.Fatalf("read back step %v, len %d", back.Step(), back.Len())
	}
	for i := range 4 {
		a1, r1 := tl.At(i)
		a2, r2 := back.At(i)
		if a1 != a2 || r1 != r2 {
			t.Errorf("step %d: %d,%d read back as %d,%d", i, a1, r1, a2, r2)
		}
	}
}

func TestReadTimelineCSVRefusesBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, csv, want string
	}{
		// Another column layout.
		{"header", "t,accepted,rejected,cumulative_accepted\n", "header column 1"},
		// A count that is not a number.
		{"count", "t_ms,accepted,rejected,cumulative_accepted\n0,x,0,0\n", "line 2: accepted"},
		// A negative count.
		{"negative", "t_ms,accepted,rejected,cumulative_accepted\n0,-1,0,0\n", "line 2: accepted is negative"},
		// The cumulative column disagrees with the counts.
		{"cumulative", "t_ms,accepted,rejected,cumulative_accepted\n0,1,0,1\n100,1,0,1\n", "cumulative_accepted 1, want 2"},
		// Uneven steps.
		{"uneven", "t_ms,accepted,rejected,cumulative_accepted\n0,1,0,1\n100,1,0,2\n250,0,0,2\n", "even steps"},
		// Time going backwards.
		{"backwards", "t_ms,accepted,rejected,cumulative_accepted\n100,1,0,1\n0,1,0,2\n", "does not increase"},
		// A missing column.
		{"short line", "t_ms,accepted,rejected,cumulative_accepted\n0,1,0\n", "wrong number of fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := readTimelineCSV(strings.NewReader(tt.csv))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
