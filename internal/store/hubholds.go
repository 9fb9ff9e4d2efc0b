package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/edgestock/edgestock/crdt"
)

// HubHold is a cart's hold on a channel's rights at the hub (SPEC §9): it
// keeps qty of the channel's rights at one warehouse from other orders and
// holds until it expires on the hub's clock, is released, or is committed
// (it becomes an order). It writes no rights total: it is the hub's own
// bookkeeping, checked in the same transaction as every spend.
type HubHold struct {
	ID        string
	Warehouse string
	SKU       string
	Channel   string
	Qty       int64
	State     HoldState // active, committed, released (expired: active past ExpiresAt)
	CreatedAt time.Time
	ExpiresAt time.Time
	OrderID   string // committed: the order it became
}

// Expired reports whether h is active but past its expiry at now.
func (h HubHold) Expired(now time.Time) bool {
	return h.State == HoldActive && !now.Before(h.ExpiresAt)
}

// HubHoldOp is a change to a hub hold, applied in a write transaction. The
// store sets Result before the batch's done callback runs.
type HubHoldOp struct {
	Kind     HoldOpKind // HoldCreate, HoldRenew, HoldRelease, HoldCommit or HoldExpire (every hold due)
	Hold     HubHold    // Create: the hold; others: Hold.ID (Renew: Hold.ExpiresAt)
	BodyHash []byte     // Create: identifies the request, for idempotent retries
	// Order is the promise a commit applies (the order's spends and lines),
	// within the channel's rights with this hold's units counted free;
	// OrderID is the order's id the hold records.
	Order   *Promise
	OrderID string
	Now     time.Time
	Result  HubHoldResult
}

// HubHoldResult is what a HubHoldOp did.
type HubHoldResult struct {
	Status HoldStatus
	Hold   HubHold
	// Available is, for a refused create, what the channel could hold or
	// sell at the warehouse then.
	Available int64
	Expired   int // Expire: how many holds ended
}

// HubHoldTx is what the rule needs of a store's write transaction.
type HubHoldTx interface {
	GetHubHold(id string) (h HubHold, bodyHash []byte, found bool, err error)
	InsertHubHold(h HubHold, bodyHash []byte) error
	UpdateHubHold(h HubHold) error
	EscrowOf(warehouse, sku string) (crdt.Escrow, error)
	// Held sums the active holds of (warehouse, sku, channel) unexpired at
	// now, but except.
	Held(warehouse, sku, channel string, now time.Time, except string) (int64, error)
	ApplyPromise(p *Promise) error
	// ExpireHubHolds ends every active hold past its expiry at now, each
	// with a new version, and says how many.
	ExpireHubHolds(now time.Time) (int, error)
}

// ApplyHubHold is the one rule of hub holds, for both stores.
func ApplyHubHold(tx HubHoldTx, op *HubHoldOp) error {
	now := op.Now.Truncate(time.Millisecond).UTC()
	if op.Kind == HoldExpire {
		n, err := tx.ExpireHubHolds(now)
		op.Result = HubHoldResult{Status: HoldOK, Expired: n}
		return err
	}
	h, hash, found, err := tx.GetHubHold(op.Hold.ID)
	if err != nil {
		return err
	}
	if op.Kind == HoldCreate {
		if found {
			op.Result = HubHoldResult{Status: HoldExisted, Hold: h}
			if !bytes.Equal(hash, op.BodyHash) {
				op.Result.Status = HoldIDReused
			}
			return nil
		}
		h = op.Hold
		e, err := tx.EscrowOf(h.Warehouse, h.SKU)
		if err != nil {
			return err
		}
		held, err := tx.Held(h.Warehouse, h.SKU, h.Channel, now, "")
		if err != nil {
			return err
		}
		if avail := max(e.Rights(h.Channel)-held, 0); h.Qty > avail {
			op.Result = HubHoldResult{Status: HoldInsufficient, Available: avail}
			return nil
		}
		h.State, h.CreatedAt, h.ExpiresAt = HoldActive, now, h.ExpiresAt.Truncate(time.Millisecond).UTC()
		op.Result = HubHoldResult{Status: HoldOK, Hold: h}
		return tx.InsertHubHold(h, op.BodyHash)
	}
	if !found {
		op.Result = HubHoldResult{Status: HoldNotFound}
		return nil
	}
	op.Result = HubHoldResult{Status: HoldOK, Hold: h}
	switch {
	case op.Kind == HoldRelease && h.State == HoldReleased, op.Kind == HoldCommit && h.State == HoldCommitted:
		return nil // the same change again
	case h.State != HoldActive || h.Expired(now):
		op.Result.Status = HoldNotActive
		return nil
	}
	switch op.Kind {
	case HoldRenew:
		h.ExpiresAt = op.Hold.ExpiresAt.Truncate(time.Millisecond).UTC()
	case HoldRelease:
		h.State = HoldReleased
	case HoldCommit:
		op.Order.exceptHold = h.ID
		if err := tx.ApplyPromise(op.Order); err != nil || op.Order.Result.Status != PromiseOK {
			return err // the order says why (an order id used before, say)
		}
		h.State, h.OrderID = HoldCommitted, op.OrderID
	}
	op.Result.Hold = h
	return tx.UpdateHubHold(h)
}

// HubHoldColumns are a hub hold's columns in the order ScanHubHold reads.
const HubHoldColumns = `id, warehouse, sku, channel, qty, state, created_at, expires_at, order_id`

// sqliteHubHolds is HubHoldTx on a SQLite write transaction.
type sqliteHubHolds struct {
	db  *DB
	ctx context.Context
	s   *boundStmts
	st  *txState
	now time.Time
}

func (t sqliteHubHolds) GetHubHold(id string) (HubHold, []byte, bool, error) {
	return ScanHubHold(t.s.tx.QueryRowContext(t.ctx, SQLGetHubHold, id), sql.ErrNoRows)
}

// SQLGetHubHold reads a hub hold by id ($1 and ? alike): HubHoldColumns,
// then its body hash.
const SQLGetHubHold = `SELECT ` + HubHoldColumns + `, body_hash FROM hub_holds WHERE id = $1`

// ScanHubHold reads a hub hold selected by SQLGetHubHold; noRows is the
// driver's error for no row.
func ScanHubHold(row interface{ Scan(...any) error }, noRows error) (HubHold, []byte, bool, error) {
	var h HubHold
	var state string
	var created, expires int64
	var hash []byte
	err := row.Scan(&h.ID, &h.Warehouse, &h.SKU, &h.Channel, &h.Qty, &state, &created, &expires, &h.OrderID, &hash)
	if errors.Is(err, noRows) {
		return h, nil, false, nil
	}
	h.State, h.CreatedAt, h.ExpiresAt = HoldState(state), time.UnixMilli(created).UTC(), time.UnixMilli(expires).UTC()
	return h, hash, err == nil, err
}

func (t sqliteHubHolds) InsertHubHold(h HubHold, hash []byte) error {
	_, err := t.s.tx.ExecContext(t.ctx, `INSERT INTO hub_holds(`+HubHoldColumns+`, body_hash, version) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
		h.ID, h.Warehouse, h.SKU, h.Channel, h.Qty, string(h.State), h.CreatedAt.UnixMilli(), h.ExpiresAt.UnixMilli(), h.OrderID, nonNil(hash),
		t.db.nextVersion()) // versioned: the ATS feed shows the change
	t.st.rights[stockKey{h.Warehouse, h.SKU, ""}] = true
	return err
}

func (t sqliteHubHolds) UpdateHubHold(h HubHold) error {
	_, err := t.s.tx.ExecContext(t.ctx, `UPDATE hub_holds SET state = ?, expires_at = ?, order_id = ?, version = ? WHERE id = ?`,
		string(h.State), h.ExpiresAt.UnixMilli(), h.OrderID, t.db.nextVersion(), h.ID)
	t.st.rights[stockKey{h.Warehouse, h.SKU, ""}] = true
	return err
}

// ExpireHubHolds ends the due holds in one statement, under one version
// (a change the ATS feed shows once).
func (t sqliteHubHolds) ExpireHubHolds(now time.Time) (int, error) {
	version := t.db.version + 1
	rows, err := t.s.tx.QueryContext(t.ctx, `UPDATE hub_holds SET state = 'expired', version = ?
		WHERE state = 'active' AND expires_at <= ? RETURNING warehouse, sku`, version, now.UnixMilli())
	if err != nil {
		return 0, err
	}
	n := 0
	for rows.Next() {
		var k stockKey
		if err := rows.Scan(&k.warehouse, &k.sku); err != nil {
			rows.Close()
			return 0, err
		}
		t.st.rights[k] = true
		n++
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, err
	}
	if n > 0 {
		t.db.version = version
	}
	return n, nil
}

// SQLHoldChanges lists the SKUs whose holds on channel $1 changed with a
// version in ($2, $3], and the highest such version ($n and ? alike).
const SQLHoldChanges = `SELECT sku, MAX(version) FROM hub_holds WHERE channel = $1 AND version > $2 AND version <= $3 GROUP BY sku`

// HoldChanges lists the SKUs whose hub holds on channel changed with a
// version in (since, upto], and the highest such version (0: none).
func (db *DB) HoldChanges(ctx context.Context, channel string, since, upto int64) ([]string, int64, error) {
	return ScanHoldChanges(db.reader.QueryContext(ctx, SQLHoldChanges, channel, since, upto))
}

// SQLHoldCeiling is the highest version a hub hold's change took.
const SQLHoldCeiling = `SELECT COALESCE(MAX(version), 0) FROM hub_holds`

// HoldCeiling is the highest version a hub hold's change took (0: none).
func (db *DB) HoldCeiling(ctx context.Context) (int64, error) {
	var n int64
	err := db.reader.QueryRowContext(ctx, SQLHoldCeiling).Scan(&n)
	return n, err
}

// ScanHoldChanges reads the rows of SQLHoldChanges.
func ScanHoldChanges(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close() error
}, err error) ([]string, int64, error) {
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var skus []string
	var top int64
	for rows.Next() {
		var sku string
		var v int64
		if err := rows.Scan(&sku, &v); err != nil {
			return nil, 0, err
		}
		skus, top = append(skus, sku), max(top, v)
	}
	return skus, top, rows.Err()
}

func (t sqliteHubHolds) EscrowOf(warehouse, sku string) (crdt.Escrow, error) {
	return t.db.escrowOf(t.ctx, t.s, warehouse, sku)
}

func (t sqliteHubHolds) Held(warehouse, sku, channel string, now time.Time, except string) (int64, error) {
	var n int64
	err := t.s.tx.QueryRowContext(t.ctx, SQLHeld, warehouse, sku, channel, now.UnixMilli(), except).Scan(&n)
	return n, err
}

func (t sqliteHubHolds) ApplyPromise(p *Promise) error {
	return t.db.applyPromise(t.ctx, t.s, t.st, p, t.now)
}

// SQLHeld sums the active holds of (warehouse, sku, channel) unexpired at
// $4 but $5 ($n and ? alike).
const SQLHeld = `SELECT COALESCE(SUM(qty), 0) FROM hub_holds
	WHERE warehouse = $1 AND sku = $2 AND channel = $3 AND state = 'active' AND expires_at > $4 AND id != $5`

// HeldBySKU sums, per warehouse, the active hub holds of sku on channel
// unexpired at now.
func (db *DB) HeldBySKU(ctx context.Context, sku, channel string, now time.Time) (map[string]int64, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT warehouse, SUM(qty) FROM hub_holds
		WHERE sku = ? AND channel = ? AND state = 'active' AND expires_at > ? GROUP BY warehouse`, sku, channel, now.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var wh string
		var n int64
		if err := rows.Scan(&wh, &n); err != nil {
			return nil, err
		}
		out[wh] = n
	}
	return out, rows.Err()
}

// HubHold reads a hub hold.
func (db *DB) HubHold(ctx context.Context, id string) (HubHold, bool, error) {
	h, _, found, err := ScanHubHold(db.reader.QueryRowContext(ctx, SQLGetHubHold, id), sql.ErrNoRows)
	return h, found, err
}
