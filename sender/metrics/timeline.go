package metrics

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// DefaultStep is the timeline's step: counts per 100 ms since the GO press.
const DefaultStep = 100 * time.Millisecond

// Span is how far a timeline reaches; later times count in its last step.
const Span = time.Hour

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

// TimelineOf returns a timeline holding the given counts, step i covering
// [i*step, (i+1)*step) after the press; the slices are copied. It refuses a step <= 0,
// slices of different lengths, negative counts, or more steps than Span holds.
func TimelineOf(step time.Duration, accepted, rejected []int64) (*Timeline, error) {
	if step <= 0 {
		return nil, fmt.Errorf("timeline: step %v must be above 0", step)
	}
	if len(accepted) != len(rejected) {
		return nil, fmt.Errorf("timeline: %d accepted steps but %d rejected steps", len(accepted), len(rejected))
	}
	if len(accepted) > int(Span/step)+1 {
		return nil, fmt.Errorf("timeline: %d steps of %v reach past %v", len(accepted), step, Span)
	}
	for i := range accepted {
		if accepted[i] < 0 || rejected[i] < 0 {
			return nil, fmt.Errorf("timeline: step %d: negative count", i)
		}
	}
	t := &Timeline{step: step}
	t.accepted = append([]int64(nil), accepted...)
	t.rejected = append([]int64(nil), rejected...)
	return t, nil
}

// Add counts one response at sincePress after the GO press: accepted, or rejected (any
// rejection, retried or not). Negative times count in the first step; times past Span in
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
	return int(min(sincePress, Span-1) / t.step)
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

// PeakPerSecond is the most accepted in any window of one second (rounded to whole steps)
// sliding by one step, scaled to per second.
func (t *Timeline) PeakPerSecond() float64 {
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

// timelineJSON is a Timeline on the wire (workers in separate processes publish theirs).
type timelineJSON struct {
	StepMs   float64 `json:"step_ms"`
	Accepted []int64 `json:"accepted"`
	Rejected []int64 `json:"rejected"`
}

// MarshalJSON encodes the timeline's step and counts.
func (t *Timeline) MarshalJSON() ([]byte, error) {
	return json.Marshal(timelineJSON{StepMs: float64(t.step) / float64(time.Millisecond), Accepted: t.accepted, Rejected: t.rejected})
}

// UnmarshalJSON decodes what MarshalJSON wrote, refusing what TimelineOf refuses.
func (t *Timeline) UnmarshalJSON(b []byte) error {
	var w timelineJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	step := time.Duration(w.StepMs * float64(time.Millisecond))
	if step <= 0 {
		return errors.New("timeline: bad step")
	}
	nt, err := TimelineOf(step, w.Accepted, w.Rejected)
	if err != nil {
		return err
	}
	*t = *nt
	return nil
}
