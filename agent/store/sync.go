package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/edgestock/edgestock/crdt"
)

// Entry is one PN-counter entry: a replica's (P, N) for a stock key, as the
// sync protocol carries it. Entries are states, not operations: merging the
// same entry twice, or an older one after a newer, changes nothing.
type Entry struct {
	Warehouse string
	Location  string
	SKU       string
	Replica   string
	crdt.Entry
}

// DeltaPage is a page of entries changed since a cursor.
type DeltaPage struct {
	Entries []Entry
	Next    int64 // the cursor to ask from next
	More    bool  // more entries are waiting past Next
}

// Deltas returns up to limit entries whose version is above since, in
// version order. A key changed many times since the cursor is one entry.
func (db *DB) Deltas(ctx context.Context, since int64, limit int) (DeltaPage, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT warehouse, location, sku, replica, p, n, version FROM counters
		WHERE version > ? ORDER BY version LIMIT ?`, since, limit+1)
	if err != nil {
		return DeltaPage{}, fmt.Errorf("query deltas: %w", err)
	}
	defer rows.Close()
	page := DeltaPage{Next: since}
	for rows.Next() {
		var e Entry
		var version int64
		if err := rows.Scan(&e.Warehouse, &e.Location, &e.SKU, &e.Replica, &e.P, &e.N, &version); err != nil {
			return DeltaPage{}, fmt.Errorf("query deltas: %w", err)
		}
		if len(page.Entries) == limit {
			page.More = true
			break
		}
		page.Entries = append(page.Entries, e)
		page.Next = version
	}
	return page, rows.Err()
}

// MergeOp merges foreign entries (from the hub) and records the hub's
// cursor in the same transaction, so a crash can never keep one without
// the other. The store sets Changed before the batch's done callback runs.
type MergeOp struct {
	Entries   []Entry
	HubCursor string
	Now       time.Time
	Changed   int // entries that raised a stored (P, N)
}

const sqlMergeEntry = `INSERT INTO counters(warehouse, location, sku, replica, p, n, version, updated_at) VALUES (?,?,?,?,?,?,?,?)
	ON CONFLICT (warehouse, sku, location, replica) DO UPDATE SET
		p = max(p, excluded.p), n = max(n, excluded.n), version = excluded.version, updated_at = excluded.updated_at
	WHERE excluded.p > p OR excluded.n > n`

func (db *DB) applyMerge(ctx context.Context, s *boundStmts, st *txState, op *MergeOp) error {
	op.Changed = 0
	for _, e := range op.Entries {
		// The version is taken only if the row changes; an unchanged row
		// keeps its version, so re-sent entries do not show up as deltas.
		next := db.version + 1
		res, err := s.tx.ExecContext(ctx, sqlMergeEntry, e.Warehouse, e.Location, e.SKU, e.Replica, int64(e.P), int64(e.N), next, op.Now.UnixMilli())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			db.version = next
			op.Changed++
			st.merged[stockKey{e.Warehouse, e.SKU, e.Location}] = true
		}
	}
	if op.HubCursor != "" {
		if _, err := s.tx.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES ('hub_cursor', ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, op.HubCursor); err != nil {
			return err
		}
	}
	_, err := s.tx.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES ('last_merge', ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, strconv.FormatInt(op.Now.UnixMilli(), 10))
	return err
}

// SyncState is what the agent tells the hub about itself.
type SyncState struct {
	Replica   string
	HubCursor string
	LastMerge time.Time // zero before the first merge
}

// SyncState reads the replica ID, the stored hub cursor and the last merge.
func (db *DB) SyncState(ctx context.Context) (SyncState, error) {
	st := SyncState{Replica: db.replicaID}
	for key, dst := range map[string]*string{"hub_cursor": &st.HubCursor} {
		if err := db.reader.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(dst); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return st, fmt.Errorf("read sync state: %w", err)
		}
	}
	var ms string
	err := db.reader.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'last_merge'`).Scan(&ms)
	switch {
	case err == nil:
		n, _ := strconv.ParseInt(ms, 10, 64)
		st.LastMerge = time.UnixMilli(n).UTC()
	case !errors.Is(err, sql.ErrNoRows):
		return st, fmt.Errorf("read sync state: %w", err)
	}
	return st, nil
}

// GlobalStock sums a SKU over every warehouse this store holds state of.
func (db *DB) GlobalStock(ctx context.Context, sku string) (map[string]int64, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT warehouse, SUM(p) - SUM(n) FROM counters WHERE sku = ? GROUP BY warehouse`, sku)
	if err != nil {
		return nil, fmt.Errorf("query global stock: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var wh string
		var n int64
		if err := rows.Scan(&wh, &n); err != nil {
			return nil, fmt.Errorf("query global stock: %w", err)
		}
		out[wh] = n
	}
	return out, rows.Err()
}
