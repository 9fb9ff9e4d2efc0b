package pgstore

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

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
