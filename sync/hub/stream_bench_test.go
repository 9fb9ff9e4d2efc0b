package hub_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/sync/hub"
)

// benchStreamClients is how many stream clients listen at once.
const benchStreamClients = 1000

// BenchmarkHub_Stream: 1,000 clients on the hub's stream of one SKU; each
// iteration commits a receive at the agent and waits until every client
// has the new level. Reports the latency from the agent's acknowledgement
// to each client's event (p50, p99 over all clients and iterations) and
// the heap per connected idle client.
func BenchmarkHub_Stream(b *testing.B) {
	a := startAgent(b, "wh1", b.TempDir())
	cfg := hub.Config{DataDir: b.TempDir(), HTTP: "127.0.0.1:0", Agents: []hub.Agent{{Warehouse: "wh1", URL: a.Base}},
		Timing: hub.Timing{PollWait: 20 * time.Second, RetryMax: time.Second}}
	h := hub.NewServer(cfg, logger())
	require.NoError(b, h.Open(context.Background()))
	defer h.Close(context.Background())
	postJSON(b, a.Base+"/v1/events", `{"id":"r0","type":"receive","sku":"B","qty":1}`)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type seen struct {
		level int64
		at    time.Time
	}
	got := make(chan seen, benchStreamClients*4)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchStreamClients}}
	var ready stdsync.WaitGroup
	for range benchStreamClients {
		ready.Add(1)
		go func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+h.HTTPAddr()+"/v1/stream?sku=B", nil)
			resp, err := client.Do(req)
			if err != nil {
				ready.Done()
				return
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			first := true
			for sc.Scan() {
				line := sc.Text()
				if !strings.HasPrefix(line, "data: ") {
					continue
				}
				var c hub.FeedChange
				if json.Unmarshal([]byte(line[6:]), &c) == nil {
					if first { // the level at connection
						first = false
						ready.Done()
						continue
					}
					got <- seen{c.OnHand, time.Now()}
				}
			}
		}()
	}
	ready.Wait()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)

	var lat []time.Duration
	level := int64(1)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		level++
		postJSON(b, a.Base+"/v1/events", fmt.Sprintf(`{"id":"r%d","type":"receive","sku":"B","qty":1}`, i+1))
		acked := time.Now()
		for n := 0; n < benchStreamClients; {
			s := <-got
			if s.level == level {
				lat = append(lat, s.at.Sub(acked))
				n++
			}
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/benchStreamClients/1024, "KiB/client")
}
