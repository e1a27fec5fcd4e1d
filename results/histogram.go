package results

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/salvopush/salvo/sender/metrics"
)

// hgrmTicksPerHalfDistance is the percentile resolution of latency.hgrm, as in HdrHistogram's
// own output: 5 lines per halving of the remaining distance to 100%.
const hgrmTicksPerHalfDistance = 5

// writeHgrm writes h (microseconds) as HdrHistogram's percentile-distribution text in
// milliseconds: the "Value Percentile TotalCount 1/(1-Percentile)" table, one line per
// percentile tick, the last one (100%) without its infinite 1/(1-p), then the Mean,
// StdDeviation, Max, Total count, Buckets and SubBuckets footer. Standard HdrHistogram
// plotters read it.
func writeHgrm(w io.Writer, h *hdrhistogram.Histogram) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)")
	const scale = 1000.0 // µs -> ms
	if h.TotalCount() > 0 {
		for _, b := range h.CumulativeDistributionWithTicks(hgrmTicksPerHalfDistance) {
			p := b.Quantile / 100
			if b.Quantile >= 100 {
				fmt.Fprintf(bw, "%12.3f %1.12f %10d\n", float64(b.ValueAt)/scale, 1.0, b.Count)
				continue
			}
			fmt.Fprintf(bw, "%12.3f %1.12f %10d %14.2f\n", float64(b.ValueAt)/scale, p, b.Count, 1/(1-p))
		}
	}
	buckets, subBuckets := histogramLayout(h)
	fmt.Fprintf(bw, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n", h.Mean()/scale, h.StdDev()/scale)
	fmt.Fprintf(bw, "#[Max     = %12.3f, Total count    = %12d]\n", float64(h.Max())/scale, h.TotalCount())
	fmt.Fprintf(bw, "#[Buckets = %12d, SubBuckets     = %12d]\n", buckets, subBuckets)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("hgrm: %w", err)
	}
	return nil
}

// histogramLayout returns h's bucket and sub-bucket counts, derived the way HdrHistogram
// lays out its counts array: sub-buckets are the power of two that holds 2*10^sigfigs,
// and the array holds (buckets+1) halves of it.
func histogramLayout(h *hdrhistogram.Histogram) (buckets, subBuckets int) {
	subBuckets = 1 << int(math.Ceil(math.Log2(2*math.Pow10(int(h.SignificantFigures())))))
	counts := len(h.Export().Counts)
	return counts/(subBuckets/2) - 1, subBuckets
}

// hlogTag marks the one interval histogram of latency.hlog.
const hlogTag = "latency_us"

// writeHlog writes h as an HdrHistogram interval log (a single interval, values in
// microseconds): the raw data that Render re-reads and that HdrHistogram's log tools process.
func writeHlog(w io.Writer, h *hdrhistogram.Histogram, startedAt time.Time, span time.Duration) error {
	lw := hdrhistogram.NewHistogramLogWriter(w)
	c := h.Export()
	cp := hdrhistogram.Import(c)
	cp.SetTag(hlogTag)
	cp.SetStartTimeMs(startedAt.UnixMilli())
	cp.SetEndTimeMs(startedAt.Add(span).UnixMilli())
	lw.SetBaseTime(startedAt.UnixMilli())
	for _, step := range []func() error{
		lw.OutputLogFormatVersion,
		func() error { return lw.OutputComment("[Latency from the GO press, microseconds]") },
		func() error { return lw.OutputStartTime(startedAt.UnixMilli()) },
		lw.OutputLegend,
		func() error { return lw.OutputIntervalHistogram(cp) },
	} {
		if err := step(); err != nil {
			return fmt.Errorf("hlog: %w", err)
		}
	}
	return nil
}

// readHlog reads the histograms of an interval log written by writeHlog and merges them into
// one latency histogram.
func readHlog(r io.Reader) (*hdrhistogram.Histogram, error) {
	out := metrics.NewLatencyHistogram()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	found := false
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' || text[0] == '"' {
			continue
		}
		text = strings.TrimPrefix(text, "Tag="+hlogTag+",")
		fields := strings.Split(text, ",")
		if len(fields) != 4 {
			return nil, fmt.Errorf("hlog: line %d: want 4 comma-separated fields, got %d", line, len(fields))
		}
		h, err := decodeHistogram([]byte(fields[3]))
		if err != nil {
			return nil, fmt.Errorf("hlog: line %d: %w", line, err)
		}
		if dropped := out.Merge(h); dropped != 0 {
			return nil, fmt.Errorf("hlog: line %d: %d samples out of the latency range", line, dropped)
		}
		found = true
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("hlog: %w", err)
	}
	if !found {
		return nil, errors.New("hlog: no histogram in the log")
	}
	return out, nil
}

// decodeHistogram decodes one compressed base64 histogram, turning a panic of the decoder on
// malformed input into an error.
func decodeHistogram(payload []byte) (h *hdrhistogram.Histogram, err error) {
	if !bytes.HasPrefix(payload, []byte("HISTF")) {
		return nil, errors.New("not a compressed V2 histogram (want HISTF...)")
	}
	defer func() {
		if p := recover(); p != nil {
			h, err = nil, fmt.Errorf("malformed histogram: %v", p)
		}
	}()
	h, err = hdrhistogram.Decode(payload)
	if err != nil {
		return nil, fmt.Errorf("decode histogram: %w", err)
	}
	return h, nil
}
