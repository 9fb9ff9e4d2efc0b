package pgstore

import (
	"fmt"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/crdt"
	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/internal/testenv"
)

func openBoundsTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(t.Context(), testenv.PostgresDSN(t), func() {}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func pgEntry(wh, sku, replica string, p, n uint64) store.Entry {
	return store.Entry{Warehouse: wh, Location: "default", SKU: sku, Replica: replica, Entry: crdt.Entry{P: p, N: n}}
}

func pgLevel(t *testing.T, db *DB, sku string) int64 {
	t.Helper()
	levels, err := db.SKUsStock(t.Context(), []string{sku})
	require.NoError(t, err)
	var sum int64
	for _, l := range levels {
		sum = store.AddOnHand(sum, l.OnHand)
	}
	return sum
}

// As the SQLite store: merges are held to store.MaxTotal per entry and per
// SKU, at the boundary, and a refused merge keeps nothing, cursor included.
func TestDB_MergeBound(t *testing.T) {
	db := openBoundsTest(t)
	merge := func(cursor string, entries ...store.Entry) error {
		_, err := db.Apply(t.Context(), &store.Batch{Merges: []*store.MergeOp{{Entries: entries, Now: time.Now(), Cursor: cursor, CursorKey: "cursor:wh2"}}})
		return err
	}
	require.NoError(t, merge("c1", pgEntry("wh2", "S", "wh2.a", store.MaxTotal-1, 0), pgEntry("wh3", "S", "wh3.a", 1, store.MaxTotal)))
	require.EqualValues(t, 0, pgLevel(t, db, "S"))
	err := merge("c2", pgEntry("wh3", "S", "wh3.b", 1, 0))
	require.ErrorIs(t, err, store.ErrOutOfRange)
	require.ErrorContains(t, err, "sku S")
	require.ErrorIs(t, merge("c2", pgEntry("wh2", "T", "wh2.a", store.MaxTotal+1, 0)), store.ErrOutOfRange)
	cursor, err := db.Meta(t.Context(), "cursor:wh2")
	require.NoError(t, err)
	require.Equal(t, "c1", cursor)

	// The finding's merge: 1,030 entries of 2^53.
	var many []store.Entry
	for i := range 1030 {
		many = append(many, pgEntry("wh2", "U", fmt.Sprint("wh2.", i), store.MaxTotal, 0))
	}
	require.ErrorIs(t, merge("c3", many...), store.ErrOutOfRange)
	require.EqualValues(t, 0, pgLevel(t, db, "U"))
}

// Central writes cannot take a SKU past the bound: such an event is
// OutOfRange, the rest of its batch applies.
func TestDB_EventsBound(t *testing.T) {
	db := openBoundsTest(t)
	_, err := db.Apply(t.Context(), &store.Batch{Merges: []*store.MergeOp{{Entries: []store.Entry{pgEntry("wh2", "S", "wh2.a", store.MaxTotal-1, 0)}, Now: time.Now()}}})
	require.NoError(t, err)
	ev := func(id string, qty int64) store.Event {
		return store.Event{Device: "erp", ID: id, BodyHash: []byte(id), Type: "receive", Warehouse: "wh1", Location: "default", SKU: "S",
			Qty: qty, Delta: qty, Source: "http", ReceivedAt: time.Now()}
	}
	out, err := db.Apply(t.Context(), &store.Batch{Events: []store.Event{ev("1", 1), ev("2", 1)}})
	require.NoError(t, err)
	require.Equal(t, store.Applied, out[0].Status, "up to the bound exactly")
	require.Equal(t, store.OutOfRange, out[1].Status)
	require.EqualValues(t, store.MaxTotal, pgLevel(t, db, "S"))
}

// A database filled before the bound was kept still reads, clamped.
func TestDB_ReadsDoNotOverflow(t *testing.T) {
	db := openBoundsTest(t)
	for i := range 1030 {
		_, err := db.pool.Exec(t.Context(), `INSERT INTO counters(warehouse, location, sku, replica, p, n, version, updated_at)
			VALUES ('wh1', 'default', 'X', $1, $2, 0, 1, 0)`, fmt.Sprint("r", i), int64(store.MaxTotal))
		require.NoError(t, err)
	}
	require.Equal(t, int64(math.MaxInt64), pgLevel(t, db, "X"))
}
