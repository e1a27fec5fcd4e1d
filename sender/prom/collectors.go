package prom

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/salvopush/salvo/sender"
)

// queueCollector reports the depth of the watched queues.
type queueCollector struct {
	desc *prometheus.Desc

	mu     sync.Mutex
	names  []string
	depths []func(context.Context) (int64, int64, error)
}

func (c *queueCollector) add(name string, depth func(context.Context) (int64, int64, error)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.names = append(c.names, name)
	c.depths = append(c.depths, depth)
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	names, depths := c.names, c.depths
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	for i, depth := range depths {
		visible, inFlight, err := depth(ctx)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.desc, err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(visible), names[i], "visible")
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(inFlight), names[i], "in_flight")
	}
}

// serviceCollector reports workers, campaigns and readiness from the API's records.
type serviceCollector struct {
	svc                     *sender.Service
	records                 sender.RecordStore
	alive, campaigns, ready *prometheus.Desc
}

func (c *serviceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.alive
	ch <- c.campaigns
	ch <- c.ready
}

func (c *serviceCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	if ws, err := c.svc.Workers(ctx); err != nil {
		ch <- prometheus.NewInvalidMetric(c.alive, err)
	} else {
		alive := 0
		for _, w := range ws {
			if w.Alive {
				alive++
			}
		}
		ch <- prometheus.MustNewConstMetric(c.alive, prometheus.GaugeValue, float64(alive))
	}
	recs, err := sender.ListCampaigns(ctx, c.records)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.campaigns, err)
		return
	}
	byState := map[string]int{}
	for _, r := range recs {
		byState[r.State]++
		if r.Terminal() || r.Prepare == nil {
			continue
		}
		ready, err := c.records.List(ctx, sender.ReadinessPrefix(r.ID))
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.ready, err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, float64(len(ready)), r.ID)
	}
	for state, n := range byState {
		ch <- prometheus.MustNewConstMetric(c.campaigns, prometheus.GaugeValue, float64(n), state)
	}
}
