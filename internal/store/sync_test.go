package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/edgestock/edgestock/crdt"
)

// Replaying, duplicating and reordering merged batches changes nothing: the
// stored state is the per-replica max of everything received.
func TestDB_MergeReplayReorder(t *testing.T) {
	db := openTest(t, t.TempDir())
	run := 0
	rapid.Check(t, func(t *rapid.T) {
		run++
		sku := fmt.Sprint("M-", run)
		entry := rapid.Custom(func(t *rapid.T) Entry {
			return Entry{Warehouse: rapid.SampledFrom([]string{"wh2", "wh3"}).Draw(t, "wh"), Location: "default", SKU: sku,
				Replica: rapid.SampledFrom([]string{"wh2.a", "wh2.b", "wh3.a"}).Draw(t, "replica"),
				Entry:   crdt.Entry{P: rapid.Uint64Range(0, 100).Draw(t, "p"), N: rapid.Uint64Range(0, 100).Draw(t, "n")}}
		})
		batches := rapid.SliceOfN(rapid.SliceOfN(entry, 1, 5), 1, 6).Draw(t, "batches")
		want := map[string]map[string]crdt.PNCounter{} // warehouse -> replica entries
		for _, b := range batches {
			for _, e := range b {
				if want[e.Warehouse] == nil {
					want[e.Warehouse] = map[string]crdt.PNCounter{}
				}
				c := want[e.Warehouse]["x"]
				c.MergeEntry(e.Replica, e.Entry)
				want[e.Warehouse]["x"] = c
			}
		}
		// Deliver in a random order, some batches more than once.
		order := rapid.Permutation(batches).Draw(t, "order")
		order = append(order, rapid.SliceOfN(rapid.SampledFrom(batches), 0, 4).Draw(t, "again")...)
		for _, b := range order {
			_, err := db.Apply(context.Background(), &Batch{Merges: []*MergeOp{{Entries: b, Now: time.Now()}}})
			require.NoError(t, err)
		}
		levels, err := db.SKUsStock(context.Background(), []string{sku})
		require.NoError(t, err)
		got := map[string]int64{}
		for _, l := range levels {
			got[l.Warehouse] = l.OnHand
		}
		for wh, c := range want {
			require.Equal(t, c["x"].Value(), got[wh], wh)
		}
	})
}

func TestDB_Deltas(t *testing.T) {
	db := openTest(t, t.TempDir())
	_, err := db.Apply(t.Context(), &Batch{Events: []Event{ev("d1", "1", "receive", "A", 5), ev("d1", "2", "receive", "B", 3), ev("d1", "3", "sale", "A", -2)}})
	require.NoError(t, err)
	page, err := db.Deltas(t.Context(), 0, 1, "")
	require.NoError(t, err)
	require.Len(t, page.Entries, 1)
	require.True(t, page.More)
	page, err = db.Deltas(t.Context(), page.Next, 10, "")
	require.NoError(t, err)
	require.Len(t, page.Entries, 1, "one entry per key, however many events changed it")
	require.False(t, page.More)
	next := page.Next
	page, err = db.Deltas(t.Context(), next, 10, "")
	require.NoError(t, err)
	require.Empty(t, page.Entries)

	// A merge that raises nothing makes no delta; one that raises an entry does.
	own, err := db.Deltas(t.Context(), 0, 10, "")
	require.NoError(t, err)
	_, err = db.Apply(t.Context(), &Batch{Merges: []*MergeOp{{Entries: own.Entries, Now: time.Now(), Cursor: "h-1"}}})
	require.NoError(t, err)
	page, err = db.Deltas(t.Context(), next, 10, "")
	require.NoError(t, err)
	require.Empty(t, page.Entries, "re-sent entries are not changes")
	st, err := db.SyncState(t.Context())
	require.NoError(t, err)
	require.Equal(t, "h-1", st.HubCursor)
	require.False(t, st.LastMerge.IsZero())
}
