package hub_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/sync/hub"
)

var (
	benchEvents = flag.Int("bench-events", 1_000_000, "events the agent ingests while the hub is away")
	benchSKUs   = flag.Int("bench-skus", 50_000, "SKUs they spread over")
)

// countingListener counts the bytes an agent's HTTP server writes.
type countingListener struct {
	net.Listener
	written *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	return countingConn{Conn: c, written: l.written}, err
}

type countingConn struct {
	net.Conn
	written *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.written.Add(int64(n))
	return n, err
}

// BenchmarkHub_Reconnect: an agent ingests -bench-events events over
// -bench-skus SKUs while the hub is unreachable; then the hub comes up.
// Reports the time until the hub holds every key (convergence), the bytes
// the agent sent, and the entries pulled (they grow with changed keys,
// not with events).
func BenchmarkHub_Reconnect(b *testing.B) {
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		db, err := store.Open(context.Background(), dir, store.Options{Warehouse: "wh1"})
		require.NoError(b, err)
		const perTx = 1000
		var total int64
		for i := 0; i < *benchEvents; i += perTx {
			batch := make([]store.Event, 0, perTx)
			for j := i; j < min(i+perTx, *benchEvents); j++ {
				batch = append(batch, store.Event{Device: "d1", ID: fmt.Sprint(j), BodyHash: []byte{1}, Type: "receive",
					Warehouse: "wh1", Location: "default", SKU: fmt.Sprint("SKU-", j%*benchSKUs), Qty: 1, Delta: 1, Source: "bench", ReceivedAt: time.Now()})
				total++
			}
			_, err := db.Apply(context.Background(), &store.Batch{Events: batch})
			require.NoError(b, err)
		}
		require.NoError(b, db.Close())

		a := startAgent(b, "wh1", dir) // reuses the data dir: the events are there
		var written atomic.Int64
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(b, err)
		srv := &http.Server{Handler: proxyTo(a.Base)}
		go srv.Serve(countingListener{Listener: ln, written: &written})
		defer srv.Close()

		b.StartTimer()
		start := time.Now()
		cfg := hub.Config{DataDir: b.TempDir(), HTTP: "127.0.0.1:0", Agents: []hub.Agent{{Warehouse: "wh1", URL: "http://" + ln.Addr().String()}}}
		h := hub.NewServer(cfg, logger())
		require.NoError(b, h.Open(context.Background()))
		hubURL := "http://" + h.HTTPAddr()
		var pulled int64
		for {
			var ws struct{ Warehouses []hub.WarehouseStatus }
			resp, err := http.Get(hubURL + "/v1/warehouses")
			require.NoError(b, err)
			require.NoError(b, jsonDecode(resp.Body, &ws))
			if pulled = ws.Warehouses[0].Pulled; pulled >= int64(*benchSKUs) && !ws.Warehouses[0].Pending {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		took := time.Since(start)
		b.StopTimer()
		b.ReportMetric(took.Seconds(), "converge-s")
		b.ReportMetric(float64(written.Load())/1e6, "MB-sent")
		b.ReportMetric(float64(pulled), "entries")
		b.ReportMetric(float64(total), "events")
		require.NoError(b, h.Close(context.Background()))
		b.StartTimer()
	}
}

// BenchmarkHub_Latency: with the hub connected, an event committed at the
// agent until the hub's long-polled feed shows it; p50 and p99.
func BenchmarkHub_Latency(b *testing.B) {
	a := startAgent(b, "wh1", b.TempDir())
	cfg := hub.Config{DataDir: b.TempDir(), HTTP: "127.0.0.1:0", Agents: []hub.Agent{{Warehouse: "wh1", URL: a.Base}}}
	h := hub.NewServer(cfg, logger())
	require.NoError(b, h.Open(context.Background()))
	defer h.Close(context.Background())
	hubURL := "http://" + h.HTTPAddr()
	var lat []time.Duration
	cursor := ""
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		postJSON(b, a.Base+"/v1/events", fmt.Sprintf(`{"id":"%d","type":"receive","sku":"L","qty":1}`, i))
		for seen := false; !seen; {
			var feed struct {
				Changes []hub.FeedChange
				Next    string
			}
			resp, err := http.Get(hubURL + "/v1/feed?wait=10s&since=" + cursor)
			require.NoError(b, err)
			require.NoError(b, jsonDecode(resp.Body, &feed))
			cursor = feed.Next
			for _, c := range feed.Changes {
				seen = seen || c.OnHand == int64(i+1)
			}
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

func proxyTo(base string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, base+r.URL.RequestURI(), r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
}

func jsonDecode(r io.ReadCloser, v any) error {
	defer r.Close()
	return json.NewDecoder(r).Decode(v)
}
