package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/edgestock/edgestock/internal/mosquitto"
)

// resultsAllConfig makes the agent publish a result for every event it
// commits, not only for rejections.
const resultsAllConfig = "devices:\n  results: all\n"

// latencyTag prefixes the ids of the paced events.
const latencyTag = "lat"

// resultsIdle is how long to keep waiting for results once none arrive:
// the agent may drop results when its publish queue is full, and those
// never come.
const resultsIdle = 5 * time.Second

// latencyResult is section 2.
type latencyResult struct {
	rate       int
	sent       int
	sending    time.Duration // first send → last send
	maxLag     time.Duration // worst lateness of a send against its schedule
	received   int           // events with a result
	notApplied int64         // results whose status was not "applied"
	repeats    int64         // results received more than once
	committed  int64         // on_hand after the run
	sorted     []time.Duration
}

// recorder notes when each paced event's result arrives, as time since
// base. It runs on paho's receive goroutine.
type recorder struct {
	base       time.Time
	at         []atomic.Int64 // 0: no result yet
	got        atomic.Int64
	repeats    atomic.Int64
	notApplied atomic.Int64
}

func newRecorder(base time.Time, n int) *recorder {
	return &recorder{base: base, at: make([]atomic.Int64, n)}
}

func (r *recorder) onPublish(p *paho.Publish) {
	now := time.Since(r.base)
	var res struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if json.Unmarshal(p.Payload, &res) != nil {
		return
	}
	rest, ok := strings.CutPrefix(res.ID, latencyTag+"-")
	if !ok {
		return // the warm-up's result
	}
	i, err := strconv.Atoi(rest)
	if err != nil || i < 0 || i >= len(r.at) {
		return
	}
	if res.Status != "applied" {
		r.notApplied.Add(1)
	}
	if r.at[i].CompareAndSwap(0, int64(now)) {
		r.got.Add(1)
	} else {
		r.repeats.Add(1)
	}
}

// wait returns once every result arrived, none arrived for resultsIdle, or
// timeout passed; missing results are reported, not an error.
func (r *recorder) wait(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last, lastChange := r.got.Load(), time.Now()
	for int(last) < len(r.at) && time.Now().Before(deadline) && time.Since(lastChange) < resultsIdle {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(10 * time.Millisecond):
		}
		if n := r.got.Load(); n != last {
			last, lastChange = n, time.Now()
		}
	}
	return nil
}

// pacedSend publishes n events on a fixed schedule, event i at start +
// i/rate, and records each actual send time since base. Sends are
// asynchronous, so a slow PUBACK does not delay the schedule; when a send
// is late the next ones go at once to catch up.
func pacedSend(ctx context.Context, c *client, n, rate int, base time.Time) (sent []time.Duration, maxLag time.Duration, err error) {
	interval := time.Second / time.Duration(rate)
	sent = make([]time.Duration, n)
	topic := eventsTopic("lat-dev")
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		if lag := time.Since(due); lag > maxLag {
			maxLag = lag
		}
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		sent[i] = time.Since(base)
		if err := c.publishAsync(ctx, topic, event(latencyTag, i, benchSKU)); err != nil {
			return nil, 0, fmt.Errorf("publish event %d: %w", i, err)
		}
	}
	return sent, maxLag, nil
}

// latency runs an agent with results for every event and measures, at a
// steady rate, publish → result received through mosquitto.
func (b *bench) latency(ctx context.Context, mq *mosquitto.Broker, rate int, d time.Duration, rep int) (latencyResult, error) {
	res := latencyResult{rate: rate, sent: int(d.Seconds() * float64(rate))}
	conf := filepath.Join(b.dir, "results-all.yaml")
	if err := os.WriteFile(conf, []byte(resultsAllConfig), 0o644); err != nil {
		return res, err
	}
	a, err := b.startAgent(ctx, fmt.Sprintf("latency-%d", rep), agentOptions{mqttURL: mq.URL(), config: conf})
	if err != nil {
		return res, err
	}
	defer a.kill()

	base := time.Now()
	rec := newRecorder(base, res.sent)
	sub, err := dial(ctx, mq.Addr, "latency-results", rec.onPublish)
	if err != nil {
		return res, err
	}
	defer sub.close()
	if err := sub.subscribe(ctx, resultsFilter); err != nil {
		return res, err
	}
	pub, err := dial(ctx, mq.Addr, "latency-pub", nil)
	if err != nil {
		return res, err
	}
	defer pub.close()
	if err := warmUp(ctx, b.timeout, pub, "latency", a.saw(warmSKU)); err != nil {
		return res, err
	}

	sctx, cancel := context.WithTimeout(ctx, d+b.timeout)
	defer cancel()
	sent, maxLag, err := pacedSend(sctx, pub, res.sent, rate, base)
	if err != nil {
		return res, err
	}
	res.sending, res.maxLag = sent[len(sent)-1]-sent[0], maxLag
	if err := rec.wait(ctx, b.timeout); err != nil {
		return res, err
	}
	wctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	if err := a.waitOnHand(wctx, benchSKU, int64(res.sent), 50*time.Millisecond); err != nil {
		return res, fmt.Errorf("latency run: not every event was committed: %w", err)
	}
	if res.committed, err = a.onHand(ctx, benchSKU); err != nil {
		return res, err
	}
	res.received, res.notApplied, res.repeats = int(rec.got.Load()), rec.notApplied.Load(), rec.repeats.Load()
	res.sorted = latencies(sent, rec)
	log.Printf("%-20s %d events at %d/s, %d results, p50 %s, p99 %s", "latency", res.sent, rate, res.received,
		ms(percentile(res.sorted, 0.50)), ms(percentile(res.sorted, 0.99)))
	if err := b.stopAgent(a); err != nil {
		return res, err
	}
	return res, clearSession(ctx, mq.Addr, agentClientID)
}

// latencies are result receipt − send time of every event with a result,
// sorted.
func latencies(sent []time.Duration, rec *recorder) []time.Duration {
	var out []time.Duration
	for i, s := range sent {
		if at := rec.at[i].Load(); at != 0 {
			out = append(out, time.Duration(at)-s)
		}
	}
	slices.Sort(out)
	return out
}
