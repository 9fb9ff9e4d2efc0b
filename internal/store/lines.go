package store

import (
	"context"
	"time"

	"github.com/edgestock/edgestock/crdt"
)

// OrderLine is one line of a hub order, placed at one warehouse (SPEC §9):
// the hub writes it with the order's spend, versioned like every delta,
// and the warehouse's agent turns it into a committed hold awaiting its
// pick. Its fields never change but Cancelled, which only goes true: a
// line is a state, merged by "cancelled wins".
type OrderLine struct {
	ID        string // "{order id}.{n}", n from 1
	Warehouse string
	SKU       string
	Channel   string
	Qty       int64
	Cancelled bool
}

// HubHolder is the holder of the holds order lines become at an agent.
const HubHolder = "hub"

// LinePrefix keeps order lines' holds apart from local reservations,
// whose ids a client chooses: line {order}.{n} is hold "line:{order}.{n}".
const LinePrefix = "line:"

// LineHoldID is the id of the hold an order line becomes.
func LineHoldID(line string) string { return LinePrefix + line }

// lineLocation is where an order line's hold is kept: picks are booked
// against the warehouse's default location (SPEC §2).
const lineLocation = "default"

// The states of an order line's hold, beside HoldCommitted (not picked yet).
const (
	HoldPicked    HoldState = "picked"    // delivered: its sale event recorded
	HoldCancelled HoldState = "cancelled" // cancelled before its pick
)

const (
	sqlWriteLine = `INSERT INTO lines(id, warehouse, sku, channel, qty, cancelled, version, updated_at) VALUES (?,?,?,?,?,?,?,?)
		ON CONFLICT (id) DO UPDATE SET cancelled = 1, version = excluded.version, updated_at = excluded.updated_at
		WHERE excluded.cancelled = 1 AND cancelled = 0`
	sqlInsertLineHold = `INSERT INTO holds(id, body_hash, warehouse, location, sku, qty, holder, channel, state,
		created_at, expires_at, updated_at, version) VALUES (?, X'', ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)`
)

// writeLine records a line the hub wrote (or its cancellation) with a new
// version, so the sync carries it to its warehouse.
func (db *DB) writeLine(ctx context.Context, s *boundStmts, st *txState, l OrderLine, now time.Time) error {
	next := db.version + 1
	res, err := s.tx.ExecContext(ctx, sqlWriteLine, l.ID, l.Warehouse, l.SKU, l.Channel, l.Qty, l.Cancelled, next, now.UnixMilli())
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		db.version = next
		st.rights[stockKey{l.Warehouse, l.SKU, ""}] = true // the sync has news
	}
	return nil
}

// awaitingPick reports whether h is an order line's hold not picked yet.
func awaitingPick(h Hold) bool {
	return h.Holder == HubHolder && h.State == HoldCommitted && h.EventID == ""
}

// mergeLine takes an order line at its warehouse's agent: a new line is a
// committed hold awaiting its pick (its units are counted in committed,
// not reserved); a cancelled line ends such a hold, and the units it
// promised return to the warehouse. Lines of other warehouses are not
// this agent's.
func (db *DB) mergeLine(ctx context.Context, s *boundStmts, st *txState, l *OrderLine, now time.Time) error {
	if l.Warehouse != db.warehouse {
		return nil
	}
	id := LineHoldID(l.ID)
	h, _, found, err := scanHold(s.use(s.src.getHold).QueryRowContext(ctx, id))
	if err != nil {
		return err
	}
	switch {
	case !found:
		state := HoldCommitted
		if l.Cancelled {
			state = HoldCancelled
		}
		at := now.UnixMilli()
		_, err = s.tx.ExecContext(ctx, sqlInsertLineHold, id, l.Warehouse, lineLocation, l.SKU, l.Qty, HubHolder, l.Channel,
			string(state), at, at, db.nextVersion())
		st.rights[stockKey{l.Warehouse, l.SKU, ""}] = true
		if err != nil || !l.Cancelled {
			return err
		}
		// Cancelled before it ever arrived: its spend is settled all the
		// same, or its units would stay committed for ever.
		return db.settle(ctx, s, st, Hold{ID: id, Warehouse: l.Warehouse, SKU: l.SKU, Channel: l.Channel, Qty: l.Qty}, now)
	case l.Cancelled && awaitingPick(h):
		if err := db.settle(ctx, s, st, h, now); err != nil {
			return err
		}
		_, err = s.use(s.src.endHold).ExecContext(ctx, string(HoldCancelled), now.UnixMilli(), "", 0, db.nextVersion(), h.ID)
		return err
	}
	return nil
}

// settle records h's units as no longer committed to its channel: a pick
// total of the whole line. The line proves its order's spend, which this
// store may not have merged yet: a spend's total moves to a later version
// each time the channel sells again, so a page can carry a line before
// the spend it belongs to (the channels state machine found it). Checked
// against this view, the pick would be lost, and the units committed for
// ever.
func (db *DB) settle(ctx context.Context, s *boundStmts, st *txState, h Hold, now time.Time) error {
	e, err := db.escrowOf(ctx, s, h.Warehouse, h.SKU)
	if err != nil {
		return err
	}
	x := e.Deliver(db.replicaID, h.Channel, uint64(h.Qty))
	_, err = s.use(s.src.mergeEscrow).ExecContext(ctx, h.Warehouse, h.SKU, x.Replica, string(crdt.Pick), x.Holder, x.To,
		int64(x.Total), db.nextVersion(), now.UnixMilli())
	st.rights[stockKey{h.Warehouse, h.SKU, ""}] = true
	st.delivered[h.SKU] += h.Qty
	return err
}

// pickLine picks an order line's hold: its sale and its settlement in one
// transaction, once.
func (db *DB) pickLine(ctx context.Context, s *boundStmts, st *txState, op *HoldOp, h *Hold) error {
	if err := db.recordSale(ctx, s, st, op, h); err != nil || op.Result.Status != HoldOK {
		return err
	}
	if err := db.settle(ctx, s, st, *h, op.Now); err != nil {
		return err
	}
	h.State = HoldPicked
	if _, err := s.use(s.src.endHold).ExecContext(ctx, string(h.State), op.Now.UnixMilli(), h.EventID, h.EventSeq, db.nextVersion(), h.ID); err != nil {
		return err
	}
	op.Result.Hold = *h
	return nil
}
