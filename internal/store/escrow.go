package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/edgestock/edgestock/crdt"
)

// Safety sets the safety stock of a (warehouse, sku): units local holds
// and allotments leave alone, for loss nobody recorded (SPEC §9).
type Safety struct {
	Warehouse, SKU string
	Qty            int64
}

const (
	sqlEscrowOf  = `SELECT replica, kind, holder, to_holder, total FROM escrow WHERE warehouse = ? AND sku = ?`
	sqlSafetyOf  = `SELECT qty FROM safety WHERE warehouse = ? AND sku = ?`
	sqlSetSafety = `INSERT INTO safety(warehouse, sku, qty, updated_at) VALUES (?,?,?,?)
		ON CONFLICT (warehouse, sku) DO UPDATE SET qty = excluded.qty, updated_at = excluded.updated_at`
	sqlGetPromise    = `SELECT body_hash, body FROM promises WHERE id = ?`
	sqlInsertPromise = `INSERT INTO promises(id, body_hash, body, created_at) VALUES (?,?,?,?)`
)

// scanEscrow reads rows of (replica, kind, holder, to_holder, total) into
// a counter.
func scanEscrow(rows *sql.Rows, err error) (crdt.Escrow, error) {
	var e crdt.Escrow
	if err != nil {
		return e, err
	}
	defer rows.Close()
	for rows.Next() {
		var x crdt.EscrowEntry
		if err := rows.Scan(&x.Replica, (*KindScanner)(&x.Kind), &x.Holder, &x.To, &x.Total); err != nil {
			return e, err
		}
		e.MergeEntry(x)
	}
	return e, rows.Err()
}

// localBase is what warehouse could promise of sku before any allotment,
// as of this point of the transaction: on_hand over every location, less
// active local holds, less safety stock.
func (db *DB) localBase(ctx context.Context, s *boundStmts, st *txState, warehouse, sku string) (int64, error) {
	if warehouse != db.warehouse {
		return 0, fmt.Errorf("warehouse %s: %w", warehouse, errNotOwner)
	}
	onHand, safety, _, err := db.skuAt(ctx, s, st, sku)
	return onHand - db.reservedSKU(st, sku) - safety, err
}

// escrowOf reads a (warehouse, sku)'s rights as of this point of the
// transaction.
func (db *DB) escrowOf(ctx context.Context, s *boundStmts, warehouse, sku string) (crdt.Escrow, error) {
	return scanEscrow(s.use(s.src.escrowOf).QueryContext(ctx, warehouse, sku))
}

// unpromised is what a local hold of warehouse's sku may still take: the
// local base less what the channels hold or committed.
func (db *DB) unpromised(ctx context.Context, s *boundStmts, st *txState, warehouse, sku string) (int64, error) {
	if warehouse != db.warehouse {
		return 0, fmt.Errorf("warehouse %s: %w", warehouse, errNotOwner)
	}
	onHand, safety, promised, err := db.skuAt(ctx, s, st, sku)
	return onHand - db.reservedSKU(st, sku) - safety - promised, err
}

func (db *DB) applySafety(ctx context.Context, s *boundStmts, st *txState, x Safety, now time.Time) error {
	st.rights[stockKey{x.Warehouse, x.SKU, ""}] = true
	_, err := s.use(s.src.setSafety).ExecContext(ctx, x.Warehouse, x.SKU, x.Qty, now.UnixMilli())
	return err
}

// applyPromise applies p all or none, once per id (Promise.Decide).
func (db *DB) applyPromise(ctx context.Context, s *boundStmts, st *txState, p *Promise, now time.Time) error {
	if p.ID != "" {
		var hash, body []byte
		err := s.use(s.src.getPromise).QueryRowContext(ctx, p.ID).Scan(&hash, &body)
		if err == nil {
			p.Result = PromiseResult{Status: PromiseExisted, Body: body}
			if !bytes.Equal(hash, p.BodyHash) {
				p.Result.Status = PromiseIDReused
			}
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
	}
	entries, err := p.Decide(db.replicaID, RightsView{
		Escrow: func(warehouse, sku string) (crdt.Escrow, error) {
			return db.escrowOf(ctx, s, warehouse, sku)
		},
		Local: func(warehouse, sku string) (int64, error) { return db.localBase(ctx, s, st, warehouse, sku) },
		Held: func(warehouse, sku, channel string) (int64, error) {
			return sqliteHubHolds{db: db, ctx: ctx, s: s, st: st}.Held(warehouse, sku, channel, now, p.exceptHold)
		},
	})
	if err != nil || p.Result.Status != PromiseOK {
		return err
	}
	merge := s.use(s.src.mergeEscrow)
	for _, x := range entries {
		if x.Total > MaxTotal {
			return &RangeError{Warehouse: x.Warehouse, SKU: x.SKU, Replica: x.Replica, Side: "escrow " + string(x.Kind), Total: x.Total}
		}
		if _, err := merge.ExecContext(ctx, x.Warehouse, x.SKU, x.Replica, string(x.Kind), x.Holder, x.To, int64(x.Total), db.nextVersion(), now.UnixMilli()); err != nil {
			return err
		}
		st.rights[stockKey{x.Warehouse, x.SKU, ""}] = true
	}
	for _, l := range p.Lines {
		if err := db.writeLine(ctx, s, st, l, now); err != nil {
			return err
		}
	}
	if p.ID != "" {
		_, err = s.use(s.src.insertPromise).ExecContext(ctx, p.ID, nonNil(p.BodyHash), nonNil(p.Body), now.UnixMilli())
	}
	return err
}

// RightsOf reads the rights of each of skus in warehouse; a SKU without
// any has none in the map.
func (db *DB) RightsOf(ctx context.Context, warehouse string, skus []string) (map[string]crdt.Escrow, error) {
	out := map[string]crdt.Escrow{}
	if len(skus) == 0 {
		return out, nil
	}
	query, arg := sqlRightsOf.of(skus)
	rows, err := db.reader.QueryContext(ctx, query, warehouse, arg)
	if err != nil {
		return nil, fmt.Errorf("query rights: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var sku string
		var x crdt.EscrowEntry
		if err := rows.Scan(&sku, &x.Replica, (*KindScanner)(&x.Kind), &x.Holder, &x.To, &x.Total); err != nil {
			return nil, fmt.Errorf("query rights: %w", err)
		}
		e := out[sku]
		e.MergeEntry(x)
		out[sku] = e
	}
	return out, rows.Err()
}

// RightsBySKU reads sku's rights in every warehouse, by warehouse.
func (db *DB) RightsBySKU(ctx context.Context, sku string) (map[string]crdt.Escrow, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT warehouse, replica, kind, holder, to_holder, total FROM escrow WHERE sku = ?`, sku)
	if err != nil {
		return nil, fmt.Errorf("query rights: %w", err)
	}
	defer rows.Close()
	out := map[string]crdt.Escrow{}
	for rows.Next() {
		var wh string
		var x crdt.EscrowEntry
		if err := rows.Scan(&wh, &x.Replica, (*KindScanner)(&x.Kind), &x.Holder, &x.To, &x.Total); err != nil {
			return nil, fmt.Errorf("query rights: %w", err)
		}
		e := out[wh]
		e.MergeEntry(x)
		out[wh] = e
	}
	return out, rows.Err()
}

// SafetyOf reads the safety stock of each of skus in warehouse; a SKU
// without any is left out.
func (db *DB) SafetyOf(ctx context.Context, warehouse string, skus []string) (map[string]int64, error) {
	out, err := db.bySKU(ctx, sqlSafetyList, skus, warehouse)
	if err != nil {
		return nil, fmt.Errorf("query safety: %w", err)
	}
	return out, nil
}

// bySKU runs q for skus (nothing for none): warehouse, then the SKUs, then
// more as arguments; each row is a SKU and a number.
func (db *DB) bySKU(ctx context.Context, q skuQuery, skus []string, warehouse string, more ...any) (map[string]int64, error) {
	out := map[string]int64{}
	if len(skus) == 0 {
		return out, nil
	}
	query, arg := q.of(skus)
	rows, err := db.reader.QueryContext(ctx, query, append([]any{warehouse, arg}, more...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var sku string
		var n int64
		if err := rows.Scan(&sku, &n); err != nil {
			return nil, err
		}
		out[sku] = n
	}
	return out, rows.Err()
}

// PromiseOf reads promise id's body hash and the answer stored with it.
func (db *DB) PromiseOf(ctx context.Context, id string) (hash, body []byte, found bool, err error) {
	err = db.reader.QueryRowContext(ctx, sqlGetPromise, id).Scan(&hash, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("query promise: %w", err)
	}
	return hash, body, true, nil
}

var (
	sqlRightsOf   = newSKUQuery(`SELECT sku, replica, kind, holder, to_holder, total FROM escrow WHERE warehouse = ? AND %s`)
	sqlSafetyList = newSKUQuery(`SELECT sku, qty FROM safety WHERE warehouse = ? AND %s`)
)
