package results

import (
	"encoding/json"
	"fmt"
	"time"
)

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

// UnmarshalJSON decodes what MarshalJSON wrote.
func (t *Timeline) UnmarshalJSON(b []byte) error {
	var w timelineJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	step := time.Duration(w.StepMs * float64(time.Millisecond))
	if step <= 0 || len(w.Accepted) != len(w.Rejected) || len(w.Accepted) > int(timelineSpan/step)+1 {
		return fmt.Errorf("timeline: bad step %v or counts (%d accepted, %d rejected steps)", w.StepMs, len(w.Accepted), len(w.Rejected))
	}
	*t = Timeline{step: step, accepted: w.Accepted, rejected: w.Rejected}
	return nil
}
