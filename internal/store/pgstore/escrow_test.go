package pgstore

import (
	"fmt"
	"log/slog"
	stdsync "sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/crdt"
	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/internal/testenv"
)

// Two hub processes on one database sell one channel's rights: 40 orders
// of one unit race for 6 allotted units, and exactly 6 are taken, whichever
// process takes them (SPEC §9: a spend atomic across hub processes).
func TestPromise_TwoProcessesSpendOnce(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	var dbs [2]*DB
	for i := range dbs {
		db, err := Open(t.Context(), dsn, func() {}, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		dbs[i] = db
	}
	allotted := store.EscrowEntry{Warehouse: "wh1", SKU: "SKU-R", EscrowEntry: crdt.EscrowEntry{
		EscrowKey: crdt.EscrowKey{Replica: "wh1.0123456789abcdef", Kind: crdt.Move, Holder: store.LocalHolder, To: "amazon"}, Total: 6}}
	_, err := dbs[0].Apply(t.Context(), &store.Batch{Merges: []*store.MergeOp{{Escrow: []store.EscrowEntry{allotted}, Now: time.Now()}}})
	require.NoError(t, err)

	var mu stdsync.Mutex
	var sold string // one id that was applied
	statuses := map[store.PromiseStatus]int{}
	var wg stdsync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			id := fmt.Sprint("order-", i)
			p := &store.Promise{ID: id, BodyHash: []byte(id), Body: []byte(id),
				Ops: []store.EscrowOp{{Warehouse: "wh1", SKU: "SKU-R", Kind: crdt.Spend, Holder: "amazon", Qty: 1}}}
			_, err := dbs[i%2].Apply(t.Context(), &store.Batch{Promises: []*store.Promise{p}})
			require.NoError(t, err)
			mu.Lock()
			statuses[p.Result.Status]++
			if p.Result.Status == store.PromiseOK {
				sold = id
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	require.Equal(t, map[store.PromiseStatus]int{store.PromiseOK: 6, store.PromiseInsufficient: 34}, statuses)
	rights, err := dbs[1].RightsBySKU(t.Context(), "SKU-R")
	require.NoError(t, err)
	e := rights["wh1"]
	require.Equal(t, int64(0), e.Rights("amazon"))
	require.Equal(t, int64(6), e.Committed("amazon"))

	// A promise of the local holder is the warehouse's, never the hub's.
	p := &store.Promise{Ops: []store.EscrowOp{{Warehouse: "wh1", SKU: "SKU-R", Kind: crdt.Move, Holder: store.LocalHolder, To: "ebay", Qty: 1}}}
	_, err = dbs[0].Apply(t.Context(), &store.Batch{Promises: []*store.Promise{p}})
	require.Error(t, err)
	hash, body, found, err := dbs[0].PromiseOf(t.Context(), sold)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, sold, string(body), "the answer stored with the order")
	require.Equal(t, sold, string(hash))
	_, _, found, err = dbs[0].PromiseOf(t.Context(), "order-none")
	require.NoError(t, err)
	require.False(t, found)
}

// A named hub process writes under one replica in every run, and no two
// running processes share a name (#17: hub.name).
func TestOpenAs_OneReplicaPerName(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	east, err := OpenAs(t.Context(), dsn, "east", func() {}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.Equal(t, "hub.east", east.ReplicaID())
	_, err = OpenAs(t.Context(), dsn, "east", func() {}, slog.New(slog.DiscardHandler))
	require.ErrorIs(t, err, ErrNameInUse)
	west, err := OpenAs(t.Context(), dsn, "west", func() {}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NoError(t, west.Close())
	require.NoError(t, east.Close())
	again, err := OpenAs(t.Context(), dsn, "east", func() {}, slog.New(slog.DiscardHandler))
	require.NoError(t, err, "a restart takes its name back")
	t.Cleanup(func() { _ = again.Close() })
	require.Equal(t, "hub.east", again.ReplicaID())
	anon, err := Open(t.Context(), dsn, func() {}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = anon.Close() })
	require.NotEqual(t, "hub.east", anon.ReplicaID())
}
