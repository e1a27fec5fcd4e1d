package results

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// fmtCount formats an integer with thousands separators: 4000000 -> "4,000,000".
func fmtCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// fmtNum formats v with at most the given decimals (trailing zeros dropped) and thousands
// separators in the integer part.
func fmtNum(v float64, decimals int) string {
	if math.IsInf(v, 1) {
		return "inf"
	}
	if math.IsNaN(v) {
		return "n/a"
	}
	s := strconv.FormatFloat(round(v, decimals), 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	intPart, frac, hasFrac := strings.Cut(s, ".")
	n, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil { // beyond int64: leave as is
		return s
	}
	out := fmtCount(n)
	if n == 0 && strings.HasPrefix(intPart, "-") {
		out = "-0"
	}
	if hasFrac {
		out += "." + frac
	}
	return out
}

// fmtFloat formats a plain number with up to 3 decimals.
func fmtFloat(v float64) string { return fmtNum(v, 3) }

// fmtMs formats milliseconds with a precision that suits their size; Unreached reads
// "unreached".
func fmtMs(v float64) string {
	switch {
	case v == Unreached:
		return "unreached"
	case math.IsInf(v, 1):
		return "unreached"
	case math.Abs(v) < 10:
		return fmtNum(v, 3) + " ms"
	case math.Abs(v) < 1000:
		return fmtNum(v, 1) + " ms"
	}
	return fmtNum(v, 0) + " ms"
}

// fmtBytes formats a byte count in binary units.
func fmtBytes(n float64) string {
	const unit = 1024
	if n < unit {
		return fmtNum(n, 1) + " B"
	}
	for i, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v := n / math.Pow(unit, float64(i+1))
		if v < unit || i == 3 {
			return fmtNum(v, 1) + " " + u
		}
	}
	return fmtNum(n, 0) + " B"
}

// fmtPct formats a share (0..1) as a percentage.
func fmtPct(share float64) string { return fmtNum(share*100, 2) + "%" }

// percentileName names a percentile: 99 -> "p99", 99.9 -> "p99.9".
func percentileName(p float64) string { return "p" + strconv.FormatFloat(p, 'f', -1, 64) }

// mdTable writes a Markdown table; align holds 'l' or 'r' per column.
func mdTable(w io.Writer, align string, header []string, rows [][]string) {
	fmt.Fprintf(w, "| %s |\n|", strings.Join(header, " | "))
	for i := range header {
		if i < len(align) && align[i] == 'r' {
			fmt.Fprint(w, " ---: |")
		} else {
			fmt.Fprint(w, " --- |")
		}
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	fmt.Fprintln(w)
}
