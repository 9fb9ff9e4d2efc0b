package store

import (
	"context"
	"database/sql"
	"errors"
)

// maxLevels bounds the level cache: past it, it starts over.
const maxLevels = 20000

// skuLevel is the committed state of one of this warehouse's SKUs that the
// commit loop reads for each hold it takes and each alert it judges:
// on_hand per location and over all of them, the safety stock and what
// the channels were promised (crdt.Escrow.Promised(LocalHolder)).
//
// The commit loop owns the cache (db.levelCache). It reads a SKU's level
// once, in a transaction that has not written the SKU's counters, rights
// or safety in SQL (st.dirty), taking off the transaction's own event
// deltas when writeCounters has put them in SQL already, so that what it
// keeps is committed. It adds each commit's event deltas to the levels it
// keeps, and drops a SKU a transaction made dirty, to read it again when
// next needed. Every read adds the transaction's own event deltas
// (st.counters) to the committed level.
type skuLevel struct {
	locations []locationLevel // usually one
	onHand    int64           // over every location
	safety    int64
	promised  int64
}

type locationLevel struct {
	location string
	onHand   int64
}

func (l *skuLevel) at(location string) int64 {
	for _, x := range l.locations {
		if x.location == location {
			return x.onHand
		}
	}
	return 0
}

func (l *skuLevel) add(location string, d int64) {
	l.onHand += d
	for i := range l.locations {
		if l.locations[i].location == location {
			l.locations[i].onHand += d
			return
		}
	}
	l.locations = append(l.locations, locationLevel{location, d})
}

// dirty reports whether this transaction wrote sku's counters (a merge),
// rights or safety stock in SQL: its committed level is not what the
// transaction reads, and the cached one is dropped at the commit.
func (st *txState) dirty(warehouse, sku string) bool {
	k := stockKey{warehouse, sku, ""}
	return st.rights[k] || st.mergedSKUs[k]
}

// levelOf returns sku's level as of this point of the transaction, but
// for the transaction's event deltas before writeCounters (the caller's
// to add: withDeltas tells whether to). The result is the cache's: read,
// never changed, by the caller.
func (db *DB) levelOf(ctx context.Context, s *boundStmts, st *txState, sku string) (l *skuLevel, withDeltas bool, err error) {
	if st.dirty(db.warehouse, sku) {
		l, err := db.readLevel(ctx, s, sku)
		return l, !st.countersWritten, err
	}
	if l := db.levelCache[sku]; l != nil {
		return l, true, nil
	}
	if l, err = db.readLevel(ctx, s, sku); err != nil {
		return nil, false, err
	}
	if st.countersWritten {
		// SQL holds the transaction's deltas by now: take them off, so
		// that the cache holds what is committed.
		for k, c := range st.counters {
			if k.warehouse == db.warehouse && k.sku == sku {
				l.add(k.location, -(c.p - c.n))
			}
		}
	}
	if len(db.levelCache) >= maxLevels {
		clear(db.levelCache)
	}
	db.levelCache[sku] = l
	return l, true, nil
}

// readLevel reads sku's level in the transaction.
func (db *DB) readLevel(ctx context.Context, s *boundStmts, sku string) (*skuLevel, error) {
	l := &skuLevel{}
	rows, err := s.use(s.src.locationsOnHand).QueryContext(ctx, db.warehouse, sku)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var x locationLevel
		if err := rows.Scan(&x.location, &x.onHand); err != nil {
			rows.Close()
			return nil, err
		}
		l.locations = append(l.locations, x)
		l.onHand += x.onHand
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if err := s.use(s.src.safetyOf).QueryRowContext(ctx, db.warehouse, sku).Scan(&l.safety); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	e, err := db.escrowOf(ctx, s, db.warehouse, sku)
	if err != nil {
		return nil, err
	}
	l.promised = e.Promised(LocalHolder)
	return l, nil
}

// onHandAt is k's on_hand as of this point of the transaction.
func (db *DB) onHandAt(ctx context.Context, s *boundStmts, st *txState, k stockKey) (int64, error) {
	if k.warehouse != db.warehouse {
		if st.countersWritten {
			return onHandNow(ctx, s, nil, k)
		}
		return onHandNow(ctx, s, st.counters, k)
	}
	l, withDeltas, err := db.levelOf(ctx, s, st, k.sku)
	if err != nil {
		return 0, err
	}
	n := l.at(k.location)
	if c := st.counters[k]; c != nil && withDeltas {
		n += c.p - c.n
	}
	return n, nil
}

// skuAt is sku's level as of this point of the transaction: on_hand over
// every location (with the transaction's deltas of it), safety stock and
// what the channels were promised.
func (db *DB) skuAt(ctx context.Context, s *boundStmts, st *txState, sku string) (onHand, safety, promised int64, err error) {
	l, withDeltas, err := db.levelOf(ctx, s, st, sku)
	if err != nil {
		return 0, 0, 0, err
	}
	onHand = l.onHand
	if withDeltas {
		for k, c := range st.counters {
			if k.warehouse == db.warehouse && k.sku == sku {
				onHand += c.p - c.n
			}
		}
	}
	return onHand, l.safety, l.promised, nil
}

// commitLevels keeps the cache current after a commit of st.
func (db *DB) commitLevels(st *txState) {
	if st.oldReplica != "" { // a new incarnation: start over
		clear(db.levelCache)
		return
	}
	for k := range st.rights {
		delete(db.levelCache, k.sku)
	}
	for k := range st.merged {
		delete(db.levelCache, k.sku)
	}
	for k, c := range st.counters {
		if l := db.levelCache[k.sku]; l != nil && k.warehouse == db.warehouse {
			l.add(k.location, c.p-c.n)
		}
	}
}
