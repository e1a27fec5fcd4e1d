package results

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/salvopush/salvo/sender/metrics"
)

// timelineHeader returns the columns of timeline.csv.
func timelineHeader() []string {
	return []string{"t_ms", "accepted", "rejected", "cumulative_accepted"}
}

// writeTimelineCSV writes one line per step: the step's start in ms since the press, its
// accepted and rejected counts, and the accepted count up to the step's end.
func writeTimelineCSV(w io.Writer, t *metrics.Timeline) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(timelineHeader()); err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	var cum int64
	stepMs := float64(t.Step()) / float64(time.Millisecond)
	for i := range t.Len() {
		acc, rej := t.At(i)
		cum += acc
		rec := []string{
			strconv.FormatFloat(float64(i)*stepMs, 'f', -1, 64),
			strconv.FormatInt(acc, 10),
			strconv.FormatInt(rej, 10),
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
// between the first two lines (metrics.DefaultStep with fewer than two lines); lines must be evenly
// spaced and the cumulative column must agree with the counts.
func readTimelineCSV(r io.Reader) (*metrics.Timeline, error) {
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
	step := metrics.DefaultStep
	if len(rows) >= 2 {
		step = time.Duration((rows[1].tMs - rows[0].tMs) * float64(time.Millisecond))
		if step <= 0 {
			return nil, errors.New("timeline: t_ms does not increase")
		}
	}
	acc, rej := make([]int64, len(rows)), make([]int64, len(rows))
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
		acc[i], rej[i] = rw.acc, rw.rej
	}
	t, err := metrics.TimelineOf(step, acc, rej)
	if err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	return t, nil
}
