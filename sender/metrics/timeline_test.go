package metrics

import (
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
	if want := int(Span / DefaultStep); a.Len() != want {
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
			if got := tl.PeakPerSecond(); got != tt.want {
				t.Fatalf("peak = %v, want %v", got, tt.want)
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
