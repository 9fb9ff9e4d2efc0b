package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edgestock/edgestock/crdt"
	"github.com/edgestock/edgestock/internal/store"
)

// mergeEscrow merges one total (the maximum wins) and reports whether the
// stored total grew.
func mergeEscrow(ctx context.Context, tx pgx.Tx, e store.EscrowEntry, now int64) (bool, error) {
	if e.Total > store.MaxTotal {
		return false, &store.RangeError{Warehouse: e.Warehouse, SKU: e.SKU, Replica: e.Replica, Side: "escrow " + string(e.Kind), Total: e.Total}
	}
	tag, err := tx.Exec(ctx, `INSERT INTO escrow(warehouse, sku, replica, kind, holder, to_holder, total, version, updated_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7,nextval('counter_version'),$8)
		ON CONFLICT (warehouse, sku, replica, kind, holder, to_holder) DO UPDATE SET
			total = excluded.total, version = excluded.version, updated_at = excluded.updated_at
		WHERE excluded.total > escrow.total`,
		e.Warehouse, e.SKU, e.Replica, string(e.Kind), e.Holder, e.To, int64(e.Total), now)
	return err == nil && tag.RowsAffected() > 0, err
}

// escrowRows reads rows of (group, replica, kind, holder, to_holder,
// total) into one counter per group.
func escrowRows(rows pgx.Rows, err error) (map[string]crdt.Escrow, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]crdt.Escrow{}
	for rows.Next() {
		var group, kind string
		var total int64
		var x crdt.EscrowEntry
		if err := rows.Scan(&group, &x.Replica, &kind, &x.Holder, &x.To, &total); err != nil {
			return nil, err
		}
		if err := (*store.KindScanner)(&x.Kind).Scan(kind); err != nil {
			return nil, err
		}
		x.Total = uint64(total)
		e := out[group]
		e.MergeEntry(x)
		out[group] = e
	}
	return out, rows.Err()
}

// applyPromise applies p all or none, once per id (store.Promise.Decide).
// Every write holds the write lock, so the rights it reads cannot change
// under it, in this process or any other on the database.
func (db *DB) applyPromise(ctx context.Context, tx pgx.Tx, p *store.Promise) error {
	if p.ID != "" {
		var hash, body []byte
		err := tx.QueryRow(ctx, `SELECT body_hash, body FROM promises WHERE id = $1`, p.ID).Scan(&hash, &body)
		if err == nil {
			p.Result = store.PromiseResult{Status: store.PromiseExisted, Body: body}
			if !bytes.Equal(hash, p.BodyHash) {
				p.Result.Status = store.PromiseIDReused
			}
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
	}
	holds := pgHubHolds{db: db, ctx: ctx, tx: tx}
	entries, err := p.Decide(db.replica, store.RightsView{Escrow: holds.EscrowOf,
		Held: func(warehouse, sku, channel string) (int64, error) {
			return holds.Held(warehouse, sku, channel, time.Now(), p.ExceptHold())
		}})
	if err != nil || p.Result.Status != store.PromiseOK {
		return err
	}
	now := time.Now().UnixMilli()
	for _, x := range entries {
		if _, err := mergeEscrow(ctx, tx, x, now); err != nil {
			return err
		}
	}
	for _, l := range p.Lines {
		if _, err := tx.Exec(ctx, `INSERT INTO lines(id, warehouse, sku, channel, qty, cancelled, version, updated_at)
			VALUES ($1,$2,$3,$4,$5,$6,nextval('counter_version'),$7)
			ON CONFLICT (id) DO UPDATE SET cancelled = TRUE, version = excluded.version, updated_at = excluded.updated_at
			WHERE excluded.cancelled AND NOT lines.cancelled`, l.ID, l.Warehouse, l.SKU, l.Channel, l.Qty, l.Cancelled, now); err != nil {
			return err
		}
	}
	if p.ID != "" {
		_, err = tx.Exec(ctx, `INSERT INTO promises(id, body_hash, body, created_at) VALUES ($1, $2, $3, $4)`,
			p.ID, append([]byte{}, p.BodyHash...), append([]byte{}, p.Body...), now)
	}
	return err
}

// RightsBySKU reads sku's rights in every warehouse, by warehouse.
func (db *DB) RightsBySKU(ctx context.Context, sku string) (map[string]crdt.Escrow, error) {
	out, err := escrowRows(db.pool.Query(ctx, `SELECT warehouse, replica, kind, holder, to_holder, total FROM escrow WHERE sku = $1`, sku))
	if err != nil {
		return nil, fmt.Errorf("postgres rights: %w", err)
	}
	return out, nil
}

// PromiseOf reads promise id's body hash and the answer stored with it.
func (db *DB) PromiseOf(ctx context.Context, id string) (hash, body []byte, found bool, err error) {
	err = db.pool.QueryRow(ctx, `SELECT body_hash, body FROM promises WHERE id = $1`, id).Scan(&hash, &body)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("postgres promise: %w", err)
	}
	return hash, body, true, nil
}

// pgHubHolds is the hub-hold rule's view of a PostgreSQL write transaction
// (store.ApplyHubHold).
type pgHubHolds struct {
	db  *DB
	ctx context.Context
	tx  pgx.Tx
}

func (t pgHubHolds) GetHubHold(id string) (store.HubHold, []byte, bool, error) {
	return store.ScanHubHold(t.tx.QueryRow(t.ctx, store.SQLGetHubHold, id), pgx.ErrNoRows)
}

func (t pgHubHolds) InsertHubHold(h store.HubHold, hash []byte) error {
	_, err := t.tx.Exec(t.ctx, `INSERT INTO hub_holds(`+store.HubHoldColumns+`, body_hash, version)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10, nextval('counter_version'))`,
		h.ID, h.Warehouse, h.SKU, h.Channel, h.Qty, string(h.State), h.CreatedAt.UnixMilli(), h.ExpiresAt.UnixMilli(), h.OrderID,
		append([]byte{}, hash...))
	return err
}

func (t pgHubHolds) UpdateHubHold(h store.HubHold) error {
	_, err := t.tx.Exec(t.ctx, `UPDATE hub_holds SET state = $1, expires_at = $2, order_id = $3, version = nextval('counter_version') WHERE id = $4`,
		string(h.State), h.ExpiresAt.UnixMilli(), h.OrderID, h.ID)
	return err
}

func (t pgHubHolds) ExpireHubHolds(now time.Time) (int, error) {
	tag, err := t.tx.Exec(t.ctx, `UPDATE hub_holds SET state = 'expired', version = nextval('counter_version')
		WHERE state = 'active' AND expires_at <= $1`, now.UnixMilli())
	return int(tag.RowsAffected()), err
}

// HoldChanges lists the SKUs whose hub holds on channel changed with a
// version in (since, upto], and the highest such version (0: none).
func (db *DB) HoldChanges(ctx context.Context, channel string, since, upto int64) ([]string, int64, error) {
	rows, err := db.pool.Query(ctx, store.SQLHoldChanges, channel, since, upto)
	if err != nil {
		return nil, 0, fmt.Errorf("postgres holds: %w", err)
	}
	return store.ScanHoldChanges(pgRows{rows}, nil)
}

// pgRows is pgx.Rows with database/sql's Close.
type pgRows struct{ pgx.Rows }

func (r pgRows) Close() error { r.Rows.Close(); return nil }

var _ store.HubHoldTx = pgHubHolds{}

func (t pgHubHolds) EscrowOf(warehouse, sku string) (crdt.Escrow, error) {
	m, err := escrowRows(t.tx.Query(t.ctx, `SELECT sku, replica, kind, holder, to_holder, total FROM escrow
		WHERE warehouse = $1 AND sku = $2`, warehouse, sku))
	return m[sku], err
}

func (t pgHubHolds) Held(warehouse, sku, channel string, now time.Time, except string) (int64, error) {
	var n int64
	err := t.tx.QueryRow(t.ctx, store.SQLHeld, warehouse, sku, channel, now.UnixMilli(), except).Scan(&n)
	return n, err
}

func (t pgHubHolds) ApplyPromise(p *store.Promise) error { return t.db.applyPromise(t.ctx, t.tx, p) }

// HeldBySKU sums, per warehouse, the active hub holds of sku on channel
// unexpired at now.
func (db *DB) HeldBySKU(ctx context.Context, sku, channel string, now time.Time) (map[string]int64, error) {
	rows, err := db.pool.Query(ctx, `SELECT warehouse, SUM(qty)::bigint FROM hub_holds
		WHERE sku = $1 AND channel = $2 AND state = 'active' AND expires_at > $3 GROUP BY warehouse`, sku, channel, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("postgres holds: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var wh string
		var n int64
		if err := rows.Scan(&wh, &n); err != nil {
			return nil, fmt.Errorf("postgres holds: %w", err)
		}
		out[wh] = n
	}
	return out, rows.Err()
}

// HubHold reads a hub hold.
func (db *DB) HubHold(ctx context.Context, id string) (store.HubHold, bool, error) {
	h, _, found, err := store.ScanHubHold(db.pool.QueryRow(ctx, store.SQLGetHubHold, id), pgx.ErrNoRows)
	return h, found, err
}

// MetaPrefix reads every metadata value whose key starts with prefix.
func (db *DB) MetaPrefix(ctx context.Context, prefix string) (map[string]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT key, value FROM meta WHERE left(key, length($1)) = $1`, prefix)
	if err != nil {
		return nil, fmt.Errorf("postgres meta: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("postgres meta: %w", err)
		}
		out[k] = v
	}
	return out, rows.Err()
}

// Exclusive makes this process the one of every hub process on the
// database that does the work named name (delivering a webhook, say),
// until release, or until its connection drops, when another process
// takes it over: a session advisory lock held on a connection of its own,
// taken out of the pool (held for a process's life, pooled connections
// would starve the pool's other users). ok is false while another process
// holds it.
func (db *DB) Exclusive(ctx context.Context, name string) (release func(), ok bool, err error) {
	return db.exclusive(ctx, lockKey, name)
}

// exclusive is Exclusive with the lock's key made by key (lockKey, or
// globalLockKey) from name.
func (db *DB) exclusive(ctx context.Context, key, name string) (release func(), ok bool, err error) {
	pooled, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("postgres lock: %w", err)
	}
	if err := pooled.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+key+`)`, name).Scan(&ok); err != nil || !ok {
		pooled.Release()
		return nil, false, err
	}
	conn := pooled.Hijack()
	return func() { _ = conn.Close(context.Background()) }, true, nil // closing ends the session and its lock
}

// HoldCeiling is the highest version a hub hold's change took (0: none).
func (db *DB) HoldCeiling(ctx context.Context) (int64, error) {
	var n int64
	if err := db.pool.QueryRow(ctx, store.SQLHoldCeiling).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres holds: %w", err)
	}
	return n, nil
}
