package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// Under a steady ingest that never lets the writer idle, the WAL file
// stays near walCheckpointBytes instead of growing until a checkpoint
// happens to catch up: measured after every commit, while four times the
// limit flows through it.
func TestDB_WALBoundedUnderSteadyIngest(t *testing.T) {
	dir := t.TempDir()
	var maxWAL, commits atomic.Int64
	wal := filepath.Join(dir, FileName+"-wal")
	db, err := Open(t.Context(), dir, Options{Warehouse: "wh1", Observe: func(int, time.Duration, error) {
		commits.Add(1)
		if fi, err := os.Stat(wal); err == nil && fi.Size() > maxWAL.Load() {
			maxWAL.Store(fi.Size())
		}
	}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })

	const (
		payload   = 8 << 10
		perBatch  = 4
		producers = 4
	)
	total := 4 * walCheckpointBytes / payload // rejections, each stored whole
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := p * perBatch; i < total; i += producers * perBatch {
				b := &Batch{}
				for j := range perBatch {
					b.Rejected = append(b.Rejected, Rejected{Source: "test", Device: fmt.Sprint("d", p), Reason: "bad_json",
						Payload: bytes.Repeat([]byte{byte(i + j)}, payload), ReceivedAt: time.Now()})
				}
				_, err := db.Apply(t.Context(), b)
				require.NoError(t, err)
			}
		})
	}
	wg.Wait()
	n, err := db.Count(t.Context(), CountQuarantine)
	require.NoError(t, err)
	require.EqualValues(t, total, n)
	// A commit adds at most maxTxEvents payloads past the limit; here far
	// fewer fit in one transaction's gathering of producers*perBatch.
	bound := int64(walCheckpointBytes + 2*producers*perBatch*(payload+4096))
	require.LessOrEqual(t, maxWAL.Load(), bound, "WAL grew to %d bytes over %d commits", maxWAL.Load(), commits.Load())
}
