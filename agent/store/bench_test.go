package store

import (
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
// warehouse's level, holds, low state, last merge), which live topics also
// run for every changed SKU, in a catalog of one SKU and of 20,000.
func BenchmarkDB_StockView(b *testing.B) {
	for _, catalog := range []int{1, 20000} {
		b.Run(fmt.Sprintf("catalog=%d", catalog), func(b *testing.B) {
			db, err := Open(b.Context(), b.TempDir(), Options{Warehouse: "wh1"})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			for done := 0; done < catalog; {
				batch := make([]Event, min(maxTxEvents, catalog-done))
				for i := range batch {
					batch[i] = Event{Device: "d1", ID: fmt.Sprint(done + i), BodyHash: []byte{1}, Type: "receive", Warehouse: "wh1",
						Location: "default", SKU: fmt.Sprint("SKU-", done+i), Qty: 5, Delta: 5, Source: "mqtt", ReceivedAt: time.Now()}
				}
				if _, err := db.Apply(b.Context(), &Batch{Events: batch}); err != nil {
					b.Fatal(err)
				}
				done += len(batch)
			}
			ctx := b.Context()
			cpu := testenv.ProcessCPU()
			for b.Loop() {
				if l, err := db.SKUStock(ctx, "SKU-0"); err != nil || len(l) != 1 {
					b.Fatal(l, err)
				}
				if _, err := db.Reserved(ctx, "wh1", "SKU-0", time.Now()); err != nil {
					b.Fatal(err)
				}
				if _, err := db.IsLow(ctx, "SKU-0"); err != nil {
					b.Fatal(err)
				}
				if _, err := db.LastMerge(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((testenv.ProcessCPU()-cpu)/time.Microsecond)/float64(b.N), "cpu-µs/op")
		})
	}
}
