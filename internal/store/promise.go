package store

import (
	"errors"
	"fmt"

	"github.com/edgestock/edgestock/crdt"
	"github.com/edgestock/edgestock/drivers"
)

// LocalHolder is the warehouse's own holder of rights (SPEC §9): what its
// agent may hold for local carts or allot to a channel. Its rights are not
// stored: they follow the physical stock (on_hand less what the channels
// were allotted and have not delivered).
const LocalHolder = drivers.LocalHolder

// EscrowOp is one change to a (warehouse, sku)'s rights written by this
// replica as a holder's owner: a Move of Holder's rights to To (an
// allotment, a release) or a Spend of Holder's rights (an order line).
type EscrowOp struct {
	Warehouse, SKU string
	Kind           crdt.Kind // crdt.Move or crdt.Spend
	Holder, To     string
	Qty            uint64
}

// Promise is a set of escrow operations applied all or none, once: each
// only within its holder's rights as the transaction reads them, so two
// promises can never spend the same right. The store sets Result before
// the batch's done callback runs.
type Promise struct {
	// ID makes the promise idempotent: the same ID and BodyHash again is
	// answered with the Body stored the first time.
	ID       string
	BodyHash []byte
	Body     []byte // the answer to store with an applied promise
	Ops      []EscrowOp
	// Lines are order lines written with the ops (or cancelled), for the
	// sync to carry to their warehouses.
	Lines  []OrderLine
	Result PromiseResult
	// exceptHold is a hub hold this promise commits: its units are not
	// held from the promise's own spends.
	exceptHold string
}

// ExceptHold is the hub hold this promise commits ("" for none).
func (p *Promise) ExceptHold() string { return p.exceptHold }

// PromiseStatus is the outcome of a Promise.
type PromiseStatus string

const (
	PromiseOK           PromiseStatus = "ok"
	PromiseExisted      PromiseStatus = "existed"      // same id and body: applied before
	PromiseIDReused     PromiseStatus = "id_reused"    // same id, other body: nothing applied
	PromiseInsufficient PromiseStatus = "insufficient" // an op passed its holder's rights: nothing applied
)

// PromiseResult is what a Promise did.
type PromiseResult struct {
	Status PromiseStatus
	Body   []byte // Existed, IDReused: the body stored the first time
	// Insufficient: the first op past its holder's rights, and the rights
	// it found (after this promise's earlier ops).
	Short  int
	Rights int64
}

// RightsView is what a promise is decided against, as of this point of
// the transaction.
type RightsView struct {
	// Escrow reads a (warehouse, sku)'s rights.
	Escrow func(warehouse, sku string) (crdt.Escrow, error)
	// Local is what the warehouse could promise before any allotment:
	// on_hand less local holds less safety stock. Nil on a store that
	// owns no warehouse's rights (the hub).
	Local func(warehouse, sku string) (int64, error)
	// Held is what a channel's active hub holds keep of its rights (nil:
	// none; only a hub holds for carts on channels).
	Held func(warehouse, sku, holder string) (int64, error)
}

// errNotOwner refuses an operation on rights the store does not own.
var errNotOwner = errors.New("rights of this holder are not this store's to write")

// Decide checks p's operations in order against v, as replica, and
// returns the totals to write, or none with p.Result saying why. It is the
// one rule both stores apply inside their write transactions.
func (p *Promise) Decide(replica string, v RightsView) ([]EscrowEntry, error) {
	type key struct{ warehouse, sku string }
	states := map[key]*crdt.Escrow{}
	var out []EscrowEntry
	for i, op := range p.Ops {
		k := key{op.Warehouse, op.SKU}
		e, ok := states[k]
		if !ok {
			state, err := v.Escrow(op.Warehouse, op.SKU)
			if err != nil {
				return nil, err
			}
			e, states[k] = &state, &state
		}
		rights := e.Rights(op.Holder)
		if op.Holder != LocalHolder && v.Held != nil {
			held, err := v.Held(op.Warehouse, op.SKU, op.Holder)
			if err != nil {
				return nil, err
			}
			rights -= held
		}
		if op.Holder == LocalHolder {
			if v.Local == nil || op.Kind != crdt.Move {
				return nil, fmt.Errorf("%s %s of %s/%s: %w", op.Holder, string(op.Kind), op.Warehouse, op.SKU, errNotOwner)
			}
			base, err := v.Local(op.Warehouse, op.SKU)
			if err != nil {
				return nil, err
			}
			rights = base - e.Promised(LocalHolder)
		}
		if op.Qty == 0 || rights < 0 || op.Qty > uint64(rights) {
			p.Result = PromiseResult{Status: PromiseInsufficient, Short: i, Rights: max(rights, 0)}
			return nil, nil
		}
		var x crdt.EscrowEntry
		var err error
		switch {
		case op.Kind == crdt.Move && op.Holder == LocalHolder:
			x, err = e.Allot(replica, op.Holder, op.To, op.Qty)
		case op.Kind == crdt.Move:
			x, err = e.Move(replica, op.Holder, op.To, op.Qty)
		case op.Kind == crdt.Spend:
			x, err = e.Spend(replica, op.Holder, op.Qty)
		default:
			err = fmt.Errorf("escrow op kind %q", op.Kind)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, EscrowEntry{Warehouse: op.Warehouse, SKU: op.SKU, EscrowEntry: x})
	}
	p.Result = PromiseResult{Status: PromiseOK}
	return out, nil
}
