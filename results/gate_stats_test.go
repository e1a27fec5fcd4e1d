package results

import (
	"math"
	"testing"
)

// TestMannWhitneyRank checks the interval's rank against published critical values of the
// Mann-Whitney U test (two-tailed): k is the critical value plus one.
func TestMannWhitneyRank(t *testing.T) {
	t.Parallel()
	tests := []struct {
		m, n  int
		alpha float64
		want  int
	}{
		// samples too small for the confidence: P(U = 0) = 1/20 > 0.025
		{3, 3, 0.05, 0},
		// critical value 2 (P(U <= 2) = 4/252)
		{5, 5, 0.05, 3},
		// critical value 0 at 1%
		{5, 5, 0.01, 1},
		// critical values 13 and 7
		{8, 8, 0.05, 14},
		{8, 8, 0.01, 8},
		// critical values 23 and 16
		{10, 10, 0.05, 24},
		{10, 10, 0.01, 17},
		// unequal sizes: critical value 10 for 6 and 9 at 5%
		{6, 9, 0.05, 11},
		// critical value 127 for 20 and 20 at 5%
		{20, 20, 0.05, 128},
	}
	for _, tt := range tests {
		if got := mannWhitneyRank(tt.m, tt.n, tt.alpha); got != tt.want {
			t.Errorf("mannWhitneyRank(%d, %d, %g) = %d, want %d", tt.m, tt.n, tt.alpha, got, tt.want)
		}
	}
}

// TestMannWhitneyCounts checks the null distribution: C(m+n, m) orderings in all,
// symmetric around m*n/2.
func TestMannWhitneyCounts(t *testing.T) {
	t.Parallel()
	for _, sz := range [][2]int{{1, 1}, {3, 4}, {7, 7}, {12, 9}} {
		m, n := sz[0], sz[1]
		c := mannWhitneyCounts(m, n)
		if len(c) != m*n+1 {
			t.Fatalf("%d,%d: %d values, want %d", m, n, len(c), m*n+1)
		}
		total := 0.0
		for u := range c {
			total += c[u]
			if c[u] != c[m*n-u] {
				t.Errorf("%d,%d: count(%d) = %g but count(%d) = %g", m, n, u, c[u], m*n-u, c[m*n-u])
			}
		}
		want := 1.0
		for i := 1; i <= m; i++ {
			want = want * float64(n+i) / float64(i)
		}
		if math.Abs(total-want) > 1e-6*want {
			t.Errorf("%d,%d: %g orderings, want C(%d, %d) = %g", m, n, total, m+n, m, want)
		}
	}
}

// TestRatioInterval: two samples that differ by a known factor give an interval around it;
// identical samples give one around 1.
func TestRatioInterval(t *testing.T) {
	t.Parallel()
	base := []float64{100, 104, 97, 110, 99, 102, 95, 108, 101, 103}
	slower := make([]float64, len(base))
	for i, v := range base {
		slower[i] = v * 1.5
	}
	if lo, hi := ratioInterval(base, slower, 0.99); !(lo > 1.3 && lo <= 1.5 && hi >= 1.5 && hi < 1.7) {
		t.Errorf("1.5x slower: interval [%g, %g], want around 1.5", lo, hi)
	}
	if lo, hi := ratioInterval(base, base, 0.99); !(lo < 1 && hi > 1) {
		t.Errorf("same values: interval [%g, %g] excludes 1", lo, hi)
	}
	if lo, hi := ratioInterval(base[:3], base[:3], 0.99); lo != 0 || !math.IsInf(hi, 1) {
		t.Errorf("3 runs a side: interval [%g, %g], want (0, +Inf)", lo, hi)
	}
}
