package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/edgestock/edgestock/internal/testenv"
)

// BenchmarkDB_Apply measures durable events/s by events per transaction:
// the reason group commit exists (one fsync per commit with synchronous=FULL).
// Events go to 100 SKUs, or all to one (the ingest benchmark's shape, where
// the event log, not the counters, is the work). The last case is the ingest
// benchmark's: 200 events a commit from four devices, whose ids interleave in
// the dedupe index. cpu-µs/event is the process's CPU time per event,
// steadier than events/s on a shared machine.
func BenchmarkDB_Apply(b *testing.B) {
	type shape struct{ skus, perTx, devices int }
	shapes := []shape{{100, 1, 1}, {100, 100, 1}, {100, 1000, 1}, {1, 1, 1}, {1, 100, 1}, {1, 1000, 1}, {1, 200, 4}}
	for _, sh := range shapes {
		name := fmt.Sprintf("skus=%d/events_per_tx=%d", sh.skus, sh.perTx)
		if sh.devices > 1 {
			name += fmt.Sprintf("/devices=%d", sh.devices)
		}
		b.Run(name, func(b *testing.B) {
			db, err := Open(b.Context(), b.TempDir(), Options{Warehouse: "wh1"})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			batch := make([]Event, sh.perTx)
			n := 0
			cpu := testenv.ProcessCPU()
			b.ResetTimer()
			for b.Loop() {
				for i := range batch {
					n++
					batch[i] = Event{Device: fmt.Sprint("d", n%sh.devices), ID: fmt.Sprint("run-", n), BodyHash: make([]byte, 32), Type: "receive", Warehouse: "wh1",
						Location: "default", SKU: fmt.Sprint("SKU-", n%sh.skus), Qty: 1, Delta: 1, Source: "mqtt", ReceivedAt: time.Now()}
				}
				if _, err := db.Apply(b.Context(), &Batch{Events: batch}); err != nil {
					b.Fatal(err)
				}
			}
			events := float64(b.N * sh.perTx)
			b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64((testenv.ProcessCPU()-cpu)/time.Microsecond)/events, "cpu-µs/event")
		})
	}
}

// BenchmarkDB_StockView: the reads behind one GET /v1/stock/{sku} (every
// warehouse's level, holds, low state, last merge), in a catalog of one SKU
// and of 20,000.
func BenchmarkDB_StockView(b *testing.B) {
	for _, catalog := range []int{1, 20000} {
		b.Run(fmt.Sprintf("catalog=%d", catalog), func(b *testing.B) {
			db := openCatalog(b, catalog)
			ctx := b.Context()
			cpu := testenv.ProcessCPU()
			for b.Loop() {
				if err := viewReads(ctx, db, []string{"SKU-0"}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((testenv.ProcessCPU()-cpu)/time.Microsecond)/float64(b.N), "cpu-µs/op")
		})
	}
}

// BenchmarkDB_StockViews: the reads behind the views of 500 SKUs of a
// 20,000-SKU catalog (a live-topic flush after a busy interval), one SKU
// at a time and all at once. cpu-µs/sku.
func BenchmarkDB_StockViews(b *testing.B) {
	db := openCatalog(b, 20000)
	skus := make([]string, 500)
	for i := range skus {
		skus[i] = fmt.Sprint("SKU-", i*40)
	}
	for _, batched := range []bool{false, true} {
		name := "reads=one_by_one"
		if batched {
			name = "reads=batched"
		}
		b.Run(name, func(b *testing.B) {
			ctx := b.Context()
			cpu := testenv.ProcessCPU()
			for b.Loop() {
				if batched {
					if err := viewReads(ctx, db, skus); err != nil {
						b.Fatal(err)
					}
					continue
				}
				for _, sku := range skus {
					if err := viewReads(ctx, db, []string{sku}); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64((testenv.ProcessCPU()-cpu)/time.Microsecond)/float64(b.N*len(skus)), "cpu-µs/sku")
		})
	}
}

// openCatalog opens a store holding 5 units of each of SKU-0 … SKU-{n-1}.
func openCatalog(b *testing.B, n int) *DB {
	db, err := Open(b.Context(), b.TempDir(), Options{Warehouse: "wh1"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	for done := 0; done < n; {
		batch := make([]Event, min(maxTxEvents, n-done))
		for i := range batch {
			batch[i] = Event{Device: "d1", ID: fmt.Sprint(done + i), BodyHash: []byte{1}, Type: "receive", Warehouse: "wh1",
				Location: "default", SKU: fmt.Sprint("SKU-", done+i), Qty: 5, Delta: 5, Source: "mqtt", ReceivedAt: time.Now()}
		}
		if _, err := db.Apply(b.Context(), &Batch{Events: batch}); err != nil {
			b.Fatal(err)
		}
		done += len(batch)
	}
	return db
}

// viewReads are the reads behind the stock views of skus (the agent's
// stockViews); it fails unless each SKU has its level.
func viewReads(ctx context.Context, db *DB, skus []string) error {
	levels, err := db.SKUsStock(ctx, skus)
	if err != nil {
		return err
	}
	if len(levels) != len(skus) {
		return fmt.Errorf("read %d levels of %d SKUs", len(levels), len(skus))
	}
	if _, err := db.ReservedOf(ctx, skus, time.Now()); err != nil {
		return err
	}
	if _, err := db.LowOf(ctx, skus); err != nil {
		return err
	}
	_, err = db.LastMerge(ctx)
	return err
}
