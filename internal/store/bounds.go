package store

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/edgestock/edgestock/crdt"
)

// MaxTotal bounds every PN-counter total the stores keep: each entry's P
// and N, and per SKU the sum of P and the sum of N over all of its entries
// (every warehouse, location and replica). 2^53 is the largest integer
// JSON clients (JavaScript, float64 parsers) hold exactly. Bounding the SKU,
// not only the stock key, bounds every sum a read takes (a location, a
// warehouse over its locations, the company over its warehouses) to
// ±2^53: SQLite's SUM, which fails past 2^63, never overflows, and every
// value a view shows is exact. Real stock is many orders of magnitude
// below it: 2^53 units is 9 billion events of the largest quantity.
const MaxTotal = crdt.MaxTotal

// ErrOutOfRange is the class of RangeError: a merge or an event would take
// a total past MaxTotal. Retrying cannot help; the write is refused.
var ErrOutOfRange = errors.New("total out of range")

// RangeError names what passed MaxTotal.
type RangeError struct {
	Warehouse, Location, SKU, Replica string // Replica and location only for a single entry
	Side                              string // "p", "n", or "escrow" and the kind of a total
	Total                             uint64 // the total it would have reached (saturated)
}

func (e *RangeError) Error() string {
	if e.Replica != "" {
		return fmt.Sprintf("%v: entry %s/%s/%s of replica %s: %s = %d exceeds 2^53", ErrOutOfRange,
			e.Warehouse, e.Location, e.SKU, e.Replica, e.Side, e.Total)
	}
	return fmt.Sprintf("%v: sku %s: the sum of %s over its entries would reach %d, past 2^53", ErrOutOfRange, e.SKU, e.Side, e.Total)
}

func (e *RangeError) Unwrap() error { return ErrOutOfRange }

// skuTotal is Σp and Σn over one SKU's entries.
type skuTotal struct{ p, n uint64 }

// check returns a RangeError if t passes MaxTotal.
func (t skuTotal) check(sku string) error {
	switch {
	case t.p > MaxTotal:
		return &RangeError{SKU: sku, Side: "p", Total: t.p}
	case t.n > MaxTotal:
		return &RangeError{SKU: sku, Side: "n", Total: t.n}
	}
	return nil
}

// addSat adds without wrapping: past math.MaxUint64 it stays there.
func addSat(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}

// AddOnHand adds two levels, saturating at the int64 limits instead of
// wrapping: a database filled before totals were bounded still reads.
func AddOnHand(a, b int64) int64 {
	switch s := a + b; {
	case a > 0 && b > 0 && s < 0:
		return math.MaxInt64
	case a < 0 && b < 0 && s >= 0:
		return math.MinInt64
	default:
		return s
	}
}

const (
	sqlSKUTotal   = `SELECT COALESCE(SUM(p), 0), COALESCE(SUM(n), 0) FROM counters WHERE sku = ?`
	sqlSKUEntries = `SELECT p, n FROM counters WHERE sku = ?`
)

// readSKUTotal reads sku's totals in the transaction. SUM is exact and
// cheap while the bound holds; past 2^63 (a database filled before it was
// enforced) it fails, and the entries are added here, saturating.
func readSKUTotal(ctx context.Context, s *boundStmts, sku string) (skuTotal, error) {
	var p, n int64
	if err := s.use(s.src.skuTotal).QueryRowContext(ctx, sku).Scan(&p, &n); err == nil {
		return skuTotal{uint64(p), uint64(n)}, nil
	}
	rows, err := s.tx.QueryContext(ctx, sqlSKUEntries, sku)
	if err != nil {
		return skuTotal{}, fmt.Errorf("sku totals: %w", err)
	}
	defer rows.Close()
	var t skuTotal
	for rows.Next() {
		if err := rows.Scan(&p, &n); err != nil {
			return skuTotal{}, fmt.Errorf("sku totals: %w", err)
		}
		t.p, t.n = addSat(t.p, uint64(p)), addSat(t.n, uint64(n))
	}
	return t, rows.Err()
}

// checkTotals holds the SKUs a transaction changed to MaxTotal, once its
// counters are written. The totals of SKUs seen before are kept in memory
// (db.totals, commit loop only, updated after the commit), so own events
// cost a map lookup; a SKU seen first, or raised by a merge, is read.
func (db *DB) checkTotals(ctx context.Context, s *boundStmts, st *txState) error {
	own := map[string]skuTotal{}
	for k, c := range st.counters {
		t := own[k.sku]
		t.p, t.n = addSat(t.p, uint64(c.p)), addSat(t.n, uint64(c.n))
		own[k.sku] = t
	}
	merged := map[string]bool{}
	for k := range st.merged {
		merged[k.sku] = true
		if _, ok := own[k.sku]; !ok {
			own[k.sku] = skuTotal{}
		}
	}
	for sku, d := range own {
		cur, known := db.totals[sku]
		if known && !merged[sku] {
			cur = skuTotal{addSat(cur.p, d.p), addSat(cur.n, d.n)}
		} else {
			var err error
			if cur, err = readSKUTotal(ctx, s, sku); err != nil {
				return err
			}
		}
		if err := cur.check(sku); err != nil {
			return err
		}
		st.totals[sku] = cur
	}
	return nil
}
