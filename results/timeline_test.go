package results

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestTimelineAddAndMerge(t *testing.T) {
	t.Parallel()
	a := NewTimeline(0) // default step
	if a.Step() != DefaultStep {
		t.Fatalf("step = %v, want %v", a.Step(), DefaultStep)
	}
	a.Add(-time.Second, true)         // before the press: first step
	a.Add(50*time.Millisecond, false) // step 0
	a.Add(250*time.Millisecond, true) // step 2
	a.Add(2*time.Hour, true)          // past the span: last step of the hour
	b := NewTimeline(DefaultStep)
	b.Add(120*time.Millisecond, true)
	a.Merge(b)
	a.Merge(nil)
	if acc, rej := a.Totals(); acc != 4 || rej != 1 {
		t.Fatalf("totals = %d, %d, want 4, 1", acc, rej)
	}
	if want := int(timelineSpan / DefaultStep); a.Len() != want {
		t.Fatalf("len = %d, want %d", a.Len(), want)
	}
	for i, want := range [][2]int64{{1, 1}, {1, 0}, {1, 0}} {
		if acc, rej := a.At(i); acc != want[0] || rej != want[1] {
			t.Errorf("step %d = %d, %d, want %d, %d", i, acc, rej, want[0], want[1])
		}
	}
}

func TestTimelineMergeRebinsOtherSteps(t *testing.T) {
	t.Parallel()
	coarse := NewTimeline(time.Second)
	fine := NewTimeline(10 * time.Millisecond)
	fine.Add(5*time.Millisecond, true)     // starts at 0 s
	fine.Add(995*time.Millisecond, true)   // step starting at 990 ms: 0 s
	fine.Add(1005*time.Millisecond, false) // 1 s
	coarse.Merge(fine)
	if acc, rej := coarse.At(0); acc != 2 || rej != 0 {
		t.Errorf("second 0 = %d, %d, want 2, 0", acc, rej)
	}
	if acc, rej := coarse.At(1); acc != 0 || rej != 1 {
		t.Errorf("second 1 = %d, %d, want 0, 1", acc, rej)
	}
}

func TestTimelinePeakPerSecond(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		step   time.Duration
		counts []int64 // accepted per step
		want   float64
	}{
		// A short run: everything happened within one second.
		{"shorter than a second", 100 * time.Millisecond, []int64{5, 5}, 10},
		// The densest 10 steps win, not the first ten.
		{"sliding window", 100 * time.Millisecond, []int64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 50, 50}, 108},
		// A 300 ms step makes a 900 ms window, scaled to a second.
		{"uneven step", 300 * time.Millisecond, []int64{9, 9, 9, 9}, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tl := NewTimeline(tt.step)
			for i, n := range tt.counts {
				for range n {
					tl.Add(time.Duration(i)*tt.step, true)
				}
			}
			if got := tl.peakPerSecond(); got != tt.want {
				t.Fatalf("peak = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTimelineCSVRoundTrip(t *testing.T) {
	t.Parallel()
	tl := NewTimeline(DefaultStep)
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
	if back.Step() != DefaultStep || back.Len() != 4 {
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

func BenchmarkTimelineAdd(b *testing.B) {
	tl := NewTimeline(DefaultStep)
	tl.Add(10*time.Second, true) // grown once, as after the first seconds of a run
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		tl.Add(time.Duration(i%10_000)*time.Millisecond, i%50 != 0)
	}
}
