// Package prom exposes the send pipeline's live figures as Prometheus metrics, for the
// people watching a send (a game-day rehearsal, the day itself) on a dashboard. It keeps
// its own registry, never the process-wide default one, and reads the pipeline through its
// public seams: a Transport wrapper in the send path, and collectors that read a worker's
// figures, the campaign records and the queues when Prometheus scrapes.
//
// Metrics (label provider is "apns" or "fcm"):
//
//	salvo_pushes_total{provider,outcome}      pushes answered: accepted, permanent, transient, not_tried
//	salvo_push_duration_seconds{provider}     from the Send of a push to its answer (histogram)
//	salvo_pushes_in_flight{provider}          pushes handed to the transport and not answered yet
//	salvo_send_accepted_total                 recipients accepted (the worker's figures, every send)
//	salvo_send_rejected_total{reason}         recipients rejected for good, by reason
//	salvo_send_failed_total{reason}           recipients given up on, by last reason
//	salvo_send_transient_total{reason}        transient answers (each retried or given up on)
//	salvo_send_retries_total                  tries beyond the first
//	salvo_send_unsent_total                   recipients released unsent by an abort
//	salvo_send_latency_seconds                accepted, from the GO press (histogram)
//	salvo_queue_messages{queue,state}         messages visible or in flight on a queue
//	salvo_workers_alive                       workers with a recent heartbeat (process mode)
//	salvo_campaigns{state}                    campaigns by state
//	salvo_campaign_workers_ready{campaign}    workers ready for a campaign not yet ended
//
// No label or value carries a device token, a key, or a bearer token.
//
// Usage:
//
//	m := prom.New()
//	transports = m.Transports(transports) // before the worker is built
//	m.WatchWorker(worker)
//	http.Handle("/metrics", m.Handler())
package prom

import (
	"context"
	"net/http"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/salvopush/salvo/sender"
)

// LatencyBuckets are the bucket bounds, in seconds, of the latency histograms: fine around
// the five-second target.
var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 6, 8, 10, 15, 30, 60, 120, 300}

// scrapeTimeout bounds what one scrape may spend reading records and queues.
const scrapeTimeout = 5 * time.Second

// Metrics is one process's metrics: a registry and what is registered on it. Its methods are
// safe for concurrent use.
type Metrics struct {
	reg         *prometheus.Registry
	pushes      *prometheus.CounterVec
	pushSeconds *prometheus.HistogramVec
	inFlight    *prometheus.GaugeVec
	queues      *queueCollector
}

// New returns metrics on a registry of their own, with the Go runtime's and the process's
// collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "salvo_pushes_total",
			Help: "Pushes answered, by provider and outcome (accepted, permanent, transient, not_tried)."},
			[]string{"provider", "outcome"}),
		pushSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "salvo_push_duration_seconds",
			Help: "Time from handing a push to the transport to its answer.", Buckets: latencyBuckets},
			[]string{"provider"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "salvo_pushes_in_flight",
			Help: "Pushes handed to the transport and not answered yet."}, []string{"provider"}),
		queues: &queueCollector{desc: prometheus.NewDesc("salvo_queue_messages",
			"Messages on a queue: visible (waiting) or in_flight (received, not deleted).", []string{"queue", "state"}, nil)},
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.pushes, m.pushSeconds, m.inFlight, m.queues)
	return m
}

// Registry is the metrics' own registry (for more collectors, or a test's Gather).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format (GET /metrics).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Provider names a platform's provider for the provider label.
func Provider(p sender.Platform) string {
	switch p {
	case sender.PlatformIOS:
		return "apns"
	case sender.PlatformAndroid:
		return "fcm"
	}
	return p.String()
}

// Transports returns set with every transport wrapped to count its pushes; closing a wrapped
// transport closes the one it wraps.
func (m *Metrics) Transports(set map[sender.Platform]sender.Transport) map[sender.Platform]sender.Transport {
	out := make(map[sender.Platform]sender.Transport, len(set))
	for p, t := range set {
		name := Provider(p)
		out[p] = &transport{inner: t,
			accepted:  m.pushes.WithLabelValues(name, "accepted"),
			permanent: m.pushes.WithLabelValues(name, "permanent"),
			transient: m.pushes.WithLabelValues(name, "transient"),
			notTried:  m.pushes.WithLabelValues(name, "not_tried"),
			seconds:   m.pushSeconds.WithLabelValues(name),
			inFlight:  m.inFlight.WithLabelValues(name)}
	}
	return out
}

// transport counts the pushes of the transport it wraps.
type transport struct {
	inner                                    sender.Transport
	accepted, permanent, transient, notTried prometheus.Counter
	seconds                                  prometheus.Observer
	inFlight                                 prometheus.Gauge
}

func (t *transport) Send(ctx context.Context, b *sender.Batch) error {
	n := float64(len(b.Tokens))
	t.inFlight.Add(n)
	start := time.Now()
	err := t.inner.Send(ctx, b)
	t.inFlight.Sub(n)
	if err != nil {
		t.notTried.Add(n)
		return err
	}
	var acc, perm, tr float64
	for i := range b.Results {
		r := &b.Results[i]
		switch r.Outcome {
		case sender.Accepted:
			acc++
		case sender.Permanent:
			perm++
		default:
			tr++
		}
		if !r.At.IsZero() {
			t.seconds.Observe(max(r.At.Sub(start), 0).Seconds())
		}
	}
	t.accepted.Add(acc)
	t.permanent.Add(perm)
	t.transient.Add(tr)
	return nil
}

func (t *transport) Close() error { return t.inner.Close() }

// WatchWorker reports w's figures, merged over its sends, at every scrape.
func (m *Metrics) WatchWorker(w *sender.Worker) { m.reg.MustRegister(newWorkerCollector(w.Stats)) }

func newWorkerCollector(stats func() *sender.SendStats) *workerCollector {
	return &workerCollector{stats: stats,
		accepted:  prometheus.NewDesc("salvo_send_accepted_total", "Recipients accepted by the provider.", nil, nil),
		rejected:  prometheus.NewDesc("salvo_send_rejected_total", "Recipients rejected for good, by reason.", []string{"reason"}, nil),
		failed:    prometheus.NewDesc("salvo_send_failed_total", "Recipients given up on, by last reason.", []string{"reason"}, nil),
		transient: prometheus.NewDesc("salvo_send_transient_total", "Transient answers (each retried or given up on), by reason.", []string{"reason"}, nil),
		retries:   prometheus.NewDesc("salvo_send_retries_total", "Tries beyond the first.", nil, nil),
		unsent:    prometheus.NewDesc("salvo_send_unsent_total", "Recipients released unsent because their campaign was aborted.", nil, nil),
		latency:   prometheus.NewDesc("salvo_send_latency_seconds", "Accepted notifications, from the GO press to acceptance.", nil, nil),
	}
}

// workerCollector turns a worker's SendStats into metrics.
type workerCollector struct {
	stats                                                           func() *sender.SendStats
	accepted, rejected, failed, transient, retries, unsent, latency *prometheus.Desc
}

func (c *workerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.accepted, c.rejected, c.failed, c.transient, c.retries, c.unsent, c.latency} {
		ch <- d
	}
}

func (c *workerCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	ch <- prometheus.MustNewConstMetric(c.accepted, prometheus.CounterValue, float64(st.Accepted))
	ch <- prometheus.MustNewConstMetric(c.retries, prometheus.CounterValue, float64(st.Retries))
	ch <- prometheus.MustNewConstMetric(c.unsent, prometheus.CounterValue, float64(st.Unsent))
	for desc, byReason := range map[*prometheus.Desc]map[string]int64{c.rejected: st.Rejected, c.failed: st.Failed, c.transient: st.Transient} {
		for reason, n := range byReason {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(n), reason)
		}
	}
	count, sum, buckets := histogramOf(st.Latency)
	ch <- prometheus.MustNewConstHistogram(c.latency, count, sum, buckets)
}

// histogramOf turns a latency HdrHistogram (microseconds) into a Prometheus histogram in
// seconds over latencyBuckets: cumulative counts per bound (a bar of equivalent values counts
// under the bound that holds its top) and the sum from each bar's middle.
func histogramOf(h *hdrhistogram.Histogram) (count uint64, sum float64, buckets map[float64]uint64) {
	per := make([]uint64, len(latencyBuckets))
	for _, bar := range h.Distribution() {
		if bar.Count <= 0 {
			continue
		}
		n := uint64(bar.Count)
		count += n
		sum += float64(bar.Count) * float64(bar.From+bar.To) / 2e6
		top := float64(bar.To) / 1e6
		for i, ub := range latencyBuckets {
			if top <= ub {
				per[i] += n
				break
			}
		}
	}
	buckets = make(map[float64]uint64, len(latencyBuckets))
	var cum uint64
	for i, ub := range latencyBuckets {
		cum += per[i]
		buckets[ub] = cum
	}
	return count, sum, buckets
}

// WatchQueue reports a queue's depth at every scrape; depth is called with a bounded
// context (memqueue's Stats or sqs's Depth fit, through a small closure).
func (m *Metrics) WatchQueue(name string, depth func(ctx context.Context) (visible, inFlight int64, err error)) {
	m.queues.add(name, depth)
}

// WatchService reports, at every scrape, the live workers (heartbeats), the campaigns by
// state, and how many workers are ready for each campaign that has not ended.
func (m *Metrics) WatchService(svc *sender.Service, records sender.RecordStore) {
	m.reg.MustRegister(newServiceCollector(svc, records))
}

func newServiceCollector(svc *sender.Service, records sender.RecordStore) *serviceCollector {
	return &serviceCollector{svc: svc, records: records,
		alive:     prometheus.NewDesc("salvo_workers_alive", "Workers whose heartbeat is recent.", nil, nil),
		campaigns: prometheus.NewDesc("salvo_campaigns", "Campaigns by state.", []string{"state"}, nil),
		ready:     prometheus.NewDesc("salvo_campaign_workers_ready", "Send workers ready for a campaign that has not ended.", []string{"campaign"}, nil),
	}
}
