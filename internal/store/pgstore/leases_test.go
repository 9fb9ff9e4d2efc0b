package pgstore

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/internal/testenv"
)

// A lease is held by one process at a time; when the holder's lease
// connection dies, another takes it at a new epoch, and a page the old
// holder pulled before it knew is refused (fenced) instead of merged over
// the new holder's cursor. A store in another schema of the same database
// has leases of its own.
func TestLease_EpochFencesTheLoser(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	ctx := t.Context()
	open := func(dsn string) *DB {
		db, err := Open(ctx, dsn, func() {}, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	a, b := open(dsn), open(dsn)
	const name = "agent:wh1"
	ea, err := a.Lease(ctx, name)
	require.NoError(t, err)
	require.Equal(t, int64(1), ea)
	eb, err := b.Lease(ctx, name)
	require.NoError(t, err)
	require.Zero(t, eb, "held by a")
	other := open(testenv.PostgresDSN(t)) // another schema
	eo, err := other.Lease(ctx, name)
	require.NoError(t, err)
	require.Equal(t, int64(1), eo, "another schema's lease of the same name is its own")

	merge := func(db *DB, epoch int64, qty uint64, cursor string) error {
		_, err := db.Apply(ctx, &store.Batch{Merges: []*store.MergeOp{{
			Entries: []store.Entry{pgEntry("wh1", "L-1", "wh1.r", qty, 0)}, Cursor: cursor, CursorKey: "cursor:agent:wh1",
			Fence: store.Fence{Lease: name, Epoch: epoch}, Now: time.Now(),
		}}})
		return err
	}
	require.NoError(t, merge(a, ea, 5, "c1"))

	// a's lease connection dies (a network cut, say); a does not know yet.
	var pid int32
	require.NoError(t, a.leases.conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid))
	var ok bool
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&ok))
	require.True(t, ok)
	require.Eventually(t, func() bool {
		eb, err = b.Lease(ctx, name)
		return err == nil && eb > 0
	}, 10*time.Second, 20*time.Millisecond, "b never took the lease")
	require.Equal(t, int64(2), eb)
	require.NoError(t, merge(b, eb, 9, "c3"))

	// a's page, pulled under epoch 1, comes in late: refused, cursor kept.
	err = merge(a, ea, 7, "c2")
	require.ErrorIs(t, err, store.ErrFenced)
	cursor, err := b.Meta(ctx, "cursor:agent:wh1")
	require.NoError(t, err)
	require.Equal(t, "c3", cursor)
	require.Equal(t, int64(9), pgLevel(t, b, "L-1"))

	// a learns at its next check that the lease went.
	require.Eventually(t, func() bool {
		e, err := a.Lease(ctx, name)
		return err == nil && e == 0
	}, 10*time.Second, 50*time.Millisecond)
}
