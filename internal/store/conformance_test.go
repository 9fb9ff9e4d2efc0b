package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/internal/store/storetest"
)

func TestConformance_SQLite(t *testing.T) {
	db, err := store.Open(context.Background(), t.TempDir(), store.Options{Warehouse: "hub"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	storetest.Run(t, db)
}

func TestLines_SQLite(t *testing.T) {
	db, err := store.Open(context.Background(), t.TempDir(), store.Options{Warehouse: "hub"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	storetest.Lines(t, db)
}

func TestChannels_SQLiteHub(t *testing.T) {
	var dir string
	storetest.Channels(t, func(rt *rapid.T, fresh bool) storetest.Backend {
		if fresh {
			dir = t.TempDir()
		}
		db, err := store.Open(context.Background(), dir, store.Options{Warehouse: "hub"})
		require.NoError(rt, err)
		return db
	})
}

func TestLinks_SQLite(t *testing.T) {
	db, err := store.Open(context.Background(), t.TempDir(), store.Options{Warehouse: "hub"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	storetest.Links(t, db)
	storetest.LinksHeld(t, db)
}
