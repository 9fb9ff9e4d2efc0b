package store

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/crdt"
)

func entry(wh, loc, sku, replica string, p, n uint64) Entry {
	return Entry{Warehouse: wh, Location: loc, SKU: sku, Replica: replica, Entry: crdt.Entry{P: p, N: n}}
}

// Merges are held to MaxTotal per entry and per SKU (over warehouses,
// locations and replicas), at the boundary; a refused merge writes nothing,
// not even its cursor.
func TestDB_MergeBound(t *testing.T) {
	const max = MaxTotal
	for _, tc := range []struct {
		name    string
		entries []Entry
		refused string // "" when the merge must pass; else the side named
	}{
		{"entry p at the bound", []Entry{entry("wh2", "default", "S", "wh2.a", max, 0)}, ""},
		{"entry n at the bound", []Entry{entry("wh2", "default", "S", "wh2.a", 0, max)}, ""},
		{"entry p past the bound", []Entry{entry("wh2", "default", "S", "wh2.a", max+1, 0)}, "p"},
		{"entry n past the bound", []Entry{entry("wh2", "default", "S", "wh2.a", 0, max+1)}, "n"},
		{"replicas summing to the bound", []Entry{entry("wh2", "default", "S", "wh2.a", max-1, 0), entry("wh2", "default", "S", "wh2.b", 1, 0)}, ""},
		{"replicas summing past it", []Entry{entry("wh2", "default", "S", "wh2.a", max, 0), entry("wh2", "default", "S", "wh2.b", 1, 0)}, "p"},
		{"locations summing past it", []Entry{entry("wh2", "A", "S", "wh2.a", max/2+1, 0), entry("wh2", "B", "S", "wh2.a", max/2, 0)}, "p"},
		{"warehouses summing past it", []Entry{entry("wh2", "default", "S", "wh2.a", 0, max), entry("wh3", "default", "S", "wh3.a", 0, 1)}, "n"},
		{"other SKUs do not count", []Entry{entry("wh2", "default", "S", "wh2.a", max, max), entry("wh2", "default", "T", "wh2.a", max, max)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openTest(t, t.TempDir())
			op := &MergeOp{Entries: tc.entries, Now: time.Now(), Cursor: "hub@1"}
			_, err := db.Apply(t.Context(), &Batch{Merges: []*MergeOp{op}})
			st, serr := db.SyncState(t.Context())
			require.NoError(t, serr)
			if tc.refused == "" {
				require.NoError(t, err)
				require.Equal(t, "hub@1", st.HubCursor)
				return
			}
			require.ErrorIs(t, err, ErrOutOfRange)
			require.ErrorContains(t, err, "S")
			var re *RangeError
			require.ErrorAs(t, err, &re)
			require.Equal(t, tc.refused, re.Side)
			require.Empty(t, st.HubCursor, "nothing of a refused merge is kept")
			levels, err := db.SKUsStock(t.Context(), []string{"S"})
			require.NoError(t, err)
			require.Empty(t, levels)
		})
	}
}

// The finding: one merge of 1,030 entries with p = 2^53 made SUM overflow,
// and every stock read of the SKU and the list failed from then on. The
// merge is refused; the reads keep working.
func TestDB_MergeOverflowRefused(t *testing.T) {
	db := openTest(t, t.TempDir())
	_, err := db.Apply(t.Context(), &Batch{Events: []Event{ev("d1", "1", "receive", "SKU-1", 7)}})
	require.NoError(t, err)
	var entries []Entry
	for i := range 1030 {
		entries = append(entries, entry("wh2", "default", "SKU-1", fmt.Sprint("wh2.", i), MaxTotal, 0))
	}
	_, err = db.Apply(t.Context(), &Batch{Merges: []*MergeOp{{Entries: entries, Now: time.Now()}}})
	require.ErrorIs(t, err, ErrOutOfRange)
	require.ErrorContains(t, err, "sku SKU-1")
	require.EqualValues(t, 7, onHand(t, db, "SKU-1"))
	skus, err := db.StockPage(t.Context(), "", "", 10)
	require.NoError(t, err)
	require.Equal(t, []string{"SKU-1"}, skus)
	// The same SKU's events still apply.
	_, err = db.Apply(t.Context(), &Batch{Events: []Event{ev("d1", "2", "receive", "SKU-1", 1)}})
	require.NoError(t, err)
	require.EqualValues(t, 8, onHand(t, db, "SKU-1"))
}

// The agent's own events cannot take a SKU past the bound either: an event
// that would is quarantined out_of_range, the rest of its batch applies,
// and a duplicate of an applied event stays a duplicate.
func TestDB_EventsBound(t *testing.T) {
	db := openTest(t, t.TempDir())
	_, err := db.Apply(t.Context(), &Batch{Merges: []*MergeOp{{Entries: []Entry{entry("wh2", "default", "SKU-1", "wh2.a", MaxTotal-5, MaxTotal-3)}, Now: time.Now()}}})
	require.NoError(t, err)
	batch := func(events ...Event) []Outcome {
		t.Helper()
		out, err := db.Apply(t.Context(), &Batch{Events: events})
		require.NoError(t, err)
		return out
	}
	out := batch(ev("d1", "1", "receive", "SKU-1", 5), ev("d1", "2", "receive", "SKU-2", 1))
	require.Equal(t, []Status{Applied, Applied}, []Status{out[0].Status, out[1].Status}, "up to the bound exactly")

	out = batch(ev("d1", "3", "receive", "SKU-1", 1), ev("d1", "4", "receive", "SKU-2", 1), ev("d1", "1", "receive", "SKU-1", 5))
	require.Equal(t, []Status{OutOfRange, Applied, Duplicate}, []Status{out[0].Status, out[1].Status, out[2].Status})
	out = batch(ev("d1", "5", "sale", "SKU-1", -3))
	require.Equal(t, Applied, out[0].Status, "n reaches the bound exactly")
	out = batch(ev("d1", "6", "sale", "SKU-1", -1))
	require.Equal(t, OutOfRange, out[0].Status)

	q, err := db.Quarantine(t.Context(), 0, 10)
	require.NoError(t, err)
	require.Len(t, q, 2)
	require.Equal(t, string(OutOfRange), q[0].Reason)
	require.Equal(t, "3", q[0].EventID)
	require.Contains(t, q[0].Message, "SKU-1")
	require.EqualValues(t, 2, onHand(t, db, "SKU-2"))
	require.EqualValues(t, 5-3, onHand(t, db, "SKU-1"), "wh1's own entry: the refused events left nothing")
}

// A database filled before the bound was kept (SUM past 2^63) still
// reads: levels saturate instead of failing every read of the SKU.
func TestDB_ReadsDoNotOverflow(t *testing.T) {
	db := openTest(t, t.TempDir())
	for i := range 1030 {
		_, err := db.writer.Exec(`INSERT INTO counters(warehouse, location, sku, replica, p, n, version, updated_at) VALUES ('wh1', 'default', 'X', ?, ?, 0, 1, 0)`,
			fmt.Sprint("r", i), int64(MaxTotal))
		require.NoError(t, err)
	}
	levels, err := db.SKUsStock(t.Context(), []string{"X"})
	require.NoError(t, err)
	require.Len(t, levels, 1)
	require.Equal(t, int64(math.MaxInt64), levels[0].OnHand)
	// And a merge that would raise it further is refused, not failed.
	_, err = db.Apply(t.Context(), &Batch{Merges: []*MergeOp{{Entries: []Entry{entry("wh2", "default", "X", "wh2.a", 1, 0)}, Now: time.Now()}}})
	require.ErrorIs(t, err, ErrOutOfRange)
}
