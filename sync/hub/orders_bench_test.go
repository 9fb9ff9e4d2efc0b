package hub_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/crdt"
	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/internal/store/pgstore"
	"github.com/edgestock/edgestock/internal/testenv"
	"github.com/edgestock/edgestock/sync/hub"
)

// benchClients is how many order clients run at once.
const benchClients = 8

// allotments are wh1's rights for the bench channel: plenty of each SKU.
func allotments(skus int) *store.MergeOp {
	op := &store.MergeOp{Now: time.Now()}
	for i := range skus {
		op.Escrow = append(op.Escrow, store.EscrowEntry{Warehouse: "wh1", SKU: fmt.Sprint("B-", i), EscrowEntry: crdt.EscrowEntry{
			EscrowKey: crdt.EscrowKey{Replica: "wh1.0123456789abcdef", Kind: crdt.Move, Holder: store.LocalHolder, To: "bench"}, Total: 1 << 40}})
	}
	return op
}

// BenchmarkHub_Orders: orders of one line, one unit, from 8 clients at
// once, on one hot SKU and spread over 10,000; on SQLite and on
// PostgreSQL with two hub processes (clients alternate between them).
// The warehouse is offline throughout: orders spend the rights the hub
// holds. Reports orders/s and the p50 and p99 latency.
func BenchmarkHub_Orders(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, skus := range []int{1, 10_000} {
			b.Run(fmt.Sprintf("%s/skus=%d", backend, skus), func(b *testing.B) {
				var dsn string
				hubs := 1
				if backend == "postgres" {
					dsn, hubs = testenv.PostgresDSN(b), 2
					db, err := pgstore.Open(context.Background(), dsn, func() {}, slog.New(slog.DiscardHandler))
					require.NoError(b, err)
					_, err = db.Apply(context.Background(), &store.Batch{Merges: []*store.MergeOp{allotments(skus)}})
					require.NoError(b, err)
					require.NoError(b, db.Close())
				}
				var bases []string
				for range hubs {
					dir := b.TempDir()
					if dsn == "" {
						db, err := store.Open(context.Background(), dir, store.Options{Warehouse: "hub"})
						require.NoError(b, err)
						_, err = db.Apply(context.Background(), &store.Batch{Merges: []*store.MergeOp{allotments(skus)}})
						require.NoError(b, err)
						require.NoError(b, db.Close())
					}
					cfg := hub.Config{Store: dsn, DataDir: dir, HTTP: "127.0.0.1:0", Agents: []hub.Agent{{Warehouse: "wh1", URL: "http://127.0.0.1:1"}}}
					h := hub.NewServer(cfg, slog.New(slog.DiscardHandler))
					require.NoError(b, h.Open(context.Background()))
					b.Cleanup(func() { _ = h.Close(context.Background()) })
					bases = append(bases, "http://"+h.HTTPAddr())
				}
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients}}
				var next atomic.Int64
				lat := make([][]time.Duration, benchClients)
				b.ResetTimer()
				start := time.Now()
				var wg stdsync.WaitGroup
				for c := range benchClients {
					wg.Go(func() {
						rng := rand.New(rand.NewPCG(uint64(c), 1))
						for {
							i := next.Add(1)
							if i > int64(b.N) {
								return
							}
							body := fmt.Sprintf(`{"id":"o-%d","channel":"bench","lines":[{"sku":"B-%d","qty":1}]}`, i, rng.IntN(skus))
							t0 := time.Now()
							resp, err := client.Post(bases[int(i)%len(bases)]+"/v1/orders", "application/json", strings.NewReader(body))
							if err != nil {
								b.Error(err)
								return
							}
							resp.Body.Close()
							lat[c] = append(lat[c], time.Since(t0))
							if resp.StatusCode != http.StatusCreated {
								b.Errorf("order %d: %s", i, resp.Status)
								return
							}
						}
					})
				}
				wg.Wait()
				took := time.Since(start)
				b.StopTimer()
				all := slices.Concat(lat...)
				slices.Sort(all)
				b.ReportMetric(float64(b.N)/took.Seconds(), "orders/s")
				b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
			})
		}
	}
}
