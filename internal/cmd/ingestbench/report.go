package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// facts describe the machine and software the numbers came from.
type facts struct {
	date      time.Time
	nproc     int
	cpu       string
	goVersion string
	mosquitto string
	agent     string
	scratch   string // the agents' data directories and their file system
}

// results is everything the report shows.
type results struct {
	facts      facts
	events     int
	reps       int
	throughput throughputResult
	latency    []latencyResult
	embedded   embeddedResult
	holds      holdsResult
	reconcile  []float64 // convergence per run, seconds
	rss        []rssSample
	sections   map[string]bool // those that ran
}

// report renders r as markdown-ish plain text.
func (r results) report() string {
	var b strings.Builder
	r.writeFacts(&b)
	r.writeSummary(&b)
	if r.sections["throughput"] {
		r.writeThroughput(&b)
	}
	if r.sections["latency"] {
		r.writeLatency(&b)
	}
	if r.sections["embedded"] {
		r.writeEmbedded(&b)
	}
	r.writeHolds(&b)
	if len(r.reconcile) > 0 {
		fmt.Fprintf(&b, "\n## 5. Outage reconcile (BenchmarkHub_Reconnect: 1M events on 50k SKUs taken while the hub was away)\n\nconvergence per run: %v s\n", r.reconcile)
	}
	r.writeRSS(&b)
	return b.String()
}

func (r results) writeFacts(w io.Writer) {
	f := r.facts
	fmt.Fprintf(w, "# edgestock benchmark\n\n")
	t := table(w)
	fmt.Fprintf(t, "date\t%s\n", f.date.UTC().Format("2006-01-02 15:04:05 MST"))
	fmt.Fprintf(t, "nproc\t%d (shared by the load generator, mosquitto and the agent)\n", f.nproc)
	fmt.Fprintf(t, "cpu\t%s\n", f.cpu)
	fmt.Fprintf(t, "go\t%s\n", f.goVersion)
	fmt.Fprintf(t, "mosquitto\t%s\n", f.mosquitto)
	fmt.Fprintf(t, "agent\t%s\n", f.agent)
	fmt.Fprintf(t, "data dirs\t%s\n", f.scratch)
	fmt.Fprintf(t, "events\t%d per throughput run, %d reps of each\n", r.events, r.reps)
	_ = t.Flush()
}

func (r results) writeThroughput(w io.Writer) {
	fmt.Fprintf(w, `
## 1. Throughput through one mosquitto (agent in external broker mode)

Load: %d publisher connections x %d QoS 1 publishes in flight (paho MQTT 5,
each publish waits for its PUBACK), %d events with unique ids, each a
receive of 1 unit of %s. The same load for both consumers:
  bare   paho MQTT 5 subscriber on %s, QoS 1, auto-ack, only counts;
         on paho's own connection (a system call per packet read and per
         ack; the agent's reads are buffered and its writes coalesced)
  agent  edgestock agent --mqtt-url, fresh data dir: persistent session,
         acks each event after its SQLite commit; done when
         GET /v1/stock/%s shows on_hand = N (polled every %v
         from the last PUBACK from mosquitto on)
events/s = N / (first publish -> consumer processed all N). "publish" is
first publish -> last PUBACK from mosquitto. "per commit" is the agent's
mean events per group-commit transaction. Runs alternate: bare then agent in
odd reps, agent then bare in even ones.

`, brokerShape.conns, brokerShape.inFlight, r.events, benchSKU, eventsFilter, benchSKU, pollInterval)
	writeRuns(w, "consumer", "bare", r.throughput.bare, "agent", r.throughput.agent)
	bare, agent := median(rates(r.throughput.bare)), median(rates(r.throughput.agent))
	fmt.Fprintln(w)
	t := table(w)
	fmt.Fprintf(t, "median bare\t%.0f events/s\n", bare)
	fmt.Fprintf(t, "median agent\t%.0f events/s\n", agent)
	fmt.Fprintf(t, "agent/bare\t%.2f\n", agent/bare)
	// Each rep's agent run against the same rep's bare run: the spread says
	// how much the machine moved during the measurement.
	var pairs []string
	for i := range min(len(r.throughput.bare), len(r.throughput.agent)) {
		pairs = append(pairs, fmt.Sprintf("%.2f", r.throughput.agent[i].rate()/r.throughput.bare[i].rate()))
	}
	fmt.Fprintf(t, "per rep\t%s\n", strings.Join(pairs, " "))
	_ = t.Flush()
	fmt.Fprintf(w, `
CPU time per event (user + system, from /proc/PID/stat; median of the reps).
ingestbench is the publishers plus, in bare runs, the counting subscriber
and, in agent runs, the stock poller.

`)
	writeCPU(w, []string{procBench, procMosquitto, procAgent}, []cpuRow{
		{"bare", r.throughput.bare}, {"agent", r.throughput.agent}})
}

// cpuRow is one line of a CPU table: the runs of one kind.
type cpuRow struct {
	name string
	runs []measurement
}

// writeCPU tabulates the median CPU time per event of each process, and
// their sum, for each row.
func writeCPU(w io.Writer, procs []string, rows []cpuRow) {
	t := table(w)
	fmt.Fprintf(t, "runs\t%s\ttotal\n", strings.Join(procs, "\t"))
	for _, r := range rows {
		fmt.Fprintf(t, "%s", r.name)
		var total time.Duration
		for _, p := range procs {
			var per []float64
			for _, m := range r.runs {
				if d := m.cpuPerEvent(p); d > 0 {
					per = append(per, float64(d))
				}
			}
			if len(per) == 0 {
				fmt.Fprintf(t, "\t-")
				continue
			}
			d := time.Duration(median(per))
			total += d
			fmt.Fprintf(t, "\t%s", us(d))
		}
		fmt.Fprintf(t, "\t%s\n", us(total))
	}
	_ = t.Flush()
}

func (r results) writeLatency(w io.Writer) {
	if len(r.latency) == 0 {
		return
	}
	fmt.Fprintf(w, `
## 2. Latency at a steady %d events/s (external broker mode, devices.results: all)

One publisher sends QoS 1 asynchronously on a fixed per-event schedule
through mosquitto to the agent; a subscriber on %s
notes when each event's result arrives. Latency = result received - publish
sent: publish -> mosquitto -> agent commit -> result -> mosquitto ->
subscriber. It includes the result's trip back through mosquitto, so it is
an upper bound of ingest-to-commit latency. A fresh agent each run.

`, r.latency[0].rate, resultsFilter)
	t := table(w)
	fmt.Fprintf(t, "run\tsent\trate\tworst lateness\tresults\tnot applied\trepeated\ton_hand\tp50\tp90\tp99\tmax\n")
	for i, l := range r.latency {
		achieved := 0.0
		if l.sending > 0 {
			achieved = float64(l.sent-1) / l.sending.Seconds() // n sends span n-1 intervals
		}
		fmt.Fprintf(t, "%d\t%d\t%.0f/s\t%v\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", i+1, l.sent, achieved, l.maxLag.Round(time.Microsecond),
			l.received, l.notApplied, l.repeats, l.committed,
			ms(percentile(l.sorted, 0.5)), ms(percentile(l.sorted, 0.9)), ms(percentile(l.sorted, 0.99)), ms(percentile(l.sorted, 1)))
	}
	_ = t.Flush()
}

func (r results) writeEmbedded(w io.Writer) {
	e := r.embedded
	fmt.Fprintf(w, `
## 3. Embedded broker (agent --mqtt-listen, no mosquitto)

The agent's own broker sends each PUBACK only after the event's commit.
%d device connections x %d publishes in flight, %d events per run.
  embedded  the agent as it ships (alerts and live topics on); done when
            GET /v1/stock/%s shows on_hand = N (polled every %v from
            the last PUBACK on)
  quiet     the same with alerts and live topics off
  mochi     the same mochi-mqtt broker, the agent's options, an inline
            hook that does nothing with a publish; done at the last PUBACK
The order turns by one each rep.

`, devicesShape.conns, devicesShape.inFlight, r.events, benchSKU, pollInterval)
	t := table(w)
	fmt.Fprintf(t, "rep	run	events/s	elapsed	publish	per commit\n")
	for i := range e.agent {
		for _, run := range []struct {
			name string
			ms   []measurement
		}{{"embedded", e.agent}, {"quiet", e.quiet}, {"mochi", e.mochi}} {
			if i < len(run.ms) {
				writeRun(t, fmt.Sprint(i+1), run.name, run.ms[i])
			}
		}
	}
	_ = t.Flush()
	fmt.Fprintln(w)
	t = table(w)
	agent, quiet, mochi := median(rates(e.agent)), median(rates(e.quiet)), median(rates(e.mochi))
	fmt.Fprintf(t, "median embedded\t%.0f events/s\n", agent)
	fmt.Fprintf(t, "median quiet\t%.0f events/s\n", quiet)
	fmt.Fprintf(t, "median mochi\t%.0f events/s\n", mochi)
	fmt.Fprintf(t, "embedded/mochi\t%.2f (per rep %s)\n", agent/mochi, pairRatios(e.agent, e.mochi))
	fmt.Fprintf(t, "cost of alerts and live\t%.1f %% (1 - embedded/quiet; per rep %s)\n", 100*(1-agent/quiet), pairRatios(e.agent, e.quiet))
	_ = t.Flush()
	fmt.Fprintf(w, "\nCPU time per event, as in section 1 (ingestbench: the publishers and the stock poller).\n\n")
	writeCPU(w, []string{procBench, procAgent, procMochi}, []cpuRow{{"embedded", e.agent}, {"quiet", e.quiet}, {"mochi", e.mochi}})
}

// pairRatios are a's rates over b's, rep by rep.
func pairRatios(a, b []measurement) string {
	var out []string
	for i := range min(len(a), len(b)) {
		out = append(out, fmt.Sprintf("%.2f", a[i].rate()/b[i].rate()))
	}
	return strings.Join(out, " ")
}

func (r results) writeRSS(w io.Writer) {
	fmt.Fprintf(w, "\n## 6. Agent peak RSS (VmHWM of the child, read just before SIGTERM)\n\n")
	t := table(w)
	fmt.Fprintf(t, "run\tpeak RSS\n")
	var peak int64
	for _, s := range r.rss {
		fmt.Fprintf(t, "%s\t%s\n", s.run, mb(s.bytes))
		peak = max(peak, s.bytes)
	}
	_ = t.Flush()
	fmt.Fprintf(w, "\nmax across runs: %s\n", mb(peak))
}

// writeRuns tabulates two kinds of run rep by rep; col names the column
// that tells them apart.
func writeRuns(w io.Writer, col, aName string, a []measurement, bName string, b []measurement) {
	t := table(w)
	fmt.Fprintf(t, "rep\t%s\tevents/s\telapsed\tpublish\tper commit\n", col)
	for i := range a {
		writeRun(t, fmt.Sprint(i+1), aName, a[i])
		if i < len(b) {
			writeRun(t, fmt.Sprint(i+1), bName, b[i])
		}
	}
	_ = t.Flush()
}

func writeRun(w io.Writer, rep, who string, m measurement) {
	perCommit := "-"
	if m.perCommit > 0 {
		perCommit = fmt.Sprintf("%.0f", m.perCommit)
	}
	fmt.Fprintf(w, "%s\t%s\t%.0f\t%.2fs\t%.2fs\t%s\n", rep, who, m.rate(), m.elapsed.Seconds(), m.publish.Seconds(), perCommit)
}

func table(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond)) }

func mb(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
