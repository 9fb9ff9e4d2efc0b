package store

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// One device flooding the quarantine: payloads are cut to MaxPayload, and
// past the device's quota (then the total) rows keep coming, saying their
// payload was not stored; retention frees the quota again, and the usage
// survives a restart.
func TestDB_QuarantineLimits(t *testing.T) {
	dir := t.TempDir()
	limits := QuarantineLimits{MaxPayload: 1000, DeviceBytes: 3000, TotalBytes: 5000, MaxAge: time.Hour, MaxRows: 6}
	db, err := Open(t.Context(), dir, Options{Warehouse: "wh1", Quarantine: limits})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	now := time.Now()
	reject := func(db *DB, device string, size int, at time.Time) {
		t.Helper()
		_, err := db.Apply(t.Context(), &Batch{Rejected: []Rejected{{Source: "mqtt", Device: device, Reason: "bad_json", Message: "not JSON",
			Payload: bytes.Repeat([]byte("x"), size), ReceivedAt: at}}})
		require.NoError(t, err)
	}
	for range 5 {
		reject(db, "d1", 250<<10, now)
	}
	for range 3 {
		reject(db, "d2", 1000, now)
	}
	rows, err := db.Quarantine(t.Context(), 0, 100)
	require.NoError(t, err)
	require.Len(t, rows, 8, "every rejection is recorded")
	var stored []int
	for _, r := range rows {
		stored = append(stored, len(r.Payload))
	}
	require.Equal(t, []int{1000, 1000, 1000, 0, 0, 1000, 1000, 0}, stored)
	require.Contains(t, rows[0].Message, "payload truncated: first 1000 of 256000 bytes kept")
	require.Contains(t, rows[3].Message, "not stored: device d1 is over its quarantine quota of 3000 bytes")
	require.Contains(t, rows[7].Message, "not stored: the quarantine is over its total quota of 5000 bytes")
	total, notStored := db.QuarantineUsage()
	require.EqualValues(t, 5000, total)
	require.EqualValues(t, 3, notStored)

	// Retention by size: the two oldest rows go, and d1 may store again.
	deleted, err := db.PruneQuarantine(t.Context(), now)
	require.NoError(t, err)
	require.EqualValues(t, 2, deleted)
	total, _ = db.QuarantineUsage()
	require.EqualValues(t, 3000, total)
	reject(db, "d1", 10, now)
	rows, err = db.Quarantine(t.Context(), 0, 100)
	require.NoError(t, err)
	require.Len(t, rows[len(rows)-1].Payload, 10)

	// Retention by age, and the usage read back after a restart.
	reject(db, "d3", 10, now.Add(-2*time.Hour))
	deleted, err = db.PruneQuarantine(t.Context(), now)
	require.NoError(t, err)
	require.EqualValues(t, 2, deleted, "the old row, and the oldest past 6 rows") // 7 rows before
	require.NoError(t, db.Close())
	db, err = Open(t.Context(), dir, Options{Warehouse: "wh1", Quarantine: limits})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	total, _ = db.QuarantineUsage()
	rows, err = db.Quarantine(t.Context(), 0, 100)
	require.NoError(t, err)
	var want int64
	for _, r := range rows {
		want += int64(len(r.Payload))
	}
	require.Equal(t, want, total, fmt.Sprint(len(rows), " rows"))
}
