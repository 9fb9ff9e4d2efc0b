package agent

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgestock/edgestock/internal/ingest"
	"github.com/edgestock/edgestock/internal/store"
)

// metrics are the agent's Prometheus metrics, on a registry of its own so
// several agents in one process (tests) do not collide.
type metrics struct {
	registry    *prometheus.Registry
	events      *prometheus.CounterVec // by source, driver and status
	rejections  *prometheus.CounterVec // by reason
	commitSize  prometheus.Histogram
	commitTime  prometheus.Histogram
	storeHealth prometheus.Gauge
	onApplied   func(n int) // the status endpoint's rate
}

func newMetrics(a *Agent) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgestock_events_total", Help: "Events processed, by source (mqtt, http, file), driver and status (applied, duplicate, rejected).",
		}, []string{"source", "driver", "status"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgestock_rejections_total", Help: "Rejected input, by reason code; each is in the quarantine.",
		}, []string{"reason"}),
		commitSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "edgestock_commit_batch_items", Help: "Events, rejections and holds per group-commit transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 7),
		}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "edgestock_commit_duration_seconds", Help: "Group-commit transaction time, fsync included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 12),
		}),
		storeHealth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edgestock_store_ok", Help: "1 when the last commit succeeded, 0 while the store is failing (acknowledgements held).",
		}),
	}
	m.storeHealth.Set(1)
	m.onApplied = func(n int) { a.rate.add(n, now()) }
	scrape := func(name, help string, read func(ctx context.Context) (float64, error)) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			v, err := read(ctx)
			if err != nil {
				return -1
			}
			return v
		})
	}
	m.registry.MustRegister(m.events, m.rejections, m.commitSize, m.commitTime, m.storeHealth,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		scrape("edgestock_active_holds", "Active reservations.", func(ctx context.Context) (float64, error) {
			n, err := a.store.Count(ctx, store.CountActiveHolds)
			return float64(n), err
		}),
		scrape("edgestock_alert_outbox_depth", "Alerts not yet delivered to the slowest sink.", func(ctx context.Context) (float64, error) {
			n, err := a.store.Count(ctx, store.CountUndeliveredAlerts)
			return float64(n), err
		}),
		scrape("edgestock_quarantine_size", "Payloads in the quarantine.", func(ctx context.Context) (float64, error) {
			n, err := a.store.Count(ctx, store.CountQuarantine)
			return float64(n), err
		}),
		scrape("edgestock_quarantine_bytes", "Payload bytes the quarantine holds (bounded by quarantine.total-bytes).", func(context.Context) (float64, error) {
			n, _ := a.store.QuarantineUsage()
			return float64(n), nil
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "edgestock_quarantine_payloads_not_stored_total",
			Help: "Rejections recorded without their payload since start: over quarantine.device-bytes or total-bytes."}, func() float64 {
			_, n := a.store.QuarantineUsage()
			return float64(n)
		}),
		scrape("edgestock_device_gaps", "device_gap alerts raised.", func(ctx context.Context) (float64, error) {
			n, err := a.store.Count(ctx, store.CountDeviceGaps)
			return float64(n), err
		}),
		scrape("edgestock_sync_pending_deltas", "Counter entries changed since the cursor the hub last pulled from.", func(ctx context.Context) (float64, error) {
			n, err := a.store.CountChangedSince(ctx, a.hubSince.Load())
			return float64(n), err
		}),
		scrape("edgestock_hub_contact_age_seconds", "Seconds since the hub's last sync request (-1: never since start).", func(context.Context) (float64, error) {
			ms := a.hubSeen.Load()
			if ms == 0 {
				return -1, nil
			}
			return now().Sub(time.UnixMilli(ms)).Seconds(), nil
		}),
	)
	return m
}

// observeResults counts what one ingest produced.
func (m *metrics) observeResults(source, driver string, results []ingest.Result) {
	applied := 0
	for _, r := range results {
		if r.Status == ingest.StatusApplied {
			applied++
		}
		m.events.WithLabelValues(source, driver, r.Status).Inc()
		if r.Rejected() {
			m.rejections.WithLabelValues(string(r.Reason)).Inc()
		}
	}
	if m.onApplied != nil && applied > 0 {
		m.onApplied(applied)
	}
}

// observeCommit records one group commit (store.Options.Observe).
func (m *metrics) observeCommit(items int, took time.Duration, err error) {
	if err != nil {
		m.storeHealth.Set(0)
		return
	}
	m.storeHealth.Set(1)
	m.commitSize.Observe(float64(items))
	m.commitTime.Observe(took.Seconds())
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}
