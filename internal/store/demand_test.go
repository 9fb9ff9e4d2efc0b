package store

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A demand write lands whole: rows, alerts and the cursor together, and
// the alerts reach the outbox with their cover and lead time.
func TestDB_Demand(t *testing.T) {
	db := openTest(t, t.TempDir())
	ctx := t.Context()
	at := time.UnixMilli(1_700_000_000_000).UTC()
	_, err := db.Apply(ctx, &Batch{Demand: &DemandOp{Cursor: 42,
		Rows: []DemandRow{{Warehouse: "wh1", SKU: "A", State: []byte{1, 2}, AtRisk: true, UpdatedAt: at},
			{Warehouse: "wh1", SKU: "B", State: []byte{3}, UpdatedAt: at}},
		Alerts: []Alert{{Kind: AlertStockoutRisk, Warehouse: "wh1", SKU: "A", Level: 3, DaysOfCover: 1.5, LeadTimeDays: 4}},
	}})
	require.NoError(t, err)
	cursor, err := db.DemandCursor(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(42), cursor)
	rows, err := db.DemandOf(ctx, "wh1", []string{"A", "B", "C"})
	require.NoError(t, err)
	require.Equal(t, map[string]DemandRow{
		"A": {Warehouse: "wh1", SKU: "A", State: []byte{1, 2}, AtRisk: true, UpdatedAt: at},
		"B": {Warehouse: "wh1", SKU: "B", State: []byte{3}, UpdatedAt: at},
	}, rows)
	alerts, err := db.Alerts(ctx, 0, 10)
	require.NoError(t, err)
	require.Len(t, alerts, 1)
	require.Equal(t, AlertStockoutRisk, alerts[0].Kind)
	require.Equal(t, 1.5, alerts[0].DaysOfCover)
	require.Equal(t, 4.0, alerts[0].LeadTimeDays)

	// Updated in place; pages in SKU order with a prefix.
	_, err = db.Apply(ctx, &Batch{Demand: &DemandOp{Cursor: 50, Rows: []DemandRow{{Warehouse: "wh1", SKU: "A", State: []byte{9}, UpdatedAt: at}}}})
	require.NoError(t, err)
	page, err := db.DemandPage(ctx, "wh1", "", "", 10)
	require.NoError(t, err)
	require.Len(t, page, 2)
	require.Equal(t, []byte{9}, page[0].State)
	require.False(t, page[0].AtRisk)
	page, err = db.DemandPage(ctx, "wh1", "", "A", 10)
	require.NoError(t, err)
	require.Equal(t, "B", page[0].SKU)
	page, err = db.DemandPage(ctx, "wh1", "A", "", 10)
	require.NoError(t, err)
	require.Len(t, page, 1)
	cursor, err = db.DemandCursor(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(50), cursor)
}

// OwnDeltas hands the hub the store's own warehouse alone, and its cursor
// moves past the rest.
func TestDB_OwnDeltas(t *testing.T) {
	db := openTest(t, t.TempDir()) // warehouse wh1
	ctx := t.Context()
	_, err := db.Apply(ctx, &Batch{Merges: []*MergeOp{{Now: time.Now(), Entries: []Entry{
		entry("wh2", "default", "X", "wh2.0123456789abcdef", 5, 0)}}}})
	require.NoError(t, err)
	page, err := db.OwnDeltas(ctx, 0, 100)
	require.NoError(t, err)
	require.Empty(t, page.Entries, "wh2's entry is the hub's already")
	require.Positive(t, page.Next, "the cursor moved past it")
	_, err = db.Apply(ctx, &Batch{Events: []Event{ev("d1", "e1", "receive", "Y", 3)}})
	require.NoError(t, err)
	page, err = db.OwnDeltas(ctx, page.Next, 100)
	require.NoError(t, err)
	require.Len(t, page.Entries, 1)
	require.Equal(t, "wh1", page.Entries[0].Warehouse)
	all, err := db.Deltas(ctx, 0, 100, "")
	require.NoError(t, err)
	require.Len(t, all.Entries, 2, "Deltas still has both")
}
