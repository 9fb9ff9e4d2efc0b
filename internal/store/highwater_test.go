package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// copyDir copies every file of from into to as new files.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(to, e.Name()), b, 0o600))
	}
}

// A restart keeps the replica ID; any copy of the data dir opened as a
// data dir of its own starts a new incarnation, high-water files and all.
func TestDB_CopyIsNewIncarnation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(ctx, dir, Options{Warehouse: "wh1"})
	require.NoError(t, err)
	_, err = db.Apply(ctx, &Batch{Events: []Event{ev("d1", "1", "receive", "S", 3)}})
	require.NoError(t, err)
	replica := db.ReplicaID()
	require.NoError(t, db.Close())

	db = openTest(t, dir)
	require.Equal(t, replica, db.ReplicaID(), "a plain restart is the same incarnation")
	require.NoError(t, db.Close())

	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, copied string)
	}{
		{"copied onto new files", func(*testing.T, string) {}},
		{"copied without its high-water file", func(t *testing.T, copied string) {
			require.NoError(t, os.Remove(filepath.Join(copied, FileName+highWaterSuffix)))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			copied := t.TempDir()
			copyDir(t, dir, copied)
			tc.setup(t, copied)
			c := openTest(t, copied)
			require.NotEqual(t, replica, c.ReplicaID())
			require.Equal(t, int64(3), onHand(t, c, "S"), "the copy keeps the stock")
			require.NoError(t, c.Close())
			c = openTest(t, copied)
			require.NotEqual(t, replica, c.ReplicaID())
		})
	}
}

// Reincarnate gives a new replica ID at once and keeps every entry.
func TestDB_Reincarnate(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, t.TempDir())
	_, err := db.Apply(ctx, &Batch{Events: []Event{ev("d1", "1", "receive", "S", 3)}})
	require.NoError(t, err)
	old := db.ReplicaID()
	require.NoError(t, db.Reincarnate(ctx, old, "test"))
	require.NotEqual(t, old, db.ReplicaID())
	second := db.ReplicaID()
	require.NoError(t, db.Reincarnate(ctx, old, "a second request with the same cursor"))
	require.Equal(t, second, db.ReplicaID(), "one new incarnation, not one per request")
	_, err = db.Apply(ctx, &Batch{Events: []Event{ev("d1", "2", "receive", "S", 2)}})
	require.NoError(t, err)
	require.Equal(t, int64(5), onHand(t, db, "S"))
}

// A database opened beside its owner (the token CLI) decides nothing about
// the replica: even where the owner would start a new incarnation, it
// neither does nor writes a high-water file.
func TestDB_BesideDecidesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openTest(t, dir)
	_, err := db.Apply(ctx, &Batch{Events: []Event{ev("d1", "1", "receive", "S", 3)}})
	require.NoError(t, err)
	replica := db.ReplicaID()
	require.NoError(t, db.Close())
	hwm := filepath.Join(dir, FileName+highWaterSuffix)
	require.NoError(t, os.Remove(hwm)) // what a restored copy looks like

	beside, err := Open(ctx, dir, Options{Beside: true})
	require.NoError(t, err)
	require.Equal(t, replica, beside.ReplicaID(), "no incarnation from beside")
	require.NoError(t, beside.Close())
	_, err = os.Stat(hwm)
	require.ErrorIs(t, err, os.ErrNotExist, "no high-water file from beside")
}
