package prom

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/metrics"
)

// answering answers each push with the outcome its token names ("ok", "gone", "busy"), or
// fails the whole Send when err is set.
type answering struct{ err error }

func (a answering) Send(_ context.Context, b *sender.Batch) error {
	if a.err != nil {
		return a.err
	}
	for i, tok := range b.Tokens {
		r := sender.Result{Outcome: sender.Accepted, At: time.Now()}
		switch string(tok) {
		case "gone":
			r.Outcome, r.Reason = sender.Permanent, "Unregistered"
		case "busy":
			r.Outcome, r.Reason = sender.Transient, "TooManyRequests"
		}
		b.Results[i] = r
	}
	return nil
}
func (answering) Close() error { return nil }

func batch(p sender.Platform, toks ...string) *sender.Batch {
	b := &sender.Batch{Platform: p, Results: make([]sender.Result, len(toks))}
	for _, t := range toks {
		b.Tokens = append(b.Tokens, []byte(t))
	}
	return b
}

// TestTransportCounts: every answered push is counted once under its provider and outcome,
// a Send that could not try counts its pushes not_tried, and nothing stays in flight.
func TestTransportCounts(t *testing.T) {
	t.Parallel()
	m := New()
	set := m.Transports(map[sender.Platform]sender.Transport{sender.PlatformIOS: answering{},
		sender.PlatformAndroid: answering{err: errors.New("no access token")}})
	ctx := context.Background()
	if err := set[sender.PlatformIOS].Send(ctx, batch(sender.PlatformIOS, "ok", "ok", "gone", "busy")); err != nil {
		t.Fatal(err)
	}
	if err := set[sender.PlatformAndroid].Send(ctx, batch(sender.PlatformAndroid, "ok", "ok")); err == nil {
		t.Fatal("the wrapped transport's error was lost")
	}
	tests := []struct {
		provider, outcome string
		want              float64
	}{
		{"apns", "accepted", 2},  // two accepted
		{"apns", "permanent", 1}, // one rejected for good
		{"apns", "transient", 1}, // one to retry
		{"fcm", "not_tried", 2},  // the Send failed as a whole
		{"fcm", "accepted", 0},   // nothing counted accepted for it
	}
	for _, tc := range tests {
		if got := testutil.ToFloat64(m.pushes.WithLabelValues(tc.provider, tc.outcome)); got != tc.want {
			t.Errorf("pushes{%s,%s} = %v, want %v", tc.provider, tc.outcome, got, tc.want)
		}
	}
	for _, p := range []string{"apns", "fcm"} {
		if got := testutil.ToFloat64(m.inFlight.WithLabelValues(p)); got != 0 {
			t.Errorf("in flight %s = %v after every Send returned", p, got)
		}
	}
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	durations := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "salvo_push_duration_seconds" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			durations[mt.GetLabel()[0].GetValue()] = mt.GetHistogram().GetSampleCount()
		}
	}
	if durations["apns"] != 4 || durations["fcm"] != 0 {
		t.Errorf("push durations observed %v, want apns 4 (every answer) and fcm 0 (none)", durations)
	}
}

// TestHistogramOf: the Prometheus histogram holds every sample, each under the first bound
// at or above it.
func TestHistogramOf(t *testing.T) {
	t.Parallel()
	h := metrics.NewLatencyHistogram()
	for _, d := range []time.Duration{3 * time.Millisecond, 40 * time.Millisecond, 900 * time.Millisecond, 4 * time.Second, 4500 * time.Millisecond, 7 * time.Minute} {
		metrics.RecordLatency(h, d)
	}
	count, sum, buckets := histogramOf(h)
	if count != 6 {
		t.Fatalf("count %d, want 6", count)
	}
	want := map[float64]uint64{0.005: 1, 0.05: 2, 1: 3, 4: 3, 5: 5, 300: 5}
	for ub, n := range want {
		if buckets[ub] != n {
			t.Errorf("bucket le=%v holds %d, want %d", ub, buckets[ub], n)
		}
	}
	if exact := 0.003 + 0.04 + 0.9 + 4 + 4.5 + 420; sum < exact*0.99 || sum > exact*1.01 {
		t.Errorf("sum %v, want about %v", sum, exact)
	}
}

// TestHandlerServesOwnRegistry: the handler serves the metrics' own series (and the queue
// depth a watcher reports), not the process-wide default registry's.
func TestHandlerServesOwnRegistry(t *testing.T) {
	t.Parallel()
	m := New()
	m.WatchQueue("batches", func(context.Context) (int64, int64, error) { return 7, 2, nil })
	set := m.Transports(map[sender.Platform]sender.Transport{sender.PlatformIOS: answering{}})
	if err := set[sender.PlatformIOS].Send(context.Background(), batch(sender.PlatformIOS, "ok")); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`salvo_pushes_total{outcome="accepted",provider="apns"} 1`,
		`salvo_queue_messages{queue="batches",state="visible"} 7`,
		`salvo_queue_messages{queue="batches",state="in_flight"} 2`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestDashboardQueriesKnownMetrics: every salvo_ metric the Grafana dashboard in
// docs/grafana queries is one this package exports (a renamed metric would leave a panel
// empty on the day).
func TestDashboardQueriesKnownMetrics(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "grafana", "salvo-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	m := New()
	ch := make(chan *prometheus.Desc, 64)
	for _, c := range []prometheus.Collector{m.pushes, m.pushSeconds, m.inFlight, m.queues, newWorkerCollector(nil), newServiceCollector(nil, nil)} {
		c.Describe(ch)
	}
	close(ch)
	descName := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	for d := range ch {
		known[descName.FindStringSubmatch(d.String())[1]] = true
	}
	used := regexp.MustCompile(`salvo_[a-z_]+`)
	queries := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, name := range used.FindAllString(tg.Expr, -1) {
				queries++
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
				if !known[base] {
					t.Errorf("panel %q queries %s, which the package does not export", p.Title, name)
				}
			}
		}
	}
	if queries < 10 {
		t.Fatalf("the dashboard queries %d salvo metrics: the check would check little", queries)
	}
}
