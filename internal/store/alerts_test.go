package store

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// lowBelow is low at or below 2, restocked from 5.
type lowBelow struct{}

func (lowBelow) Low(_ string, wasLow bool, available int64) bool {
	if wasLow {
		return available < 5
	}
	return available <= 2
}

func kinds(t *testing.T, db *DB) []string {
	t.Helper()
	alerts, err := db.Alerts(context.Background(), 0, 100)
	require.NoError(t, err)
	var out []string
	for _, a := range alerts {
		out = append(out, a.Kind+":"+a.SKU+a.Device)
	}
	return out
}

func TestDB_Alerts(t *testing.T) {
	dir := t.TempDir()
	var notified []Committed
	db, err := Open(t.Context(), dir, Options{Warehouse: "wh1", LowStock: lowBelow{}, Notify: func(c Committed) { notified = append(notified, c) }})
	require.NoError(t, err)
	apply := func(events ...Event) {
		_, err := db.Apply(t.Context(), &Batch{Events: events})
		require.NoError(t, err)
	}
	apply(ev("d1", "1", "receive", "S", 10))
	apply(ev("d1", "2", "sale", "S", -8))   // 2: low
	apply(ev("d1", "3", "sale", "S", -1))   // 1: still low, no new alert
	apply(ev("d1", "4", "receive", "S", 3)) // 4: below the restock level
	apply(ev("d1", "5", "receive", "S", 1)) // 5: restocked
	apply(ev("d1", "6", "receive", "S", 1)) // 6: nothing
	require.Equal(t, []string{"low_stock:S", "restocked:S"}, kinds(t, db))
	require.NotEmpty(t, notified)
	require.Equal(t, []string{"S"}, notified[0].SKUs)

	neg := ev("d1", "7", "sale", "N", -2)
	apply(neg) // 0 -> -2: negative, and low
	apply(ev("d1", "8", "sale", "N", -1))
	require.Equal(t, []string{"low_stock:S", "restocked:S", "negative_stock:N", "low_stock:N"}, kinds(t, db))

	gap := func(id string, seq int64) Event {
		e := ev("scan9", id, "receive", "G", 1)
		e.DeviceSeq = seq
		return e
	}
	apply(gap("g1", 1), gap("g2", 2), gap("g2", 2), gap("g5", 5))
	apply(gap("g6", 6), gap("g9", 9))
	alerts, err := db.Alerts(t.Context(), 0, 100)
	require.NoError(t, err)
	var gaps [][2]int64
	for _, a := range alerts {
		if a.Kind == AlertDeviceGap {
			gaps = append(gaps, [2]int64{a.Expected, a.Got})
		}
	}
	require.Equal(t, [][2]int64{{3, 5}, {7, 9}}, gaps)

	// State survives a restart: N stays low, no alert repeats.
	require.NoError(t, db.Close())
	db = openTestRule(t, dir)
	_, err = db.Apply(t.Context(), &Batch{Events: []Event{ev("d1", "9", "sale", "N", -1)}})
	require.NoError(t, err)
	low, err := db.LowOf(t.Context(), []string{"N"})
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"N": true}, low)
	n, err := db.Alerts(t.Context(), 0, 100)
	require.NoError(t, err)
	require.Len(t, n, len(alerts))
}

func openTestRule(t *testing.T, dir string) *DB {
	db, err := Open(t.Context(), dir, Options{Warehouse: "wh1", LowStock: lowBelow{}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}
