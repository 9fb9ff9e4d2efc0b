package hub

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsHandler serves the hub's Prometheus metrics: per agent the
// entries pulled and pushed, whether it is online and catching up, and the
// age of the last exchange; plus Go and process metrics.
func (h *Hub) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), hubCollector{h})
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

var (
	descPulled  = prometheus.NewDesc("edgestock_hub_entries_pulled_total", "Entries merged from an agent since the hub started.", []string{"warehouse"}, nil)
	descPushed  = prometheus.NewDesc("edgestock_hub_entries_pushed_total", "Entries sent to an agent since the hub started.", []string{"warehouse"}, nil)
	descOnline  = prometheus.NewDesc("edgestock_hub_agent_online", "1 when the agent answered recently.", []string{"warehouse"}, nil)
	descPending = prometheus.NewDesc("edgestock_hub_agent_pending", "1 while the agent has more deltas than one page: catching up.", []string{"warehouse"}, nil)
	descLag     = prometheus.NewDesc("edgestock_hub_agent_lag_seconds", "Seconds since the last exchange with the agent (-1 before the first).", []string{"warehouse"}, nil)
	descHooks   = prometheus.NewDesc("edgestock_hub_webhook_deliveries_total",
		"Webhook pages since the hub started, by result: delivered, failed (an attempt), dead (given up on after max-attempts).", []string{"webhook", "result"}, nil)
)

// hubCollector reads the links at scrape time.
type hubCollector struct{ h *Hub }

func (c hubCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPulled, descPushed, descOnline, descPending, descLag, descHooks} {
		ch <- d
	}
}

func (c hubCollector) Collect(ch chan<- prometheus.Metric) {
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for _, w := range c.h.Warehouses() {
		lag := -1.0
		if w.LagSeconds != nil {
			lag = *w.LagSeconds
		}
		ch <- prometheus.MustNewConstMetric(descPulled, prometheus.CounterValue, float64(w.Pulled), w.Warehouse)
		ch <- prometheus.MustNewConstMetric(descPushed, prometheus.CounterValue, float64(w.Pushed), w.Warehouse)
		ch <- prometheus.MustNewConstMetric(descOnline, prometheus.GaugeValue, b(w.Online), w.Warehouse)
		ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, b(w.Pending), w.Warehouse)
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, lag, w.Warehouse)
	}
	if c.h.webhookStatus == nil {
		return
	}
	for _, s := range c.h.webhookStatus() {
		for result, n := range map[string]int64{"delivered": s.Delivered, "failed": s.Failed, "dead": s.Dead} {
			ch <- prometheus.MustNewConstMetric(descHooks, prometheus.CounterValue, float64(n), s.Name, result)
		}
	}
}
