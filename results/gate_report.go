package results

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// The files of a gate folder.
const (
	fileGateMD   = "gate.md"
	fileGateJSON = "gate.json"
)

// WriteGate writes the gate's report into dir: gate.md (the table, for a person) and
// gate.json (the same as data, schema GateSchema).
func WriteGate(dir string, g *GateResult) error {
	var md bytes.Buffer
	if err := g.WriteMarkdown(&md); err != nil {
		return err
	}
	js, err := json.MarshalIndent(g.jsonView(), "", "  ")
	if err != nil {
		return fmt.Errorf("results: encode gate: %w", err)
	}
	return writeFiles(dir, map[string][]byte{fileGateMD: md.Bytes(), fileGateJSON: append(js, '\n')})
}

// WriteTable prints the gate's table for a CI log: per workload and metric the base's and
// the candidate's medians, the change, its interval, the threshold and the verdict; then the
// failures, errors and notes. The verdict line is not included (the caller prints it last).
func (g *GateResult) WriteTable(w io.Writer) error {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "base: %s; candidate: %s\n", g.baseName(), orDash(g.Candidate))
	fmt.Fprintf(&buf, "medians over the pairs; change: ratio of the medians; interval: %s Mann-Whitney interval of the ratio\n\n", fmtPct(g.Confidence))
	if len(g.rows()) > 0 {
		tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "WORKLOAD\tMETRIC\tBASE\tCANDIDATE\tCHANGE\tINTERVAL\tTHRESHOLD\tVERDICT")
		for _, a := range g.Arms {
			for _, r := range a.Rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, r.Metric.Label,
					fmtGateValue(r.Base, r.Metric.Unit), fmtGateValue(r.Candidate, r.Metric.Unit),
					fmtRatioPct(r.Ratio), fmtInterval(r.Low, r.High), fmtThreshold(r.Metric), r.Verdict)
			}
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("results: gate table: %w", err)
		}
	}
	if len(g.Failures)+len(g.Errors)+len(g.Notes) > 0 {
		fmt.Fprintln(&buf)
	}
	g.writeRemarks(&buf, "")
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("results: gate table: %w", err)
	}
	return nil
}

// WriteMarkdown writes gate.md: the verdict, the table, the remarks and each pair's runs.
func (g *GateResult) WriteMarkdown(w io.Writer) error {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Latency gate\n\n**%s**\n\n", g.Verdict)
	fmt.Fprintf(&buf, "- base: %s\n- candidate: %s\n", g.baseName(), orDash(g.Candidate))
	fmt.Fprintf(&buf, "- medians over the pairs; change: ratio of the medians; interval: %s Mann-Whitney interval of the ratio; ", fmtPct(g.Confidence))
	fmt.Fprintf(&buf, "a metric regresses when its change is beyond the threshold and its whole interval is on the worse side of 0%%\n")
	if g.ElapsedSeconds > 0 {
		fmt.Fprintf(&buf, "- the gate took %s\n", fmtElapsed(g.ElapsedSeconds))
	}
	fmt.Fprintln(&buf)
	if len(g.rows()) > 0 {
		var rows [][]string
		for _, a := range g.Arms {
			for _, r := range a.Rows {
				rows = append(rows, []string{a.Name, r.Metric.Label, fmtGateValue(r.Base, r.Metric.Unit),
					fmtGateValue(r.Candidate, r.Metric.Unit), fmtRatioPct(r.Ratio), fmtInterval(r.Low, r.High),
					fmtThreshold(r.Metric), string(r.Verdict)})
			}
		}
		mdTable(&buf, "llrrrrrl", []string{"workload", "metric", "base", "candidate", "change", "interval", "threshold", "verdict"}, rows)
	}
	if g.writeRemarks(&buf, "- ") {
		fmt.Fprintln(&buf)
	}
	if len(g.rows()) > 0 {
		fmt.Fprintf(&buf, "Each pair below is listed in the order it ran; the gate alternates the order from pair to pair.\n\n")
	}
	for _, a := range g.Arms {
		if len(a.Rows) == 0 {
			continue
		}
		fmt.Fprintf(&buf, "## %s: each pair\n\n", a.Name)
		header := []string{"pair"}
		for _, r := range a.Rows {
			header = append(header, r.Metric.Label+" ("+r.Metric.Unit+")")
		}
		var rows [][]string
		for i := range a.Pairs {
			base, cand := []string{fmt.Sprintf("%d base", i+1)}, []string{fmt.Sprintf("%d candidate", i+1)}
			for _, r := range a.Rows {
				base = append(base, fmtGateValue(r.BaseValues[i], ""))
				cand = append(cand, fmtGateValue(r.CandidateValues[i], ""))
			}
			if a.BaseFirst[i] {
				rows = append(rows, base, cand)
			} else {
				rows = append(rows, cand, base)
			}
		}
		mdTable(&buf, "l"+strings.Repeat("r", len(a.Rows)), header, rows)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("results: gate markdown: %w", err)
	}
	return nil
}

// writeRemarks writes the failures, errors and notes, one per line after prefix; it reports
// whether there were any.
func (g *GateResult) writeRemarks(buf *bytes.Buffer, prefix string) bool {
	wrote := false
	for _, l := range []struct {
		what  string
		lines []string
	}{{"FAILED", g.Failures}, {"COULD NOT RUN", g.Errors}, {"note", g.Notes}} {
		for _, s := range l.lines {
			fmt.Fprintf(buf, "%s%s: %s\n", prefix, l.what, s)
			wrote = true
		}
	}
	return wrote
}

// rows lists every row of every workload.
func (g *GateResult) rows() []GateRow {
	var out []GateRow
	for _, a := range g.Arms {
		out = append(out, a.Rows...)
	}
	return out
}

// fmtGateValue formats a median or a run's value with its unit.
func fmtGateValue(v float64, unit string) string {
	s := fmtMetric(v)
	if unit == "" || math.IsInf(v, 0) || math.IsNaN(v) {
		return s
	}
	if unit == "/s" {
		return s + "/s"
	}
	return s + " " + unit
}

// fmtRatioPct formats a ratio as a change: 1.213 -> "+21.3%".
func fmtRatioPct(ratio float64) string { return fmtDelta((ratio - 1) * 100) }

// fmtInterval formats an interval of ratios as changes: "[+15.1%, +27%]".
func fmtInterval(lo, hi float64) string {
	if math.IsNaN(lo) || math.IsNaN(hi) {
		return "n/a"
	}
	return "[" + fmtRatioPct(lo) + ", " + fmtRatioPct(hi) + "]"
}

// fmtThreshold formats a metric's threshold in the worse direction: "+10%", "-20%".
func fmtThreshold(m GateMetric) string {
	if m.Better == HigherIsBetter {
		return "-" + fmtNum(m.ThresholdPct, 1) + "%"
	}
	return "+" + fmtNum(m.ThresholdPct, 1) + "%"
}

// fmtElapsed formats seconds as "4m12s".
func fmtElapsed(s float64) string {
	return (time.Duration(math.Round(s)) * time.Second).String()
}

// gateJSON is gate.json. Non-finite numbers (an unreached milestone, a ratio without a
// base) are null.
type gateJSON struct {
	Schema         string          `json:"schema"`
	Verdict        string          `json:"verdict"`
	Code           int             `json:"code"`
	Pass           bool            `json:"pass"`
	BaseRef        string          `json:"base_ref"`
	BaseCommit     string          `json:"base_commit"`
	Candidate      string          `json:"candidate"`
	Confidence     float64         `json:"confidence"`
	ElapsedSeconds float64         `json:"elapsed_seconds"`
	Workloads      []gateArmJSON   `json:"workloads"`
	Failures       []string        `json:"failures"`
	Errors         []string        `json:"errors"`
	Notes          []string        `json:"notes"`
	Thresholds     []gateThreshold `json:"thresholds"`
}

type gateThreshold struct {
	Metric       string  `json:"metric"`
	Better       string  `json:"better"`
	ThresholdPct float64 `json:"threshold_pct"`
}

type gateArmJSON struct {
	Name    string        `json:"name"`
	Pairs   int           `json:"pairs"`
	Metrics []gateRowJSON `json:"metrics"`
}

type gateRowJSON struct {
	Metric          string     `json:"metric"`
	Label           string     `json:"label"`
	Unit            string     `json:"unit"`
	Better          string     `json:"better"`
	ThresholdPct    float64    `json:"threshold_pct"`
	Base            *float64   `json:"base"`
	Candidate       *float64   `json:"candidate"`
	ChangePct       *float64   `json:"change_pct"`
	LowPct          *float64   `json:"interval_low_pct"`
	HighPct         *float64   `json:"interval_high_pct"`
	Verdict         string     `json:"verdict"`
	BaseValues      []*float64 `json:"base_values"`
	CandidateValues []*float64 `json:"candidate_values"`
}

func (g *GateResult) jsonView() gateJSON {
	v := gateJSON{Schema: GateSchema, Verdict: g.Verdict, Code: g.Code, Pass: g.Code == 0,
		BaseRef: g.BaseRef, BaseCommit: g.BaseCommit, Candidate: g.Candidate, Confidence: g.Confidence,
		ElapsedSeconds: round(g.ElapsedSeconds, 1), Workloads: []gateArmJSON{},
		Failures: nonNil(g.Failures), Errors: nonNil(g.Errors), Notes: nonNil(g.Notes)}
	for _, m := range GateMetrics() {
		v.Thresholds = append(v.Thresholds, gateThreshold{m.Name, m.Better, m.ThresholdPct})
	}
	pct := func(ratio float64) *float64 { return finite(round((ratio-1)*100, 2)) }
	for _, a := range g.Arms {
		aj := gateArmJSON{Name: a.Name, Pairs: a.Pairs, Metrics: []gateRowJSON{}}
		for _, r := range a.Rows {
			rj := gateRowJSON{Metric: r.Metric.Name, Label: r.Metric.Label, Unit: r.Metric.Unit,
				Better: r.Metric.Better, ThresholdPct: r.Metric.ThresholdPct,
				Base: finite(round(r.Base, 3)), Candidate: finite(round(r.Candidate, 3)),
				ChangePct: pct(r.Ratio), LowPct: pct(r.Low), HighPct: pct(r.High), Verdict: string(r.Verdict)}
			for i := range r.BaseValues {
				rj.BaseValues = append(rj.BaseValues, finite(round(r.BaseValues[i], 3)))
				rj.CandidateValues = append(rj.CandidateValues, finite(round(r.CandidateValues[i], 3)))
			}
			aj.Metrics = append(aj.Metrics, rj)
		}
		v.Workloads = append(v.Workloads, aj)
	}
	return v
}

// finite returns &v, or nil for NaN and infinities (null in JSON).
func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
