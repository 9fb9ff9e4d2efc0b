package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// holdSKUs is how many SKUs the hold loads spread over, each stocked
// with holdStock units.
const (
	holdSKUs  = 1000
	holdStock = 1_000_000
)

// holdRun is one hold load's outcome.
type holdRun struct {
	n       int
	elapsed time.Duration
	sorted  []time.Duration // latency of each hold, sorted
}

func (h holdRun) rate() float64 { return float64(h.n) / h.elapsed.Seconds() }

// p is the run's p-quantile latency.
func (h holdRun) p(q float64) time.Duration { return percentile(h.sorted, q) }

// skuNames are the hold loads' SKUs.
func skuNames() []string {
	out := make([]string, holdSKUs)
	for i := range out {
		out[i] = fmt.Sprintf("H-%04d", i)
	}
	return out
}

// holdLoad creates holds of one unit at base (POST /v1/reservations), each
// with a new id, round-robin over the SKUs, from clients keep-alive HTTP
// clients for d. With rate > 0 a hold is due every 1/rate s and its
// latency counts from when it was due (queueing behind a slow answer is
// included); with rate 0 every client sends its next hold when the last
// is answered (throughput). Any answer but 201 fails the run.
func holdLoad(ctx context.Context, base, tag string, clients, rate int, d time.Duration) (holdRun, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	skus := skuNames()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu   sync.Mutex
		lats []time.Duration
		next atomic.Int64
	)
	hold := func(i int64, due time.Time) {
		body := fmt.Sprintf(`{"id":"%s-%d","sku":%q,"qty":1,"ttl":"10m"}`, tag, i, skus[i%holdSKUs])
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/reservations", strings.NewReader(body))
		if err != nil {
			cancel(err)
			return
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			cancel(err)
			return
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			cancel(fmt.Errorf("hold %d: %s: %s", i, resp.Status, answer))
			return
		}
		lat := time.Since(due)
		mu.Lock()
		lats = append(lats, lat)
		mu.Unlock()
	}
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	if rate == 0 {
		for range clients {
			wg.Go(func() {
				for ctx.Err() == nil && time.Now().Before(end) {
					hold(next.Add(1), time.Now())
				}
			})
		}
	} else {
		jobs := make(chan [2]int64, clients)
		for range clients {
			wg.Go(func() {
				for j := range jobs {
					hold(j[0], time.Unix(0, j[1]))
				}
			})
		}
		interval := time.Second / time.Duration(rate)
		for i := int64(0); ctx.Err() == nil; i++ {
			due := start.Add(time.Duration(i) * interval)
			if !due.Before(end) {
				break
			}
			time.Sleep(time.Until(due))
			jobs <- [2]int64{i, due.UnixNano()}
		}
		close(jobs)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return holdRun{}, fmt.Errorf("%s holds: %w", tag, err)
	}
	slices.Sort(lats)
	return holdRun{n: len(lats), elapsed: elapsed, sorted: lats}, nil
}

// stockHolds gives the agent holdStock units of each hold SKU.
func stockHolds(ctx context.Context, a *agent) error {
	skus := skuNames()
	for from := 0; from < len(skus); from += 500 {
		var evs []string
		for _, sku := range skus[from:min(from+500, len(skus))] {
			evs = append(evs, fmt.Sprintf(`{"id":"stock-%s","type":"receive","sku":%q,"qty":%d}`, sku, sku, holdStock))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/v1/events", strings.NewReader("["+strings.Join(evs, ",")+"]"))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := httpClient.Do(req)
		if err != nil {
			return err
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("stock the hold SKUs: %s: %s", resp.Status, answer)
		}
	}
	return nil
}

// Hold load shapes (issue #18).
const (
	holdClients      = 8    // closed loop, agent against Redis
	pacedHoldRate    = 5000 // holds/s of the paced run …
	pacedHoldClients = 200  // … served by this many clients
	holdWarmUp       = time.Second
)

// holdsResult is the holds section: per rep, the agent and Redis under
// the same closed-loop load, and the agent paced.
type holdsResult struct {
	agent, redis, paced []holdRun
}

// holds runs the hold loads against one agent and one Redis behind its
// HTTP front, interleaved: agent then Redis in odd reps, Redis then agent
// in even ones, then the paced run.
func (b *bench) holds(ctx context.Context, reps int, d time.Duration) (holdsResult, error) {
	var res holdsResult
	rs, err := startRedis(b.dir)
	if err != nil {
		return res, err
	}
	defer rs.kill()
	if err := rs.stock(skuNames(), holdStock); err != nil {
		return res, err
	}
	front, err := startRedisFront(ctx, rs.addr)
	if err != nil {
		return res, err
	}
	defer front.kill()
	a, err := b.startAgent(ctx, "holds", agentOptions{})
	if err != nil {
		return res, err
	}
	defer a.kill()
	if err := stockHolds(ctx, a); err != nil {
		return res, err
	}
	// Warm both sides up, unmeasured: connections, caches and heaps as a
	// server that has been up a while has them.
	for _, w := range []struct {
		base          string
		clients, rate int
	}{{a.base, holdClients, 0}, {front.base, holdClients, 0}, {a.base, pacedHoldClients, pacedHoldRate}} {
		if _, err := holdLoad(ctx, w.base, fmt.Sprint("warm", w.clients, w.rate), w.clients, w.rate, holdWarmUp); err != nil {
			return res, err
		}
	}
	runs := map[string]func(rep int) (holdRun, error){
		"agent": func(rep int) (holdRun, error) {
			if rep > 0 || b.profiles == "" {
				return holdLoad(ctx, a.base, fmt.Sprintf("a%d", rep), holdClients, 0, d)
			}
			profiled := make(chan error, 1)
			go func() { profiled <- a.profile(ctx, b.profiles, "holds", d-time.Second/2) }()
			h, err := holdLoad(ctx, a.base, fmt.Sprintf("a%d", rep), holdClients, 0, d)
			return h, errors.Join(err, <-profiled)
		},
		"redis": func(rep int) (holdRun, error) {
			return holdLoad(ctx, front.base, fmt.Sprintf("r%d", rep), holdClients, 0, d)
		},
	}
	for rep := range reps {
		order := []string{"agent", "redis"}
		if rep%2 == 1 {
			order = []string{"redis", "agent"}
		}
		for _, who := range order {
			h, err := runs[who](rep)
			if err != nil {
				return res, err
			}
			logHolds(fmt.Sprintf("holds %s %d", who, rep+1), h)
			if who == "agent" {
				res.agent = append(res.agent, h)
			} else {
				res.redis = append(res.redis, h)
			}
		}
		h, err := holdLoad(ctx, a.base, fmt.Sprintf("p%d", rep), pacedHoldClients, pacedHoldRate, d)
		if err != nil {
			return res, err
		}
		logHolds(fmt.Sprintf("holds paced %d", rep+1), h)
		res.paced = append(res.paced, h)
	}
	return res, b.stopAgent(a)
}

func logHolds(tag string, h holdRun) {
	log.Printf("%-20s %d holds in %5.2fs = %7.0f holds/s, p50 %s, p99 %s", tag, h.n, h.elapsed.Seconds(), h.rate(), ms(h.p(0.5)), ms(h.p(0.99)))
}

func (r results) writeHolds(w io.Writer) {
	h := r.holds
	if len(h.agent) == 0 {
		return
	}
	fmt.Fprintf(w, `
## 4. Cart holds: the agent against Redis, and paced

POST /v1/reservations {"id","sku","qty":1,"ttl":"10m"}, a new id each, over
%d SKUs stocked with %d each; keep-alive HTTP/1.1. Any answer but 201
fails the run.
  agent  edgestock agent (embedded broker, SQLite, durable before 201)
  redis  redis-server, appendonly yes, appendfsync always, behind a
         minimal Go HTTP front (same JSON shape) running one EVALSHA of a
         Lua check-and-decrement per hold (ingestbench's redis.go)
closed loop: %d clients, each sends its next hold when the last is
answered; the order of agent and redis alternates by rep.
paced: %d holds/s due on a fixed schedule, %d clients, latency from when
each hold was due (queueing included), against the agent. Each of the
three loads first runs 1 s unmeasured (connections, caches and heaps warm).

`, holdSKUs, holdStock, holdClients, pacedHoldRate, pacedHoldClients)
	t := table(w)
	fmt.Fprintf(t, "rep\trun\tholds\tholds/s\tp50\tp99\tmax\n")
	for i := range h.agent {
		for _, run := range []struct {
			name string
			hs   []holdRun
		}{{"agent", h.agent}, {"redis", h.redis}, {"paced", h.paced}} {
			if i < len(run.hs) {
				x := run.hs[i]
				fmt.Fprintf(t, "%d\t%s\t%d\t%.0f\t%s\t%s\t%s\n", i+1, run.name, x.n, x.rate(), ms(x.p(0.5)), ms(x.p(0.99)), ms(x.p(1)))
			}
		}
	}
	_ = t.Flush()
}
