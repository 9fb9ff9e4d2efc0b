package store

import (
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// Checkpoints run on their own connection: the WAL is copied into the
// database and truncated on close.
func TestDB_Checkpoint(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)
	var events []Event
	for i := range 2000 {
		events = append(events, ev("d1", fmt.Sprint(i), "receive", fmt.Sprint("SKU-", i), 1))
	}
	_, err := db.Apply(t.Context(), &Batch{Events: events})
	require.NoError(t, err)
	var busy, frames, done int
	require.NoError(t, db.ckpt.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &done))
	require.Positive(t, frames)
	require.Equal(t, frames, done, "a passive checkpoint copies every committed frame")
	require.NoError(t, db.Close())
	fi, err := os.Stat(db.path + "-wal")
	if err == nil {
		require.Zero(t, fi.Size(), "close truncates the WAL")
	}
}
