package pgstore

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/edgestock/edgestock/internal/store/storetest"
	"github.com/edgestock/edgestock/internal/testenv"
)

// The PostgreSQL store keeps the same contract as SQLite, run by the same
// suite (storetest), with crdt as the oracle.
func TestConformance_PostgreSQL(t *testing.T) {
	db, err := Open(t.Context(), testenv.PostgresDSN(t), func() {}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	storetest.Run(t, db)
}

func TestLines_PostgreSQL(t *testing.T) {
	db, err := Open(t.Context(), testenv.PostgresDSN(t), func() {}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	storetest.Lines(t, db)
}

func TestLinks_PostgreSQL(t *testing.T) {
	db, err := Open(t.Context(), testenv.PostgresDSN(t), func() {}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	storetest.Links(t, db)
	storetest.LinksHeld(t, db)
}

func TestChannels_PostgreSQLHub(t *testing.T) {
	// One schema for every history (one each would exhaust the server's
	// connections): a fresh history starts from empty tables.
	dsn := testenv.PostgresDSN(t)
	storetest.Channels(t, func(rt *rapid.T, fresh bool) storetest.Backend {
		db, err := Open(t.Context(), dsn, func() {}, slog.New(slog.DiscardHandler))
		require.NoError(rt, err)
		if fresh {
			_, err = db.pool.Exec(t.Context(), `TRUNCATE counters, escrow, promises, lines, hub_holds, events`)
			require.NoError(rt, err)
		}
		return db
	})
}
