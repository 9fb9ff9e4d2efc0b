package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"time"
)

// HoldState is the life cycle of a reservation.
type HoldState string

const (
	HoldActive    HoldState = "active"
	HoldCommitted HoldState = "committed"
	HoldReleased  HoldState = "released"
	HoldExpired   HoldState = "expired"
)

// Hold is a reservation of units for a cart.
type Hold struct {
	ID        string
	Warehouse string
	Location  string
	SKU       string
	Qty       int64
	Holder    string
	Channel   string
	State     HoldState
	CreatedAt time.Time
	ExpiresAt time.Time
	EventID   string // the sale event of a committed hold
	EventSeq  int64
}

// HoldOpKind says what a HoldOp does.
type HoldOpKind int

const (
	HoldCreate  HoldOpKind = iota + 1 // reserve Hold.Qty if available
	HoldRenew                         // move an active hold's expiry to ExpiresAt
	HoldCommit                        // turn an active hold into a sale event, once
	HoldRelease                       // give the units back
	HoldExpire                        // expire every active hold past Now
)

// HoldOp is a reservation change applied in the group commit, in order with
// events, so availability is checked against exactly the committed state.
// The store sets Result before the batch's done callback runs.
type HoldOp struct {
	Kind     HoldOpKind
	Hold     Hold   // Create: the hold; others: Hold.ID (Renew: Hold.ExpiresAt)
	BodyHash []byte // Create: identifies the request, for idempotent retries
	// Commit: the sale event's device and id ("hold:{id}" when empty).
	EventDevice, EventID string
	Source               string
	Now                  time.Time
	Result               HoldResult
}

// HoldStatus is the outcome of a HoldOp.
type HoldStatus string

const (
	HoldOK           HoldStatus = "ok"
	HoldExisted      HoldStatus = "existed"      // Create: same id and body: the same hold again
	HoldIDReused     HoldStatus = "id_reused"    // Create: same id, other body
	HoldInsufficient HoldStatus = "insufficient" // Create: not enough available
	HoldNotFound     HoldStatus = "not_found"
	HoldNotActive    HoldStatus = "not_active"   // Renew/Commit/Release of a hold that ended (see Hold.State)
	HoldEventExists  HoldStatus = "event_exists" // Commit: the sale's event id is already in the log
)

// HoldResult is what a HoldOp did.
type HoldResult struct {
	Status    HoldStatus
	Hold      Hold
	Available int64 // Create: availability at the time of the decision
	Expired   int   // Expire: how many holds ended
}

// reservedDeltas are a transaction's changes to active reservations per key,
// applied to DB.reserved only once the transaction commits.
type reservedDeltas map[stockKey]int64

// txState is what one commit transaction accumulates.
type txState struct {
	counters counterDeltas
	reserved reservedDeltas
	merged   map[stockKey]bool // keys whose foreign entries a merge raised
	// mergedSKUs are merged's (warehouse, sku), location "": what the
	// level cache asks of every read (dirty).
	mergedSKUs map[stockKey]bool
	totals     map[string]skuTotal // per SKU changed, its totals after the transaction
	alerts     alertState
	// oldReplica is set when a merge switched db.replicaID (a restored
	// database): a failed transaction switches back.
	oldReplica string
	// rights holds the keys (location "") whose rights or safety stock
	// changed: their views changed though no counter did.
	rights map[stockKey]bool
	// delivered is, per SKU of this warehouse, what order lines' settling
	// took off Promised in this transaction (raiseShortfalls).
	delivered map[string]int64
	// countersWritten: writeCounters has put counters' deltas in SQL.
	countersWritten bool
	// expiry is, per SKU of this warehouse, the earliest expiry (unix ms)
	// of the active holds this transaction took or renewed; swept is when
	// a sweep ended every hold expired by then (0: none ran).
	expiry map[string]int64
	swept  int64
}

// expires notes that an active hold of sku now expires at t.
func (st *txState) expires(sku string, t time.Time) {
	ms := t.UnixMilli()
	if e, ok := st.expiry[sku]; !ok || ms < e {
		st.expiry[sku] = ms
	}
}

func newTxState() *txState {
	return &txState{counters: counterDeltas{}, reserved: reservedDeltas{}, merged: map[stockKey]bool{}, mergedSKUs: map[stockKey]bool{}, rights: map[stockKey]bool{}, delivered: map[string]int64{}, totals: map[string]skuTotal{}, expiry: map[string]int64{},
		alerts: alertState{seqs: map[string]int64{}, low: map[string]bool{}}}
}

// available is on_hand minus active holds for a key, as of this point of
// the transaction.
func (db *DB) available(ctx context.Context, s *boundStmts, st *txState, k stockKey) (int64, error) {
	onHand, err := db.onHandAt(ctx, s, st, k)
	if err != nil {
		return 0, err
	}
	return onHand - db.reserved[k] - st.reserved[k], nil
}

func (db *DB) applyHold(ctx context.Context, s *boundStmts, st *txState, op *HoldOp) error {
	switch op.Kind {
	case HoldCreate:
		return db.createHold(ctx, s, st, op)
	case HoldExpire:
		return db.expireHolds(ctx, s, st, op)
	}
	h, _, found, err := scanHold(s.use(s.src.getHold).QueryRowContext(ctx, op.Hold.ID))
	if err != nil || !found {
		op.Result = HoldResult{Status: HoldNotFound}
		return err
	}
	op.Result = HoldResult{Status: HoldOK, Hold: h}
	if h.State == HoldActive && !op.Now.Before(h.ExpiresAt) {
		// Past its expiry but not swept yet: it is over all the same.
		if err := db.endHold(ctx, s, st, &h, HoldExpired, op.Now); err != nil {
			return err
		}
		op.Result.Hold = h
	}
	switch op.Kind {
	case HoldRelease:
		if h.State == HoldActive {
			err = db.endHold(ctx, s, st, &h, HoldReleased, op.Now)
			op.Result.Hold = h
		} else if h.State == HoldCommitted || h.State == HoldPicked {
			op.Result.Status = HoldNotActive // sold: nothing to give back
		}
		return err
	case HoldRenew:
		if h.State != HoldActive {
			op.Result.Status = HoldNotActive
			return nil
		}
		h.ExpiresAt = op.Hold.ExpiresAt.Truncate(time.Millisecond).UTC()
		op.Result.Hold = h
		st.expires(h.SKU, h.ExpiresAt) // maybe sooner than it was
		_, err = s.use(s.src.renewHold).ExecContext(ctx, h.ExpiresAt.UnixMilli(), op.Now.UnixMilli(), db.nextVersion(), h.ID)
		return err
	case HoldCommit:
		if awaitingPick(h) {
			return db.pickLine(ctx, s, st, op, &h)
		}
		if h.State == HoldCommitted || h.State == HoldPicked {
			return nil // committed before: the same sale, once
		}
		if h.State != HoldActive {
			op.Result.Status = HoldNotActive
			return nil
		}
		return db.commitHold(ctx, s, st, op, &h)
	}
	return fmt.Errorf("hold op %d: unknown kind", op.Kind)
}

func (db *DB) createHold(ctx context.Context, s *boundStmts, st *txState, op *HoldOp) error {
	h := op.Hold
	prev, existing, found, err := scanHold(s.use(s.src.getHold).QueryRowContext(ctx, h.ID))
	if err != nil {
		return err
	}
	if found {
		op.Result = HoldResult{Status: HoldExisted, Hold: prev}
		if !bytes.Equal(existing, op.BodyHash) {
			op.Result.Status = HoldIDReused
		}
		return nil
	}
	k := stockKey{h.Warehouse, h.SKU, h.Location}
	avail, err := db.available(ctx, s, st, k)
	if err != nil {
		return err
	}
	// Also within what the warehouse itself still owns of the SKU: not
	// what a channel was allotted, nor the safety stock (SPEC §9).
	own, err := db.unpromised(ctx, s, st, h.Warehouse, h.SKU)
	if err != nil {
		return err
	}
	if avail = min(avail, own); h.Qty > avail {
		op.Result = HoldResult{Status: HoldInsufficient, Available: max(avail, 0)}
		return nil
	}
	// Times are stored in milliseconds: answer with what a read returns.
	h.State, h.CreatedAt, h.ExpiresAt = HoldActive, op.Now.Truncate(time.Millisecond).UTC(), h.ExpiresAt.Truncate(time.Millisecond).UTC()
	_, err = s.use(s.src.insertHold).ExecContext(ctx, h.ID, op.BodyHash, h.Warehouse, h.Location, h.SKU,
		h.Qty, h.Holder, h.Channel, string(h.State), h.CreatedAt.UnixMilli(), h.ExpiresAt.UnixMilli(), h.CreatedAt.UnixMilli(), db.nextVersion())
	if err != nil {
		return err
	}
	st.reserved[k] += h.Qty
	st.expires(h.SKU, h.ExpiresAt)
	op.Result = HoldResult{Status: HoldOK, Hold: h, Available: avail - h.Qty}
	return nil
}

// endHold moves an active hold to a final state (recording h's sale, if
// any) and gives its units back.
func (db *DB) endHold(ctx context.Context, s *boundStmts, st *txState, h *Hold, state HoldState, now time.Time) error {
	if _, err := s.use(s.src.endHold).ExecContext(ctx, string(state), now.UnixMilli(), h.EventID, h.EventSeq, db.nextVersion(), h.ID); err != nil {
		return err
	}
	st.reserved[stockKey{h.Warehouse, h.SKU, h.Location}] -= h.Qty
	h.State = state
	return nil
}

// commitHold records the sale and ends the hold in the same transaction.
func (db *DB) commitHold(ctx context.Context, s *boundStmts, st *txState, op *HoldOp, h *Hold) error {
	if err := db.recordSale(ctx, s, st, op, h); err != nil || op.Result.Status != HoldOK {
		return err
	}
	if err := db.endHold(ctx, s, st, h, HoldCommitted, op.Now); err != nil {
		return err
	}
	op.Result = HoldResult{Status: HoldOK, Hold: *h}
	return nil
}

// recordSale logs the sale event of hold h (op.Result says
// HoldEventExists when its id is taken) and sets h's event.
func (db *DB) recordSale(ctx context.Context, s *boundStmts, st *txState, op *HoldOp, h *Hold) error {
	e := Event{Device: op.EventDevice, ID: op.EventID, BodyHash: []byte("hold:" + h.ID), Type: "sale", Warehouse: h.Warehouse,
		Location: h.Location, SKU: h.SKU, Qty: h.Qty, Delta: -h.Qty, Channel: h.Channel, Source: op.Source, ReceivedAt: op.Now}
	if e.ID == "" {
		e.ID = "hold:" + h.ID
	}
	seq, inserted, err := insertOne(ctx, s, &e)
	if err != nil {
		return err
	}
	if !inserted {
		op.Result = HoldResult{Status: HoldEventExists, Hold: *h}
		return nil
	}
	st.counters.addEvent(&e, e.Delta)
	h.EventID, h.EventSeq = e.ID, seq
	op.Result = HoldResult{Status: HoldOK, Hold: *h}
	return nil
}

func (db *DB) expireHolds(ctx context.Context, s *boundStmts, st *txState, op *HoldOp) error {
	rows, err := s.use(s.src.expiredHolds).QueryContext(ctx, op.Now.UnixMilli())
	if err != nil {
		return err
	}
	var due []Hold
	for rows.Next() {
		var h Hold
		if err := rows.Scan(&h.ID, &h.Warehouse, &h.Location, &h.SKU, &h.Qty); err != nil {
			rows.Close()
			return err
		}
		due = append(due, h)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	for i := range due {
		if err := db.endHold(ctx, s, st, &due[i], HoldExpired, op.Now); err != nil {
			return err
		}
	}
	st.swept = op.Now.UnixMilli()
	op.Result = HoldResult{Status: HoldOK, Expired: len(due)}
	return nil
}

const holdColumns = `id, warehouse, location, sku, qty, holder, channel, state, created_at, expires_at, event_id, event_seq`

// sqlGetHold reads a hold: holdColumns, then its body hash.
const sqlGetHold = `SELECT ` + holdColumns + `, body_hash FROM holds WHERE id = ?`

// scanHold reads a hold selected by sqlGetHold, and its body hash.
func scanHold(row *sql.Row) (h Hold, bodyHash []byte, found bool, err error) {
	var state string
	var created, expires int64
	err = row.Scan(&h.ID, &h.Warehouse, &h.Location, &h.SKU, &h.Qty, &h.Holder, &h.Channel, &state, &created, &expires,
		&h.EventID, &h.EventSeq, &bodyHash)
	if errors.Is(err, sql.ErrNoRows) {
		return h, nil, false, nil
	}
	h.State, h.CreatedAt = HoldState(state), time.UnixMilli(created).UTC()
	if expires != 0 { // 0: an order line's hold, which never expires
		h.ExpiresAt = time.UnixMilli(expires).UTC()
	}
	return h, bodyHash, err == nil, err
}

// GetHold reads a hold.
func (db *DB) GetHold(ctx context.Context, id string) (Hold, bool, error) {
	h, _, found, err := scanHold(db.reader.QueryRowContext(ctx, sqlGetHold, id))
	return h, found, err
}

// loadReserved rebuilds the in-memory reservations from the holds table.
func (db *DB) loadReserved(ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}) error {
	rows, err := q.QueryContext(ctx, `SELECT warehouse, sku, location, SUM(qty), MIN(expires_at) FROM holds WHERE state = 'active' GROUP BY 1, 2, 3`)
	if err != nil {
		return err
	}
	defer rows.Close()
	db.reserved, db.reservedBySKU, db.reservedBound = map[stockKey]int64{}, map[string]int64{}, map[string]int64{}
	for rows.Next() {
		var k stockKey
		var n, expiry int64
		if err := rows.Scan(&k.warehouse, &k.sku, &k.location, &n, &expiry); err != nil {
			return err
		}
		db.addReserved(k, n)
		if b, ok := db.reservedBound[k.sku]; k.warehouse == db.warehouse && (!ok || expiry < b) {
			db.reservedBound[k.sku] = expiry
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for sku := range db.reservedBySKU {
		db.publishReserved(sku)
	}
	return nil
}

// reservedView is one of this warehouse's SKUs' committed reservations as
// readers see them (ReservedOf): what its active holds take, and a time
// (unix ms) none of them expires before. Past it, ReservedOf asks the
// database, which leaves out holds expired but not swept yet.
type reservedView struct{ qty, notBefore int64 }

// publishReserved publishes sku's reservations as the commit loop holds
// them (commit loop only).
func (db *DB) publishReserved(sku string) {
	qty := db.reservedBySKU[sku]
	if qty == 0 {
		db.reservedPub.Delete(sku)
		delete(db.reservedBound, sku)
		return
	}
	db.reservedPub.Store(sku, reservedView{qty: qty, notBefore: db.reservedBound[sku]})
}

// reservedChanged lists the SKUs of this warehouse whose reservations st
// changed: true for those whose quantity it changed, false for those it
// only renewed.
func (db *DB) reservedChanged(st *txState) map[string]bool {
	changed := map[string]bool{}
	for sku := range st.expiry {
		changed[sku] = false
	}
	for k := range st.reserved {
		if k.warehouse == db.warehouse {
			changed[k.sku] = true
		}
	}
	return changed
}

// boundAfter is sku's bound once st commits. A hold's expiry lowers it; a
// sweep at T ended every hold expired by T, so a SKU it touched has none
// expiring before T. Holds ending early (released, sold) leave the bound
// lower than it need be: a reader then asks the database, no less right.
func (db *DB) boundAfter(st *txState, sku string, qtyChanged bool) (int64, bool) {
	b, ok := db.reservedBound[sku]
	if st.swept > 0 && ok && qtyChanged {
		b = max(b, st.swept)
	}
	if e, has := st.expiry[sku]; has && (!ok || e < b) {
		b, ok = e, true
	}
	return b, ok
}

// publishAhead publishes, just before the commit, the reservations st
// leaves (commit loop): readers see them no later than the commit in SQL,
// so a view read after a hold's row is never older than the hold. A
// failed commit publishes the committed ones again (unpublish).
func (db *DB) publishAhead(st *txState, changed map[string]bool) {
	delta := map[string]int64{} // per SKU: one pass, however many a sweep ended
	for k, q := range st.reserved {
		if k.warehouse == db.warehouse {
			delta[k.sku] += q
		}
	}
	for sku, qtyChanged := range changed {
		qty := db.reservedBySKU[sku] + delta[sku]
		if qty == 0 {
			db.reservedPub.Delete(sku)
			continue
		}
		b, _ := db.boundAfter(st, sku, qtyChanged)
		db.reservedPub.Store(sku, reservedView{qty: qty, notBefore: b})
	}
}

// unpublish publishes the committed reservations of changed again.
func (db *DB) unpublish(changed map[string]bool) {
	for sku := range changed {
		db.publishReserved(sku)
	}
}

// commitReserved keeps the commit loop's bounds (after the commit; the
// quantities are addReserved's): what publishAhead published.
func (db *DB) commitReserved(st *txState, changed map[string]bool) {
	for sku, qtyChanged := range changed {
		if b, ok := db.boundAfter(st, sku, qtyChanged); ok && db.reservedBySKU[sku] != 0 {
			db.reservedBound[sku] = b
		} else {
			delete(db.reservedBound, sku)
		}
	}
}

// NextExpiry is when the earliest active hold expires (ok false: none).
func (db *DB) NextExpiry(ctx context.Context) (time.Time, bool, error) {
	var ms sql.NullInt64
	if err := db.reader.QueryRowContext(ctx, `SELECT MIN(expires_at) FROM holds WHERE state = 'active'`).Scan(&ms); err != nil {
		return time.Time{}, false, fmt.Errorf("query holds: %w", err)
	}
	return time.UnixMilli(ms.Int64).UTC(), ms.Valid, nil
}

// ReservedOf sums the active, unexpired holds of each of skus in this
// warehouse; a SKU without any is left out.
//
// What the commit loop published answers, without a query (publishAhead:
// never older than SQL); a SKU with a hold that may have expired by now is
// summed in the database.
func (db *DB) ReservedOf(ctx context.Context, skus []string, now time.Time) (map[string]int64, error) {
	out := map[string]int64{}
	var ask []string
	for _, sku := range skus {
		v, ok := db.reservedPub.Load(sku)
		switch {
		case !ok: // no active hold
		case now.UnixMilli() < v.(reservedView).notBefore:
			out[sku] = v.(reservedView).qty
		default:
			ask = append(ask, sku)
		}
	}
	if len(ask) == 0 {
		return out, nil
	}
	asked, err := db.reservedInSQL(ctx, ask, now)
	if err != nil {
		return nil, err
	}
	maps.Copy(out, asked)
	return out, nil
}

// reservedInSQL sums the active, unexpired holds of skus in the database.
func (db *DB) reservedInSQL(ctx context.Context, skus []string, now time.Time) (map[string]int64, error) {
	out, err := db.bySKU(ctx, sqlReservedOf, skus, db.warehouse, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("query holds: %w", err)
	}
	return out, nil
}

// addReserved changes the committed reservations of a key (commit loop only).
func (db *DB) addReserved(k stockKey, d int64) {
	if db.reserved[k] += d; db.reserved[k] == 0 {
		delete(db.reserved, k)
	}
	if k.warehouse == db.warehouse {
		if db.reservedBySKU[k.sku] += d; db.reservedBySKU[k.sku] == 0 {
			delete(db.reservedBySKU, k.sku)
		}
	}
}

// nextVersion numbers a change in the version sequence the delta sync and
// the streams read (commit loop only).
func (db *DB) nextVersion() int64 {
	db.version++
	return db.version
}

// LocalHoldChanges lists this warehouse's SKUs whose holds changed with a
// version in (since, upto], and the highest such version (0: none): the
// reserved and available a stream shows moved.
func (db *DB) LocalHoldChanges(ctx context.Context, since, upto int64) ([]string, int64, error) {
	return ScanHoldChanges(db.reader.QueryContext(ctx, `SELECT sku, MAX(version) FROM holds
		WHERE warehouse = ? AND version > ? AND version <= ? GROUP BY sku`, db.warehouse, since, upto))
}
