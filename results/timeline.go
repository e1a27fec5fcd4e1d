package results

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// DefaultStep is the timeline's step: counts per 100 ms since the GO press.
const DefaultStep = 100 * time.Millisecond

// timelineSpan is how far a timeline reaches; later times count in its last step.
const timelineSpan = time.Hour

// Timeline counts accepted and rejected responses per step since the GO press. It is not
// safe for concurrent use: keep one per goroutine (Add is a couple of array increments) and
// combine them with Merge. The zero value is not usable; call NewTimeline.
type Timeline struct {
	step     time.Duration
	accepted []int64
	rejected []int64
}

// NewTimeline returns an empty timeline with the given step (DefaultStep when step <= 0).
func NewTimeline(step time.Duration) *Timeline {
	if step <= 0 {
		step = DefaultStep
	}
	return &Timeline{step: step}
}

// Add counts one response at sincePress after the GO press: accepted, or rejected (any
// rejection, retried or not). Negative times count in the first step; times past one hour in
// the last.
func (t *Timeline) Add(sincePress time.Duration, accepted bool) {
	i := t.index(sincePress)
	if i >= len(t.accepted) {
		t.grow(i + 1)
	}
	if accepted {
		t.accepted[i]++
	} else {
		t.rejected[i]++
	}
}

// index is the step holding sincePress.
func (t *Timeline) index(sincePress time.Duration) int {
	if sincePress <= 0 {
		return 0
	}
	return int(min(sincePress, timelineSpan-1) / t.step)
}

// grow extends the timeline to n steps.
func (t *Timeline) grow(n int) {
	if n <= len(t.accepted) {
		return
	}
	if n <= cap(t.accepted) && n <= cap(t.rejected) {
		t.accepted = t.accepted[:n]
		t.rejected = t.rejected[:n]
		return
	}
	c := max(n, 2*cap(t.accepted), 64)
	acc := make([]int64, n, c)
	rej := make([]int64, n, c)
	copy(acc, t.accepted)
	copy(rej, t.rejected)
	t.accepted, t.rejected = acc, rej
}

// Merge adds o's counts into t; o is unchanged. When the steps differ, each of o's steps
// counts in t's step that holds its start.
func (t *Timeline) Merge(o *Timeline) {
	if o == nil {
		return
	}
	for i := range o.accepted {
		j := i
		if o.step != t.step {
			j = t.index(time.Duration(i) * o.step)
		}
		if o.accepted[i] == 0 && o.rejected[i] == 0 {
			continue
		}
		if j >= len(t.accepted) {
			t.grow(j + 1)
		}
		t.accepted[j] += o.accepted[i]
		t.rejected[j] += o.rejected[i]
	}
}

// Step returns the width of one step.
func (t *Timeline) Step() time.Duration { return t.step }

// Len returns the number of steps, up to the last one that counted anything.
func (t *Timeline) Len() int { return len(t.accepted) }

// At returns the counts of step i, which covers [i*Step, (i+1)*Step) after the press.
func (t *Timeline) At(i int) (accepted, rejected int64) { return t.accepted[i], t.rejected[i] }

// Totals returns the counts summed over all steps.
func (t *Timeline) Totals() (accepted, rejected int64) {
	for i := range t.accepted {
		accepted += t.accepted[i]
		rejected += t.rejected[i]
	}
	return accepted, rejected
}

// peakPerSecond is the most accepted in any window of one second (rounded to whole steps)
// sliding by one step, scaled to per second.
func (t *Timeline) peakPerSecond() float64 {
	w := max(int((time.Second+t.step/2)/t.step), 1)
	var sum, best int64
	for i, n := range t.accepted {
		sum += n
		if i >= w {
			sum -= t.accepted[i-w]
		}
		best = max(best, sum)
	}
	return float64(best) * float64(time.Second) / float64(time.Duration(w)*t.step)
}

// timelineHeader returns the columns of timeline.csv.
func timelineHeader() []string {
	return []string{"t_ms", "accepted", "rejected", "cumulative_accepted"}
}

// writeTimelineCSV writes one line per step: the step's start in ms since the press, its
// accepted and rejected counts, and the accepted count up to the step's end.
func writeTimelineCSV(w io.Writer, t *Timeline) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(timelineHeader()); err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	var cum int64
	stepMs := float64(t.step) / float64(time.Millisecond)
	for i := range t.accepted {
		cum += t.accepted[i]
		rec := []string{
			strconv.FormatFloat(float64(i)*stepMs, 'f', -1, 64),
			strconv.FormatInt(t.accepted[i], 10),
			strconv.FormatInt(t.rejected[i], 10),
			strconv.FormatInt(cum, 10),
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("timeline: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	return nil
}

// readTimelineCSV reads a timeline written by writeTimelineCSV. The step is the distance
// between the first two lines (DefaultStep with fewer than two lines); lines must be evenly
// spaced and the cumulative column must agree with the counts.
func readTimelineCSV(r io.Reader) (*Timeline, error) {
	cr := csv.NewReader(bufio.NewReader(r))
	columns := timelineHeader()
	cr.FieldsPerRecord = len(columns)
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("timeline: header: %w", err)
	}
	for i, name := range columns {
		if head[i] != name {
			return nil, fmt.Errorf("timeline: header column %d is %q, want %q", i+1, head[i], name)
		}
	}
	type row struct {
		tMs           float64
		acc, rej, cum int64
	}
	var rows []row
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("timeline: %w", err)
		}
		var rw row
		var perr error
		parseInt := func(col int) int64 {
			n, err := strconv.ParseInt(rec[col], 10, 64)
			if err != nil && perr == nil {
				perr = fmt.Errorf("timeline: line %d: %s: %w", line, columns[col], err)
			}
			if n < 0 && perr == nil {
				perr = fmt.Errorf("timeline: line %d: %s is negative", line, columns[col])
			}
			return n
		}
		rw.tMs, err = strconv.ParseFloat(rec[0], 64)
		if err != nil {
			return nil, fmt.Errorf("timeline: line %d: t_ms: %w", line, err)
		}
		rw.acc, rw.rej, rw.cum = parseInt(1), parseInt(2), parseInt(3)
		if perr != nil {
			return nil, perr
		}
		rows = append(rows, rw)
	}
	step := DefaultStep
	if len(rows) >= 2 {
		step = time.Duration((rows[1].tMs - rows[0].tMs) * float64(time.Millisecond))
		if step <= 0 {
			return nil, errors.New("timeline: t_ms does not increase")
		}
	}
	if len(rows) > int(timelineSpan/step)+1 {
		return nil, fmt.Errorf("timeline: %d steps of %v reach past %v", len(rows), step, timelineSpan)
	}
	t := NewTimeline(step)
	t.grow(len(rows))
	var cum int64
	stepMs := float64(step) / float64(time.Millisecond)
	for i, rw := range rows {
		if want := float64(i) * stepMs; rw.tMs < want-0.001 || rw.tMs > want+0.001 {
			return nil, fmt.Errorf("timeline: line %d: t_ms %v, want %v (even steps of %v)", i+2, rw.tMs, want, step)
		}
		cum += rw.acc
		if rw.cum != cum {
			return nil, fmt.Errorf("timeline: line %d: cumulative_accepted %d, want %d", i+2, rw.cum, cum)
		}
		t.accepted[i], t.rejected[i] = rw.acc, rw.rej
	}
	return t, nil
}
