package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// StockLevel is one SKU's stock in one warehouse, summed over replicas.
type StockLevel struct {
	SKU       string
	Warehouse string
	OnHand    int64
	Locations map[string]int64
	UpdatedAt time.Time
}

// StockPage lists the SKUs of this warehouse in SKU order: those after
// `after` that start with prefix, at most limit of them.
func (db *DB) StockPage(ctx context.Context, prefix, after string, limit int) ([]string, error) {
	return db.skuList(ctx, sqlStockPage, db.warehouse, after, prefix, limit)
}

// levels runs a query of (sku, warehouse, location, on_hand, updated_at)
// rows in (sku, warehouse) order and gathers them into levels.
func (db *DB) levels(ctx context.Context, query string, args ...any) ([]StockLevel, error) {
	rows, err := db.reader.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query stock: %w", err)
	}
	defer rows.Close()
	var out []StockLevel
	for rows.Next() {
		var sku, wh, loc string
		var n, updated int64
		if err := rows.Scan(&sku, &wh, &loc, &n, &updated); err != nil {
			return nil, fmt.Errorf("query stock: %w", err)
		}
		out = AppendLocation(out, sku, wh, loc, n, updated)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query stock: %w", err)
	}
	return out, nil
}

// BySKU groups levels, in SKU order as SKUsStock returns them, by SKU.
func BySKU(levels []StockLevel) map[string][]StockLevel {
	out := make(map[string][]StockLevel)
	for _, l := range levels {
		out[l.SKU] = append(out[l.SKU], l)
	}
	return out
}

// AppendLocation adds one location's level to levels read in (SKU,
// warehouse) order: it starts a new StockLevel when the pair changes.
// updatedMs is the row's update time in Unix milliseconds.
func AppendLocation(levels []StockLevel, sku, warehouse, location string, n, updatedMs int64) []StockLevel {
	if k := len(levels); k == 0 || levels[k-1].SKU != sku || levels[k-1].Warehouse != warehouse {
		levels = append(levels, StockLevel{SKU: sku, Warehouse: warehouse, Locations: map[string]int64{}})
	}
	l := &levels[len(levels)-1]
	l.Locations[location] = n
	l.OnHand = AddOnHand(l.OnHand, n)
	if t := time.UnixMilli(updatedMs).UTC(); t.After(l.UpdatedAt) {
		l.UpdatedAt = t
	}
	return levels
}

// LoggedEvent is a row of the event log.
type LoggedEvent struct {
	Seq int64
	Event
}

// Events returns up to limit log entries with seq > since, in seq order.
func (db *DB) Events(ctx context.Context, since int64, limit int) ([]LoggedEvent, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT seq, device, event_id, type, warehouse, location, sku, to_location,
		qty, delta, channel, device_ts, device_seq, source, received_at FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, since, limit)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	defer rows.Close()
	var out []LoggedEvent
	for rows.Next() {
		var e LoggedEvent
		var received int64
		if err := rows.Scan(&e.Seq, &e.Device, &e.ID, &e.Type, &e.Warehouse, &e.Location, &e.SKU, &e.ToLocation,
			&e.Qty, &e.Delta, &e.Channel, &e.DeviceTS, &e.DeviceSeq, &e.Source, &received); err != nil {
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

// QuarantinedPayload is a row of the quarantine.
type QuarantinedPayload struct {
	Seq int64
	Rejected
}

// Quarantine returns up to limit quarantined payloads with seq > since.
func (db *DB) Quarantine(ctx context.Context, since int64, limit int) ([]QuarantinedPayload, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT seq, source, device, event_id, reason, message, payload, received_at
		FROM quarantine WHERE seq > ? ORDER BY seq LIMIT ?`, since, limit)
	if err != nil {
		return nil, fmt.Errorf("query quarantine: %w", err)
	}
	defer rows.Close()
	var out []QuarantinedPayload
	for rows.Next() {
		var q QuarantinedPayload
		var received int64
		if err := rows.Scan(&q.Seq, &q.Source, &q.Device, &q.EventID, &q.Reason, &q.Message, &q.Payload, &received); err != nil {
			return nil, fmt.Errorf("query quarantine: %w", err)
		}
		q.ReceivedAt = time.UnixMilli(received).UTC()
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query quarantine: %w", err)
	}
	return out, nil
}

// Ping checks that the database answers a query.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	return db.reader.QueryRowContext(ctx, `SELECT 1`).Scan(&one)
}

// The reads by SKU: GET /v1/stock/{sku}, the live topics and the stock
// lists (sqlSKUsStock, sqlSKUPage, across warehouses), and the holds and
// low-stock state of a set of SKUs. They search an index (counters_sku,
// holds_sku, low_skus' key); TestDB_SKUReadsUseIndex holds them to it.
var (
	// TOTAL, not SUM: exact while the totals stay within MaxTotal (every
	// partial sum is an integer below 2^53), and saturating instead of
	// failing past 2^63 in a database filled before the bound was kept.
	sqlSKUsStock = newSKUQuery(`SELECT sku, warehouse, location, ` + sqlLevel + `, MAX(updated_at) FROM counters
		WHERE %s GROUP BY sku, warehouse, location ORDER BY sku, warehouse, location`)
	// +expires_at: not a term for an index, or SQLite may range over
	// every active hold by expiry (holds_active) instead.
	sqlReservedOf = newSKUQuery(`SELECT sku, SUM(qty) FROM holds
		WHERE warehouse = ? AND %s AND state = 'active' AND +expires_at > ? GROUP BY sku`)
	sqlLowOf = newSKUQuery(`SELECT sku FROM low_skus WHERE warehouse = ? AND %s`)
)

// sqlLevel is a stock level, Σp − Σn, as the reads compute it (see
// sqlSKUsStock).
const sqlLevel = `CAST(TOTAL(p) - TOTAL(n) AS INTEGER)`

const (
	sqlSKUPage = `SELECT DISTINCT sku FROM counters WHERE sku > ?1 AND substr(sku, 1, length(?2)) = ?2
	ORDER BY sku LIMIT ?3`
	sqlStockPage = `SELECT DISTINCT sku FROM counters WHERE warehouse = ?1 AND sku > ?2 AND substr(sku, 1, length(?3)) = ?3
	ORDER BY sku LIMIT ?4`
	sqlLowPage = `SELECT sku FROM low_skus WHERE warehouse = ?1 AND sku > ?2 AND substr(sku, 1, length(?3)) = ?3
	ORDER BY sku LIMIT ?4`
)

// skuQuery is a read of a set of SKUs in its two texts. One SKU alone is a
// plain equality, some 8 % cheaper than json_each; more go in as one JSON
// array, so the text is the same whatever their number (read statements
// are cached per text).
type skuQuery struct{ one, list string }

// newSKUQuery makes a skuQuery of format, whose %s is the condition on the
// column sku.
func newSKUQuery(format string) skuQuery {
	return skuQuery{one: fmt.Sprintf(format, "sku = ?"), list: fmt.Sprintf(format, "sku IN (SELECT value FROM json_each(?))")}
}

// of returns the text reading skus (at least one) and the argument that
// stands for them.
func (q skuQuery) of(skus []string) (string, any) {
	if len(skus) == 1 {
		return q.one, skus[0]
	}
	list, _ := json.Marshal(skus) // strings always marshal
	return q.list, string(list)
}

// SKUsStock returns the level of each of skus in every warehouse this store
// holds state of, sorted by SKU, then warehouse; a SKU never seen has none.
func (db *DB) SKUsStock(ctx context.Context, skus []string) ([]StockLevel, error) {
	if len(skus) == 0 {
		return nil, nil
	}
	query, arg := sqlSKUsStock.of(skus)
	return db.levels(ctx, query, arg)
}

// SKUPage lists SKUs of any warehouse after `after` that start with prefix.
func (db *DB) SKUPage(ctx context.Context, prefix, after string, limit int) ([]string, error) {
	return db.skuList(ctx, sqlSKUPage, after, prefix, limit)
}

// skuList runs a query of SKUs.
func (db *DB) skuList(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := db.reader.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query skus: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var sku string
		if err := rows.Scan(&sku); err != nil {
			return nil, fmt.Errorf("query skus: %w", err)
		}
		out = append(out, sku)
	}
	return out, rows.Err()
}
