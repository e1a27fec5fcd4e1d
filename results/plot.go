package results

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/salvopush/salvo/sender/metrics"
)

// Plot colours.
const (
	colInk     = "#222222"
	colGrid    = "#e6e6e6"
	colAxis    = "#888888"
	colCurve   = "#1f5fa8"
	colTarget  = "#c62828"
	colP95     = "#ef6c00"
	colP99     = "#6a1b9a"
	colAccept  = "#90b4dc"
	colReject  = "#e57373"
	fontFamily = "Helvetica, Arial, sans-serif"
)

// svg builds an SVG document with the few shapes the plots need.
type svg struct {
	b strings.Builder
}

func newSVG(width, height int, title string) *svg {
	s := &svg{}
	fmt.Fprintf(&s.b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="%s" font-size="12">`+"\n",
		width, height, width, height, fontFamily)
	fmt.Fprintf(&s.b, "<title>%s</title>\n", xmlEscape(title))
	s.rect(0, 0, float64(width), float64(height), "#ffffff", "")
	return s
}

func (s *svg) line(x1, y1, x2, y2 float64, stroke string, width float64, dash string) {
	fmt.Fprintf(&s.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%g"%s/>`+"\n",
		x1, y1, x2, y2, stroke, width, dashAttr(dash))
}

func (s *svg) polyline(pts [][2]float64, stroke string, width float64) {
	if len(pts) == 0 {
		return
	}
	fmt.Fprintf(&s.b, `<polyline fill="none" stroke="%s" stroke-width="%g" stroke-linejoin="round" points="`, stroke, width)
	for i, p := range pts {
		if i > 0 {
			s.b.WriteByte(' ')
		}
		fmt.Fprintf(&s.b, "%.1f,%.1f", p[0], p[1])
	}
	s.b.WriteString("\"/>\n")
}

func (s *svg) rect(x, y, w, h float64, fill, stroke string) {
	st := ""
	if stroke != "" {
		st = fmt.Sprintf(` stroke="%s"`, stroke)
	}
	fmt.Fprintf(&s.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"%s/>`+"\n", x, y, w, h, fill, st)
}

func (s *svg) circle(x, y, r float64, fill string) {
	fmt.Fprintf(&s.b, `<circle cx="%.1f" cy="%.1f" r="%g" fill="%s" stroke="#ffffff" stroke-width="1"/>`+"\n", x, y, r, fill)
}

// text writes a label; anchor is "start", "middle" or "end"; size 0 is the default size.
func (s *svg) text(x, y float64, anchor string, size int, fill, weight, text string) {
	attrs := ""
	if size > 0 {
		attrs += fmt.Sprintf(` font-size="%d"`, size)
	}
	if weight != "" {
		attrs += fmt.Sprintf(` font-weight="%s"`, weight)
	}
	fmt.Fprintf(&s.b, `<text x="%.1f" y="%.1f" text-anchor="%s" fill="%s"%s>%s</text>`+"\n",
		x, y, anchor, fill, attrs, xmlEscape(text))
}

// vtext writes a label rotated to read bottom-up, centred on (x, y).
func (s *svg) vtext(x, y float64, text string) {
	fmt.Fprintf(&s.b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="%s" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n",
		x, y, colInk, x, y, xmlEscape(text))
}

func (s *svg) bytes() []byte {
	s.b.WriteString("</svg>\n")
	return []byte(s.b.String())
}

func dashAttr(dash string) string {
	if dash == "" {
		return ""
	}
	return fmt.Sprintf(` stroke-dasharray="%s"`, dash)
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// scale maps a data interval onto a pixel interval.
type scale struct{ d0, d1, p0, p1 float64 }

func (c scale) at(v float64) float64 {
	if c.d1 == c.d0 {
		return c.p0
	}
	return c.p0 + (v-c.d0)/(c.d1-c.d0)*(c.p1-c.p0)
}

// niceTicks returns about n evenly spaced round ticks (1, 2 or 5 times a power of ten) from 0
// up to the first tick at or above hi.
func niceTicks(hi float64, n int) []float64 {
	if hi <= 0 || math.IsNaN(hi) || math.IsInf(hi, 0) {
		hi = 1
	}
	raw := hi / float64(max(n, 1))
	mag := math.Pow10(int(math.Floor(math.Log10(raw))))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var ticks []float64
	for i := 0; ; i++ {
		v := float64(i) * step
		ticks = append(ticks, v)
		if v >= hi-step*1e-9 {
			break
		}
	}
	return ticks
}

// Plot layout shared by both plots.
const (
	plotW     = 860
	plotLeft  = 80.0
	plotRight = 820.0
)

// deliveredSVG plots the share of the deliverable audience accepted over time, with the
// target line, the p95/p99 milestones and, below, accepted and rejected per second from
// the timeline (when there is one).
func deliveredSVG(r *Report, h *hdrhistogram.Histogram, tl *metrics.Timeline) []byte {
	const (
		height    = 600
		mainTop   = 70.0
		mainBot   = 380.0
		rateTop   = 430.0
		rateBot   = 540.0
		axisLabel = 585.0
	)
	denom := float64(deliverableOf(r))
	if denom <= 0 {
		denom = float64(max(h.TotalCount(), 1))
	}
	targetS := r.Target.Seconds
	lastS := float64(h.Max()) / 1e6
	if tl != nil {
		lastS = max(lastS, (time.Duration(tl.Len()) * tl.Step()).Seconds())
	}
	var events []Event
	if r.Campaign != nil {
		events = r.Campaign.Events
	}
	for _, e := range events {
		lastS = max(lastS, e.AtMs/1000)
	}
	xt := niceTicks(max(targetS*1.1, lastS*1.02, 1), 10)
	x := scale{0, xt[len(xt)-1], plotLeft, plotRight}
	y := scale{0, 100, mainBot, mainTop}

	s := newSVG(plotW, height, "Share of the deliverable audience accepted over time")
	s.text(plotLeft, 28, "start", 16, colInk, "bold", fmt.Sprintf("%s: share of the deliverable audience accepted", r.Scenario))
	s.text(plotLeft, 48, "start", 12, colAxis, "", fmt.Sprintf("%s deliverable recipients; %s accepted; time from the GO press",
		fmtCount(int64(denom)), fmtCount(r.Delivery.Accepted)))

	for _, v := range []float64{0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100} {
		s.line(plotLeft, y.at(v), plotRight, y.at(v), colGrid, 1, "")
		s.text(plotLeft-8, y.at(v)+4, "end", 0, colInk, "", fmt.Sprintf("%g%%", v))
	}
	for _, v := range xt {
		s.line(x.at(v), mainTop, x.at(v), mainBot, colGrid, 1, "")
		s.line(x.at(v), rateTop, x.at(v), rateBot, colGrid, 1, "")
		s.text(x.at(v), rateBot+18, "middle", 0, colInk, "", fmtNum(v, 3)+" s")
	}
	s.line(plotLeft, mainBot, plotRight, mainBot, colAxis, 1, "")
	s.line(plotLeft, mainTop, plotLeft, mainBot, colAxis, 1, "")
	s.vtext(24, (mainTop+mainBot)/2, "accepted, % of deliverable audience")
	s.text((plotLeft+plotRight)/2, axisLabel, "middle", 0, colInk, "", "seconds since GO")

	pts := curvePoints(h, denom, x, y)
	s.polyline(pts, colCurve, 2.5)

	// Target line.
	tx := x.at(targetS)
	s.line(tx, mainTop-6, tx, mainBot, colTarget, 2, "6,4")
	s.line(tx, rateTop, tx, rateBot, colTarget, 1.5, "6,4")
	s.text(tx+6, mainBot-8, "start", 12, colTarget, "bold", fmtFloat(targetS)+" s target")

	// Milestones: guides to each marker, labels stacked right of the later one, under 100%.
	labelX := plotLeft
	for _, v := range []float64{r.Milestones.P95, r.Milestones.P99} {
		if v != Unreached {
			labelX = max(labelX, x.at(v/1000)+10)
		}
	}
	for i, m := range []struct {
		name string
		pct  float64
		v    float64
		col  string
	}{
		{"p99", 99, r.Milestones.P99, colP99},
		{"p95", 95, r.Milestones.P95, colP95},
	} {
		my := y.at(m.pct)
		if m.v == Unreached {
			s.line(plotLeft, my, plotRight, my, m.col, 1, "2,3")
			s.text(plotRight-4, y.at(80)+float64(i)*16, "end", 12, m.col, "bold", m.name+" never reached")
			continue
		}
		mx := x.at(m.v / 1000)
		s.line(plotLeft, my, mx, my, m.col, 1, "2,3")
		s.line(mx, my, mx, mainBot, m.col, 1, "2,3")
		s.circle(mx, my, 5, m.col)
		s.text(labelX, y.at(99)+24+float64(i)*16, "start", 12, m.col, "bold", fmt.Sprintf("%s at %s", m.name, fmtMs(m.v)))
	}

	// What the run did meanwhile (a kill, a restart, a redrive): a numbered line each across
	// both panels, named in report.md's event table.
	for i, e := range events {
		ex := x.at(e.AtMs / 1000)
		s.line(ex, mainTop, ex, rateBot, colAxis, 1, "1,3")
		s.text(ex+3, mainTop+12+float64(i%4)*14, "start", 11, colAxis, "", fmt.Sprintf("%d", i+1))
	}

	// Rate panel.
	s.line(plotLeft, rateBot, plotRight, rateBot, colAxis, 1, "")
	s.line(plotLeft, rateTop, plotLeft, rateBot, colAxis, 1, "")
	if tl == nil || tl.Len() == 0 {
		s.text((plotLeft+plotRight)/2, (rateTop+rateBot)/2, "middle", 12, colAxis, "", "no timeline")
		return s.bytes()
	}
	stepS := tl.Step().Seconds()
	var peak float64
	for i := 0; i < tl.Len(); i++ {
		a, rj := tl.At(i)
		peak = max(peak, float64(a+rj)/stepS)
	}
	yt := niceTicks(max(peak, 1), 2)
	yr := scale{0, yt[len(yt)-1], rateBot, rateTop}
	for _, v := range yt {
		s.line(plotLeft, yr.at(v), plotRight, yr.at(v), colGrid, 1, "")
		s.text(plotLeft-8, yr.at(v)+4, "end", 0, colInk, "", fmtSI(v))
	}
	s.text(plotLeft, rateTop-10, "start", 12, colInk, "", fmt.Sprintf("per second, in %s steps:", tl.Step()))
	s.rect(plotLeft+220, rateTop-20, 10, 10, colAccept, "")
	s.text(plotLeft+234, rateTop-10, "start", 12, colInk, "", "accepted")
	s.rect(plotLeft+300, rateTop-20, 10, 10, colReject, "")
	s.text(plotLeft+314, rateTop-10, "start", 12, colInk, "", "rejected")
	for i := 0; i < tl.Len(); i++ {
		a, rj := tl.At(i)
		if a == 0 && rj == 0 {
			continue
		}
		x0, x1 := x.at(float64(i)*stepS), x.at(float64(i+1)*stepS)
		w := max(x1-x0-0.5, 0.5)
		ya := yr.at(float64(a) / stepS)
		yrj := yr.at(float64(a+rj) / stepS)
		s.rect(x0, ya, w, rateBot-ya, colAccept, "")
		if rj > 0 {
			s.rect(x0, yrj, w, ya-yrj, colReject, "")
		}
	}
	return s.bytes()
}

// latencySVG plots latency by percentile on HdrHistogram's log scale of 1/(1-p), with the
// target as a horizontal line when it fits the scale.
func latencySVG(r *Report, h *hdrhistogram.Histogram) []byte {
	const (
		height = 480
		top    = 70.0
		bot    = 400.0
	)
	s := newSVG(plotW, height, "Latency from the GO press by percentile")
	s.text(plotLeft, 28, "start", 16, colInk, "bold", fmt.Sprintf("%s: latency from the GO press by percentile", r.Scenario))
	l := r.Latency
	s.text(plotLeft, 48, "start", 12, colAxis, "", fmt.Sprintf("%s accepted notifications; p50 %s, p95 %s, p99 %s, p99.9 %s, max %s",
		fmtCount(h.TotalCount()), fmtMs(l.P50), fmtMs(l.P95), fmtMs(l.P99), fmtMs(l.P999), fmtMs(l.Max)))

	decades := min(max(int(math.Ceil(math.Log10(float64(max(h.TotalCount(), 1))))), 2), 6)
	x := scale{0, float64(decades), plotLeft, plotRight}
	maxMs := float64(h.Max()) / 1000
	targetMs := r.Target.Seconds * 1000
	showTarget := targetMs > 0 && targetMs <= max(maxMs, 1)*1.5
	hi := maxMs * 1.05
	if showTarget {
		hi = max(hi, targetMs*1.05)
	}
	yt := niceTicks(max(hi, 1), 6)
	y := scale{0, yt[len(yt)-1], bot, top}

	for _, v := range yt {
		s.line(plotLeft, y.at(v), plotRight, y.at(v), colGrid, 1, "")
		s.text(plotLeft-8, y.at(v)+4, "end", 0, colInk, "", fmtNum(v, 3))
	}
	for d := 0; d <= decades; d++ {
		s.line(x.at(float64(d)), top, x.at(float64(d)), bot, colGrid, 1, "")
		s.text(x.at(float64(d)), bot+18, "middle", 0, colInk, "", decadeLabel(d))
	}
	s.line(plotLeft, bot, plotRight, bot, colAxis, 1, "")
	s.line(plotLeft, top, plotLeft, bot, colAxis, 1, "")
	s.vtext(24, (top+bot)/2, "latency (ms)")
	s.text((plotLeft+plotRight)/2, bot+45, "middle", 0, colInk, "", "percentile (log scale of 1/(1-p))")

	if showTarget {
		s.line(plotLeft, y.at(targetMs), plotRight, y.at(targetMs), colTarget, 2, "6,4")
		s.text(plotRight-4, y.at(targetMs)-6, "end", 12, colTarget, "bold", fmtFloat(r.Target.Seconds)+" s target")
	}

	var pts [][2]float64
	for _, b := range h.CumulativeDistributionWithTicks(10) {
		if b.Quantile >= 100 {
			break
		}
		lx := math.Log10(1 / (1 - b.Quantile/100))
		if lx > float64(decades) {
			break
		}
		pts = append(pts, [2]float64{x.at(lx), y.at(float64(b.ValueAt) / 1000)})
	}
	s.polyline(pts, colCurve, 2.5)
	for _, m := range []struct {
		name string
		p, v float64
		col  string
	}{
		{"p95", 95, l.P95, colP95},
		{"p99", 99, l.P99, colP99},
	} {
		lx := math.Log10(1 / (1 - m.p/100))
		if h.TotalCount() == 0 || lx > float64(decades) {
			continue
		}
		s.circle(x.at(lx), y.at(m.v), 5, m.col)
		// The curve only rises: below-right of p95 and above-left of p99 stay clear of it.
		if m.name == "p95" {
			s.text(x.at(lx)+8, y.at(m.v)+20, "start", 12, m.col, "bold", fmt.Sprintf("%s %s", m.name, fmtMs(m.v)))
		} else {
			s.text(x.at(lx)-8, y.at(m.v)-12, "end", 12, m.col, "bold", fmt.Sprintf("%s %s", m.name, fmtMs(m.v)))
		}
	}
	return s.bytes()
}

// fmtSI formats a rate compactly: 850000 -> "850k".
func fmtSI(v float64) string {
	switch {
	case v >= 1e6:
		return fmtNum(v/1e6, 2) + "M"
	case v >= 1e3:
		return fmtNum(v/1e3, 1) + "k"
	}
	return fmtNum(v, 1)
}

// decadeLabel names the percentile at 1/(1-p) = 10^d: 0 -> "0%", 1 -> "90%", 3 -> "99.9%".
func decadeLabel(d int) string {
	if d <= 0 {
		return "0%"
	}
	return strconv.FormatFloat(100-math.Pow10(2-d), 'f', max(d-2, 0), 64) + "%"
}

// armCurve is one arm's delivered curve in the summary plot.
type armCurve struct {
	name   string
	report *Report
	hist   *hdrhistogram.Histogram
}

// summarySVG overlays the delivered curves of several arms, with the first arm's target.
func summarySVG(curves []armCurve) []byte {
	const (
		height = 480
		top    = 70.0
		bot    = 400.0
	)
	palette := []string{"#1f5fa8", "#ef6c00", "#2e7d32", "#6a1b9a", "#c2185b", "#00838f", "#5d4037", "#455a64"}
	s := newSVG(plotW, height, "Share of the deliverable audience accepted over time, per arm")
	s.text(plotLeft, 28, "start", 16, colInk, "bold", "Share of the deliverable audience accepted, per arm")
	s.text(plotLeft, 48, "start", 12, colAxis, "", "time from the GO press")
	if len(curves) == 0 {
		s.text((plotLeft+plotRight)/2, (top+bot)/2, "middle", 12, colAxis, "", "no arm has a latency.hlog")
		return s.bytes()
	}
	targetS := curves[0].report.Target.Seconds
	lastS := targetS * 1.1
	for _, c := range curves {
		lastS = max(lastS, float64(c.hist.Max())/1e6*1.02)
	}
	xt := niceTicks(max(lastS, 1), 10)
	x := scale{0, xt[len(xt)-1], plotLeft, plotRight}
	y := scale{0, 100, bot, top}
	for _, v := range []float64{0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100} {
		s.line(plotLeft, y.at(v), plotRight, y.at(v), colGrid, 1, "")
		s.text(plotLeft-8, y.at(v)+4, "end", 0, colInk, "", fmt.Sprintf("%g%%", v))
	}
	for _, v := range xt {
		s.line(x.at(v), top, x.at(v), bot, colGrid, 1, "")
		s.text(x.at(v), bot+18, "middle", 0, colInk, "", fmtNum(v, 3)+" s")
	}
	s.line(plotLeft, bot, plotRight, bot, colAxis, 1, "")
	s.line(plotLeft, top, plotLeft, bot, colAxis, 1, "")
	s.vtext(24, (top+bot)/2, "accepted, % of deliverable audience")
	s.text((plotLeft+plotRight)/2, bot+45, "middle", 0, colInk, "", "seconds since GO")
	tx := x.at(targetS)
	s.line(tx, top-6, tx, bot, colTarget, 2, "6,4")
	s.text(tx+6, bot-8, "start", 12, colTarget, "bold", fmtFloat(targetS)+" s target")
	legendTop := bot - 30 - 18*float64(len(curves))
	s.rect(plotRight-190, legendTop-16, 180, 18*float64(len(curves))+10, "#ffffff", colGrid)
	for i, c := range curves {
		col := palette[i%len(palette)]
		s.polyline(curvePoints(c.hist, float64(deliverableOf(c.report)), x, y), col, 2)
		ly := legendTop + float64(i)*18
		s.line(plotRight-180, ly-4, plotRight-160, ly-4, col, 3, "")
		s.text(plotRight-154, ly, "start", 12, colInk, "", c.name)
	}
	return s.bytes()
}

// curvePoints is the cumulative share of denom accepted at the top of each histogram
// bucket, thinned to about one point per half pixel.
func curvePoints(h *hdrhistogram.Histogram, denom float64, x, y scale) [][2]float64 {
	if denom <= 0 {
		denom = float64(max(h.TotalCount(), 1))
	}
	pts := [][2]float64{{x.at(0), y.at(0)}}
	var cum int64
	for _, b := range h.Distribution() {
		if b.Count == 0 {
			continue
		}
		cum += b.Count
		p := [2]float64{x.at(float64(b.To) / 1e6), y.at(min(100*float64(cum)/denom, 100))}
		if last := pts[len(pts)-1]; p[0]-last[0] < 0.5 && len(pts) > 1 {
			pts[len(pts)-1] = p
			continue
		}
		pts = append(pts, p)
	}
	return pts
}
