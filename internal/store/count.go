package store

import (
	"context"
	"fmt"
)

// Counter names a count the store can report for monitoring.
type Counter int

const (
	CountActiveHolds Counter = iota
	CountQuarantine
	CountDeviceGaps
	// CountUndeliveredAlerts is the outbox past the slowest sink's cursor.
	CountUndeliveredAlerts
)

var countSQL = map[Counter]string{
	CountActiveHolds: `SELECT COUNT(*) FROM holds WHERE state = 'active'`,
	CountQuarantine:  `SELECT COUNT(*) FROM quarantine`,
	CountDeviceGaps:  `SELECT COUNT(*) FROM alerts WHERE kind = 'device_gap'`,
	CountUndeliveredAlerts: `SELECT COALESCE((SELECT MAX(seq) FROM alerts), 0) - COALESCE(
		(SELECT MIN(CAST(value AS INTEGER)) FROM meta WHERE key LIKE 'cursor:alerts:%'), 0)`,
}

// Count reads one monitoring count.
func (db *DB) Count(ctx context.Context, c Counter) (int64, error) {
	q, ok := countSQL[c]
	if !ok {
		return 0, fmt.Errorf("count: unknown counter %d", c)
	}
	var n int64
	if err := db.reader.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return 0, fmt.Errorf("count: %w", err)
	}
	return n, nil
}

// CountChangedSince counts counter entries with a version above since.
func (db *DB) CountChangedSince(ctx context.Context, since int64) (int64, error) {
	var n int64
	if err := db.reader.QueryRowContext(ctx, `SELECT COUNT(*) FROM counters WHERE version > ?`, since).Scan(&n); err != nil {
		return 0, fmt.Errorf("count: %w", err)
	}
	return n, nil
}
