package agent_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/internal/testenv"
)

// BenchmarkAgent_EmbeddedIngest: one gateway connection keeps 64 QoS 1
// publishes in flight to the embedded broker, over 100 SKUs; every PUBACK
// means committed. Alerts and live topics on (the default) and off.
func BenchmarkAgent_EmbeddedIngest(b *testing.B) {
	for _, outputs := range []bool{true, false} {
		b.Run(fmt.Sprintf("alerts_and_live=%t", outputs), func(b *testing.B) {
			a := startAgent(b, b.TempDir(), func(c *agent.Config) { c.Alerts.Enabled, c.Live.Enabled = outputs, outputs })
			publishInFlight(b, a, func(i int) []byte { return receive(fmt.Sprint(i), fmt.Sprint("SKU-", i%100), 1) })
		})
	}
}

// publishInFlight keeps 64 QoS 1 publishes of payload(i) in flight from
// one gateway connection to a's embedded broker, b.N in all, and reports
// events/s.
func publishInFlight(b *testing.B, a *testAgent, payload func(i int) []byte) {
	c := testenv.Dial(b, a.MQTTAddr(), "gw")
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	i := 0
	b.ResetTimer()
	for b.Loop() {
		i++
		p := payload(i)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := c.PublishQoS1(context.Background(), eventsTopic(fmt.Sprint("d", i%64)), p); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAgent_ReplenishmentCost: BenchmarkAgent_EmbeddedIngest's load
// of sales (what replenishment learns from) over 100 stocked SKUs, with
// replenishment on (the default) and off, side by side: the follower reads
// the event log after each commit and writes demand states beside ingest.
func BenchmarkAgent_ReplenishmentCost(b *testing.B) {
	for _, on := range []bool{true, false} {
		b.Run(fmt.Sprintf("replenishment=%t", on), func(b *testing.B) {
			a := startAgent(b, b.TempDir(), func(c *agent.Config) { c.Replenishment.Enabled = on })
			var stock []string
			for s := range 100 {
				stock = append(stock, fmt.Sprintf(`{"id":"r%d","type":"receive","sku":"SKU-%d","qty":1000000}`, s, s))
			}
			status, _ := a.Post(b, "/v1/events", "["+strings.Join(stock, ",")+"]")
			if status != http.StatusOK {
				b.Fatal(status)
			}
			publishInFlight(b, a, func(i int) []byte {
				return fmt.Appendf(nil, `{"id":"s%d","type":"sale","sku":"SKU-%d","qty":1}`, i, i%100)
			})
		})
	}
}

// BenchmarkAgent_MosquittoIngest: 4 publishers with 32 in flight each
// through mosquitto to the agent in external-broker mode, until all b.N
// events are applied.
func BenchmarkAgent_MosquittoIngest(b *testing.B) {
	m := testenv.StartMosquitto(b)
	a := startAgent(b, b.TempDir(), func(c *agent.Config) { c.MQTT.URL = m.URL() })
	warm := testenv.Dial(b, m.Addr, "warm")
	for a.OnHand(b, "WARM") == 0 { // the agent subscribes just after connecting
		_ = warm.PublishQoS1(b.Context(), eventsTopic("warm"), receive("w", "WARM", 1))
		time.Sleep(10 * time.Millisecond)
	}
	const publishers, inFlight = 4, 32
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for p := range publishers {
		c := testenv.Dial(b, m.Addr, fmt.Sprint("pub", p))
		for range inFlight {
			wg.Go(func() {
				for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
					if err := c.PublishQoS1(context.Background(), eventsTopic(fmt.Sprint("d", p)), receive(fmt.Sprint(i), "SKU-B", 1)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	for a.OnHand(b, "SKU-B") < int64(b.N) {
		time.Sleep(5 * time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkReservations_Holds: 200 concurrent HTTP clients create holds of
// one unit each. rate=max: closed loop, every client sends its next request
// when the last is answered (throughput; latency is then 200/throughput by
// Little's law). rate=5000: requests are scheduled at 5,000/s and served by
// the 200 clients; latency counts from the scheduled time, so queueing
// behind a slow response is included.
func BenchmarkReservations_Holds(b *testing.B) {
	for _, rate := range []int{0, 5000} {
		name := "rate=max"
		if rate > 0 {
			name = fmt.Sprintf("rate=%d", rate)
		}
		b.Run(name, func(b *testing.B) { benchHolds(b, rate) })
	}
}

func benchHolds(b *testing.B, rate int) {
	a := startAgent(b, b.TempDir(), nil)
	a.Post(b, "/v1/events", `{"id":"r1","type":"receive","sku":"HOT","qty":1000000}`)
	const clients = 200
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	lat := make([]time.Duration, b.N)
	// Each job is a request index and when it was due.
	jobs := make(chan [2]int64, clients)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for j := range jobs {
				i, due := j[0], time.Unix(0, j[1])
				resp, err := client.Post(a.Base+"/v1/reservations", "application/json",
					strings.NewReader(fmt.Sprintf(`{"id":"b-%d","sku":"HOT","qty":1,"ttl":"10m"}`, i)))
				if err != nil {
					b.Error(err)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					b.Errorf("status %d", resp.StatusCode)
				}
				lat[i] = time.Since(due)
			}
		})
	}
	b.ResetTimer()
	start := time.Now()
	for i := range int64(b.N) {
		due := time.Now()
		if rate > 0 {
			due = start.Add(time.Duration(i) * time.Second / time.Duration(rate))
			time.Sleep(time.Until(due))
		}
		jobs <- [2]int64{i, due.UnixNano()}
	}
	close(jobs)
	wg.Wait()
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "holds/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
