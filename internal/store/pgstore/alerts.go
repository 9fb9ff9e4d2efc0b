package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edgestock/edgestock/internal/store"
)

// applyLinks records each link state that changed, and the alert the
// change raises (store.LinkState.Decide), under the write lock: hub
// processes that see the same change record it once.
func (db *DB) applyLinks(ctx context.Context, tx pgx.Tx, links []store.LinkState) (alerts int, err error) {
	for _, l := range links {
		key := "link:" + l.Warehouse
		var prev string
		err := tx.QueryRow(ctx, `SELECT value FROM meta WHERE key = $1`, key).Scan(&prev)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return alerts, err
		}
		value, kind := l.Decide(prev)
		if value == prev {
			continue
		}
		if _, err := tx.Exec(ctx, `INSERT INTO meta(key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
			key, value); err != nil {
			return alerts, err
		}
		if kind == "" {
			continue
		}
		if _, err := tx.Exec(ctx, `INSERT INTO alerts(kind, warehouse, created_at) VALUES ($1, $2, $3)`,
			kind, l.Warehouse, time.Now().UnixMilli()); err != nil {
			return alerts, err
		}
		alerts++
	}
	return alerts, nil
}

// Alerts returns up to limit outbox rows with seq > since, in order.
func (db *DB) Alerts(ctx context.Context, since int64, limit int) ([]store.Alert, error) {
	rows, err := db.pool.Query(ctx, `SELECT seq, kind, warehouse, created_at FROM alerts WHERE seq > $1 ORDER BY seq LIMIT $2`, since, limit)
	if err != nil {
		return nil, fmt.Errorf("query alerts: %w", err)
	}
	defer rows.Close()
	var out []store.Alert
	for rows.Next() {
		var a store.Alert
		var created int64
		if err := rows.Scan(&a.Seq, &a.Kind, &a.Warehouse, &created); err != nil {
			return nil, fmt.Errorf("query alerts: %w", err)
		}
		a.CreatedAt = time.UnixMilli(created).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}
