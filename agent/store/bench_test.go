package store

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkDB_Apply measures durable events/s by events per transaction:
// the reason group commit exists (one fsync per commit with synchronous=FULL).
func BenchmarkDB_Apply(b *testing.B) {
	for _, perTx := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("events_per_tx=%d", perTx), func(b *testing.B) {
			db, err := Open(b.Context(), b.TempDir(), Options{Warehouse: "wh1"})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			batch := make([]Event, perTx)
			n := 0
			b.ResetTimer()
			for b.Loop() {
				for i := range batch {
					n++
					batch[i] = Event{Device: "d1", ID: fmt.Sprint(n), BodyHash: []byte{1}, Type: "receive", Warehouse: "wh1",
						Location: "default", SKU: fmt.Sprint("SKU-", n%100), Qty: 1, Delta: 1, Source: "bench", ReceivedAt: time.Now()}
				}
				if _, err := db.Apply(b.Context(), &Batch{Events: batch}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*perTx)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
