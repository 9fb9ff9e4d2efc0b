package store

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// DemandCursorKey is the meta key of the last event seq the replenishment
// follower learned from.
const DemandCursorKey = "replenish:seq"

// DemandRow is one SKU's replenishment state (SPEC §12): its learned
// demand, encoded by internal/replenish, and whether a stockout_risk alert
// is raised.
type DemandRow struct {
	Warehouse, SKU string
	State          []byte
	AtRisk         bool
	UpdatedAt      time.Time
}

// DemandOp is the replenishment follower's write: the demand and risk
// states as of the events up to Cursor, and the alerts their crossings
// raise, with the cursor, in one transaction, so an event is learned from
// exactly once and a crossing alerted exactly once, whatever crashes.
type DemandOp struct {
	Cursor int64 // the last events.seq read
	Rows   []DemandRow
	Alerts []Alert
}

func (db *DB) applyDemand(ctx context.Context, s *boundStmts, st *txState, op *DemandOp, now time.Time) error {
	for _, r := range op.Rows {
		if _, err := s.tx.ExecContext(ctx, `INSERT INTO demand(warehouse, sku, state, at_risk, updated_at) VALUES (?,?,?,?,?)
			ON CONFLICT (warehouse, sku) DO UPDATE SET state = excluded.state, at_risk = excluded.at_risk, updated_at = excluded.updated_at`,
			r.Warehouse, r.SKU, r.State, r.AtRisk, r.UpdatedAt.UnixMilli()); err != nil {
			return err
		}
	}
	for _, a := range op.Alerts {
		if err := s.addAlert(ctx, st, a, now); err != nil {
			return err
		}
	}
	_, err := s.tx.ExecContext(ctx, sqlSetMeta, DemandCursorKey, strconv.FormatInt(op.Cursor, 10))
	return err
}

// DemandCursor reads the last event seq the follower learned from.
func (db *DB) DemandCursor(ctx context.Context) (int64, error) {
	v, err := db.Meta(ctx, DemandCursorKey)
	if err != nil || v == "" {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// sqlDemandOf reads the demand rows of some SKUs of a warehouse.
var sqlDemandOf = newSKUQuery(`SELECT warehouse, sku, state, at_risk, updated_at FROM demand WHERE warehouse = ? AND %s`)

// DemandOf reads the rows of skus in warehouse (absent: never sold).
func (db *DB) DemandOf(ctx context.Context, warehouse string, skus []string) (map[string]DemandRow, error) {
	out := map[string]DemandRow{}
	if len(skus) == 0 {
		return out, nil
	}
	query, arg := sqlDemandOf.of(skus)
	rows, err := db.reader.QueryContext(ctx, query, warehouse, arg)
	if err != nil {
		return nil, fmt.Errorf("query demand: %w", err)
	}
	return out, scanDemand(rows, func(r DemandRow) { out[r.SKU] = r })
}

// DemandPage reads up to limit rows of warehouse with SKUs after after (""
// for the start) starting with prefix, in SKU order.
func (db *DB) DemandPage(ctx context.Context, warehouse, prefix, after string, limit int) ([]DemandRow, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT warehouse, sku, state, at_risk, updated_at FROM demand
		WHERE warehouse = ?1 AND sku > ?2 AND substr(sku, 1, length(?3)) = ?3 ORDER BY sku LIMIT ?4`, warehouse, after, prefix, limit)
	if err != nil {
		return nil, fmt.Errorf("query demand: %w", err)
	}
	var out []DemandRow
	return out, scanDemand(rows, func(r DemandRow) { out = append(out, r) })
}

func scanDemand(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close() error
}, each func(DemandRow)) error {
	defer rows.Close()
	for rows.Next() {
		var r DemandRow
		var updated int64
		if err := rows.Scan(&r.Warehouse, &r.SKU, &r.State, &r.AtRisk, &updated); err != nil {
			return fmt.Errorf("query demand: %w", err)
		}
		r.UpdatedAt = time.UnixMilli(updated).UTC()
		each(r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("query demand: %w", err)
	}
	return nil
}

// DemandEvent is what replenishment reads of a logged event.
type DemandEvent struct {
	Seq        int64
	Type       string
	Warehouse  string
	SKU        string
	Qty        int64
	DeviceTS   string
	ReceivedAt time.Time
}

// DemandEvents returns up to limit log entries with seq > since, in seq
// order, with only the columns replenishment needs (Events reads all).
func (db *DB) DemandEvents(ctx context.Context, since int64, limit int) ([]DemandEvent, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT seq, type, warehouse, sku, qty, device_ts, received_at
		FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, since, limit)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	defer rows.Close()
	out := make([]DemandEvent, 0, min(limit, 1024))
	for rows.Next() {
		var e DemandEvent
		var received int64
		if err := rows.Scan(&e.Seq, &e.Type, &e.Warehouse, &e.SKU, &e.Qty, &e.DeviceTS, &received); err != nil {
			return nil, fmt.Errorf("query events: %w", err)
		}
		e.ReceivedAt = time.UnixMilli(received).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	return out, nil
}
