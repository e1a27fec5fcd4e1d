package results

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestHgrmGolden(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := writeHgrm(&buf, fixture(20000, 1).Latency); err != nil {
		t.Fatal(err)
	}
	golden(t, "latency.hgrm", buf.Bytes())
}

// TestHgrmIsPlotterReadable parses latency.hgrm the way HdrHistogram plotters do: lines of
// 4 space-separated numbers are points (value, 1/(1-p) as x), the 100% line has 3 and is
// skipped, '#' lines are the footer.
func TestHgrmIsPlotterReadable(t *testing.T) {
	t.Parallel()
	in := fixture(5000, 3)
	var buf bytes.Buffer
	if err := writeHgrm(&buf, in.Latency); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "Value Percentile TotalCount 1/(1-Percentile)" {
		t.Fatalf("header = %q", lines[0])
	}
	var points, last int
	var prevValue, prevX float64
	for i, line := range lines[2:] {
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "#"):
			continue
		case len(f) == 3:
			last++
			if f[1] != "1.000000000000" {
				t.Errorf("line %d: the 3-column line must be the 100%% one: %q", i+3, line)
			}
			continue
		case len(f) != 4:
			t.Fatalf("line %d: %q has %d fields", i+3, line, len(f))
		}
		v, err1 := strconv.ParseFloat(f[0], 64)
		x, err2 := strconv.ParseFloat(f[3], 64)
		if err1 != nil || err2 != nil || v < prevValue || x < prevX {
			t.Fatalf("line %d: %q is not a point after (%v, %v)", i+3, line, prevValue, prevX)
		}
		prevValue, prevX = v, x
		points++
	}
	if points < 20 || last != 1 {
		t.Fatalf("%d points and %d final lines, want many points and one final line", points, last)
	}
	footer := strings.Join(lines[len(lines)-3:], "\n")
	total := fmt.Sprintf("Total count    = %12d]", in.Latency.TotalCount())
	for _, want := range []string{"#[Mean    =", "StdDeviation   =", "#[Max     =", total, "#[Buckets =           22, SubBuckets     =         2048]"} {
		if !strings.Contains(footer, want) {
			t.Errorf("footer lacks %q:\n%s", want, footer)
		}
	}
}

func TestHlogRoundTrip(t *testing.T) {
	t.Parallel()
	in := fixture(4000, 9)
	var buf bytes.Buffer
	if err := writeHlog(&buf, in.Latency, in.StartedAt, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	back, err := readHlog(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Equals(in.Latency) {
		t.Fatal("histogram changed through latency.hlog")
	}
}

func TestReadHlogRefusesBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, log, want string
	}{
		// No interval line at all.
		{"empty", "#[Histogram log format version 1.3]\n", "no histogram"},
		// An interval line without the histogram.
		{"fields", "0.0,1.0,2.0\n", "want 4 comma-separated fields"},
		// A payload that is not a compressed histogram.
		{"payload", "0.0,1.0,2.0,notahistogram\n", "not a compressed V2 histogram"},
		// A payload with the right prefix but broken content.
		{"corrupt", "0.0,1.0,2.0,HISTFAAAAA\n", "histogram"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := readHlog(strings.NewReader(tt.log))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
