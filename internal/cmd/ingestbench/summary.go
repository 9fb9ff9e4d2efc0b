package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// figure is one line of the summary: issue #18's figures, each with its
// goal, its value (the median, or the ratio of medians) and the runs it
// came from.
type figure struct {
	Name  string    `json:"name"`
	Unit  string    `json:"unit"`
	Goal  string    `json:"goal"`
	Value float64   `json:"value"`
	Runs  []float64 `json:"runs"` // per run (or per rep, for ratios)
	Met   bool      `json:"met"`
}

// figures computes the summary from whatever sections ran.
func (r results) figures() []figure {
	var out []figure
	if t := r.throughput; len(t.agent) > 0 {
		runs := ratios(t.agent, t.bare)
		v := median(rates(t.agent)) / median(rates(t.bare))
		out = append(out, figure{Name: "durable ingest / bare paho subscriber (mosquitto, QoS 1, 4 devices)", Unit: "ratio",
			Goal: ">= 0.95, every run >= 0.90", Value: v, Runs: runs, Met: v >= 0.95 && slices.Min(runs) >= 0.90})
	}
	if e := r.embedded; len(e.agent) > 0 {
		v := median(rates(e.agent)) / median(rates(e.mochi))
		out = append(out, figure{Name: "embedded broker: durable ingest / the same mochi with a no-op hook", Unit: "ratio",
			Goal: ">= 0.80", Value: v, Runs: ratios(e.agent, e.mochi), Met: v >= 0.80})
		cost := 1 - median(rates(e.agent))/median(rates(e.quiet))
		var runs []float64
		for _, x := range ratios(e.agent, e.quiet) {
			runs = append(runs, 100*(1-x))
		}
		out = append(out, figure{Name: "cost of alerts + live topics on embedded ingest", Unit: "%",
			Goal: "<= 5", Value: 100 * cost, Runs: runs, Met: 100*cost <= 5})
	}
	if len(r.latency) > 0 {
		var runs []float64
		for _, l := range r.latency {
			runs = append(runs, msf(percentile(l.sorted, 0.99)))
		}
		out = append(out, figure{Name: fmt.Sprintf("commit latency p99 at %d events/s (publish -> result, via mosquitto)", r.latency[0].rate), Unit: "ms",
			Goal: "<= 10 in every run", Value: median(runs), Runs: runs, Met: slices.Max(runs) <= 10})
	}
	if h := r.holds; len(h.paced) > 0 {
		var runs []float64
		for _, p := range h.paced {
			runs = append(runs, msf(p.p(0.99)))
		}
		out = append(out, figure{Name: fmt.Sprintf("holds at %d/s paced (%d clients), p99", pacedHoldRate, pacedHoldClients), Unit: "ms",
			Goal: "<= 10 in every run", Value: median(runs), Runs: runs, Met: slices.Max(runs) <= 10})
		var rs []float64
		for i := range min(len(h.agent), len(h.redis)) {
			rs = append(rs, h.agent[i].rate()/h.redis[i].rate())
		}
		v := median(holdRates(h.agent)) / median(holdRates(h.redis))
		agentP99, redisP99 := median(holdP99s(h.agent)), median(holdP99s(h.redis))
		out = append(out, figure{Name: fmt.Sprintf("holds/s agent / Redis + Lua (appendfsync always, HTTP front; %d clients, %d SKUs)", holdClients, holdSKUs),
			Unit: "ratio", Goal: fmt.Sprintf(">= 1.0, p99 <= Redis's (agent %.1f ms, Redis %.1f ms)", agentP99, redisP99),
			Value: v, Runs: rs, Met: v >= 1 && agentP99 <= redisP99})
	}
	if len(r.rss) > 0 {
		var runs []float64
		for _, s := range r.rss {
			runs = append(runs, float64(s.bytes)/(1<<20))
		}
		out = append(out, figure{Name: "agent peak RSS, every run above", Unit: "MiB", Goal: "<= 48 in every run",
			Value: slices.Max(runs), Runs: runs, Met: slices.Max(runs) <= 48})
	}
	if len(r.reconcile) > 0 {
		out = append(out, figure{Name: "outage reconcile, 1M events on 50k SKUs (BenchmarkHub_Reconnect)", Unit: "s", Goal: "<= 1",
			Value: median(r.reconcile), Runs: r.reconcile, Met: median(r.reconcile) <= 1})
	}
	return out
}

func ratios(a, b []measurement) []float64 {
	var out []float64
	for i := range min(len(a), len(b)) {
		out = append(out, a[i].rate()/b[i].rate())
	}
	return out
}

func holdRates(hs []holdRun) []float64 {
	out := make([]float64, len(hs))
	for i, h := range hs {
		out[i] = h.rate()
	}
	return out
}

func holdP99s(hs []holdRun) []float64 {
	out := make([]float64, len(hs))
	for i, h := range hs {
		out[i] = msf(h.p(0.99))
	}
	return out
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// writeSummary is the report's first table: every figure, its goal and
// whether this run met it.
func (r results) writeSummary(w io.Writer) {
	figs := r.figures()
	if len(figs) == 0 {
		return
	}
	fmt.Fprintf(w, "\n## Summary (issue #18's figures; values are medians, runs in order)\n\n")
	t := table(w)
	fmt.Fprintf(t, "figure\tvalue\tgoal\tmet\truns\n")
	for _, f := range figs {
		met := "no"
		if f.Met {
			met = "yes"
		}
		var runs []string
		for _, x := range f.Runs {
			runs = append(runs, fmtValue(x, f.Unit))
		}
		fmt.Fprintf(t, "%s\t%s %s\t%s\t%s\t%s\n", f.Name, fmtValue(f.Value, f.Unit), f.Unit, f.Goal, met, strings.Join(runs, " "))
	}
	_ = t.Flush()
}

func fmtValue(x float64, unit string) string {
	switch {
	case unit == "ratio":
		return fmt.Sprintf("%.2f", x)
	case math.Abs(x) >= 100:
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.1f", x)
}

// benchJSON is what -out-dir's bench.json holds: the facts, the summary,
// and every run's raw figures (latencies as sorted milliseconds, thinned).
type benchJSON struct {
	Date      time.Time           `json:"date"`
	Machine   map[string]string   `json:"machine"`
	Figures   []figure            `json:"figures"`
	Latencies map[string][]series `json:"latencies"` // CDF series per figure
}

// series is one run's latency distribution: quantiles 0..1 in steps.
type series struct {
	Run       string    `json:"run"`
	Quantiles []float64 `json:"quantiles_ms"` // at 0, 0.01, …, 1
}

func cdf(run string, sorted []time.Duration) series {
	s := series{Run: run}
	for q := 0; q <= 100; q++ {
		s.Quantiles = append(s.Quantiles, msf(percentile(sorted, max(float64(q), 0.1)/100)))
	}
	return s
}

func (r results) json() ([]byte, error) {
	f := r.facts
	j := benchJSON{Date: f.date.UTC(), Figures: r.figures(), Latencies: map[string][]series{},
		Machine: map[string]string{"nproc": fmt.Sprint(f.nproc), "cpu": f.cpu, "go": f.goVersion, "mosquitto": f.mosquitto, "agent": f.agent, "data dirs": f.scratch}}
	for i, l := range r.latency {
		j.Latencies["commit latency (ms)"] = append(j.Latencies["commit latency (ms)"], cdf(fmt.Sprint("run ", i+1), l.sorted))
	}
	for i, h := range r.holds.paced {
		j.Latencies["paced holds (ms)"] = append(j.Latencies["paced holds (ms)"], cdf(fmt.Sprint("run ", i+1), h.sorted))
	}
	for i := range r.holds.agent {
		j.Latencies["holds: agent vs Redis (ms)"] = append(j.Latencies["holds: agent vs Redis (ms)"], cdf(fmt.Sprint("agent ", i+1), r.holds.agent[i].sorted))
		if i < len(r.holds.redis) {
			j.Latencies["holds: agent vs Redis (ms)"] = append(j.Latencies["holds: agent vs Redis (ms)"], cdf(fmt.Sprint("redis ", i+1), r.holds.redis[i].sorted))
		}
	}
	return json.MarshalIndent(j, "", "  ")
}
