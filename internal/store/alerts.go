package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"time"
)

// Alert kinds (SPEC §3).
const (
	AlertLowStock      = "low_stock"
	AlertRestocked     = "restocked"
	AlertNegativeStock = "negative_stock"
	AlertDeviceGap     = "device_gap"
	// AlertShortfall: a sale took the warehouse's unallotted stock below
	// zero, into units its channels were allotted or sold (SPEC §9).
	AlertShortfall = "allotment_shortfall"
	// AlertStockoutRisk: days of cover fell below the lead time (SPEC §12);
	// AlertStockoutRiskCleared: it is back above, with hysteresis.
	AlertStockoutRisk        = "stockout_risk"
	AlertStockoutRiskCleared = "stockout_risk_cleared"
)

// Alert is a row of the outbox. It is written in the same transaction as
// the change that raised it, so each crossing is recorded exactly once,
// whatever crashes; delivery reads the outbox by Seq.
type Alert struct {
	Seq       int64
	Kind      string
	Warehouse string
	SKU       string
	Location  string // negative_stock
	Device    string // device_gap
	Level     int64  // low_stock, restocked: available; negative_stock: on_hand; allotment_shortfall: unallotted
	Expected  int64  // device_gap: the seq that was due
	Got       int64  // device_gap: the seq that came
	// stockout_risk, stockout_risk_cleared: the days of cover then (Level
	// is the stock position) and the SKU's lead time.
	DaysOfCover, LeadTimeDays float64
	CreatedAt                 time.Time
}

// LowStockRule decides a SKU's low-stock state from its previous state and
// its available quantity (on_hand minus active holds), so thresholds and
// hysteresis stay business rules of the agent.
type LowStockRule interface {
	Low(sku string, wasLow bool, available int64) bool
}

// Committed tells the agent what a commit changed, after it is durable.
type Committed struct {
	Warehouse string
	SKUs      []string // SKUs whose stock, holds or global state changed
	Alerts    int      // alerts added to the outbox
}

// alertState is what one transaction adds to the alert state.
type alertState struct {
	seqs   map[string]int64 // device → last seq seen in this transaction
	order  []string         // devices in first-seen order
	gaps   []Alert
	low    map[string]bool // sku → new low state
	alerts int
}

// noteSeq records an applied event's device seq; a skip is a device_gap.
func (db *DB) noteSeq(ctx context.Context, s *boundStmts, st *txState, device string, seq int64) error {
	if seq <= 0 {
		return nil
	}
	last, ok := st.alerts.seqs[device]
	if !ok {
		err := s.use(s.src.lastDeviceSeq).QueryRowContext(ctx, device).Scan(&last)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		st.alerts.order = append(st.alerts.order, device)
	}
	if last > 0 && seq > last+1 {
		st.alerts.gaps = append(st.alerts.gaps, Alert{Kind: AlertDeviceGap, Device: device, Expected: last + 1, Got: seq})
	}
	st.alerts.seqs[device] = max(last, seq)
	return nil
}

// addAlert writes a to the outbox, created at now, in the transaction.
func (s *boundStmts) addAlert(ctx context.Context, st *txState, a Alert, now time.Time) error {
	_, err := s.use(s.src.addAlert).ExecContext(ctx, a.Kind, a.Warehouse, a.SKU, a.Location, a.Device, a.Level, a.Expected, a.Got,
		a.DaysOfCover, a.LeadTimeDays, now.UnixMilli())
	st.alerts.alerts++
	return err
}

// raiseAlerts runs at the end of a transaction, after the counters are
// written: it compares levels before and after and writes the outbox.
func (db *DB) raiseAlerts(ctx context.Context, s *boundStmts, st *txState, now time.Time) error {
	add := func(a Alert) error { return s.addAlert(ctx, st, a, now) }
	for _, d := range st.alerts.order {
		if _, err := s.use(s.src.saveDeviceSeq).ExecContext(ctx, d, st.alerts.seqs[d]); err != nil {
			return err
		}
	}
	for _, g := range st.alerts.gaps {
		g.Warehouse = db.warehouse
		if err := add(g); err != nil {
			return err
		}
	}
	// negative_stock: a location crossing from >= 0 to < 0.
	for _, k := range sortedKeys(st.counters) {
		c := st.counters[k]
		if c.n == 0 {
			continue
		}
		after, err := db.onHandAt(ctx, s, st, k)
		if err != nil {
			return err
		}
		if before := after - (c.p - c.n); after < 0 && before >= 0 {
			if err := add(Alert{Kind: AlertNegativeStock, Warehouse: k.warehouse, SKU: k.sku, Location: k.location, Level: after}); err != nil {
				return err
			}
		}
	}
	if err := db.raiseShortfalls(ctx, s, st, add); err != nil {
		return err
	}
	if db.lowRule == nil {
		return nil
	}
	for _, sku := range st.touchedSKUs(db.warehouse, false) {
		onHand, _, _, err := db.skuAt(ctx, s, st, sku)
		if err != nil {
			return err
		}
		available := onHand - db.reservedSKU(st, sku)
		wasLow := db.low[sku]
		low := db.lowRule.Low(sku, wasLow, available)
		if low == wasLow {
			continue
		}
		st.alerts.low[sku] = low
		kind, stmt := AlertLowStock, `INSERT INTO low_skus(warehouse, sku) VALUES (?, ?) ON CONFLICT DO NOTHING`
		if !low {
			kind, stmt = AlertRestocked, `DELETE FROM low_skus WHERE warehouse = ? AND sku = ?`
		}
		if _, err := s.tx.ExecContext(ctx, stmt, db.warehouse, sku); err != nil {
			return err
		}
		if err := add(Alert{Kind: kind, Warehouse: db.warehouse, SKU: sku, Level: available}); err != nil {
			return err
		}
	}
	return nil
}

// touchedSKUs are the SKUs of warehouse whose counters, holds or merged
// state changed; with all, those of every warehouse (a hub, or an agent's
// global view).
func (st *txState) touchedSKUs(warehouse string, all bool) []string {
	set := map[string]bool{}
	for k := range st.counters {
		if all || k.warehouse == warehouse {
			set[k.sku] = true
		}
	}
	for k := range st.reserved {
		if all || k.warehouse == warehouse {
			set[k.sku] = true
		}
	}
	for k := range st.merged {
		if all || k.warehouse == warehouse {
			set[k.sku] = true
		}
	}
	// Rights, safety and hub holds change what a view shows (all: the
	// commit's notification), not on_hand − reserved, which the low-stock
	// rule reads: no query for them there.
	for k := range st.rights {
		if all {
			set[k.sku] = true
		}
	}
	out := make([]string, 0, len(set))
	for sku := range set {
		out = append(out, sku)
	}
	sort.Strings(out)
	return out
}

// reservedSKU is the quantity held for sku across locations, as of this
// point of the transaction.
func (db *DB) reservedSKU(st *txState, sku string) int64 {
	n := db.reservedBySKU[sku]
	for k, q := range st.reserved { // the transaction's own changes: few
		if k.sku == sku && k.warehouse == db.warehouse {
			n += q
		}
	}
	return n
}

func sortedKeys(m counterDeltas) []stockKey {
	keys := make([]stockKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.sku != b.sku {
			return a.sku < b.sku
		}
		return a.location < b.location
	})
	return keys
}

// loadLow reads which SKUs are low.
func (db *DB) loadLow(ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}) error {
	rows, err := q.QueryContext(ctx, `SELECT sku FROM low_skus WHERE warehouse = ?`, db.warehouse)
	if err != nil {
		return err
	}
	defer rows.Close()
	db.low = map[string]bool{}
	for rows.Next() {
		var sku string
		if err := rows.Scan(&sku); err != nil {
			return err
		}
		db.low[sku] = true
	}
	return rows.Err()
}

// LowPage lists the SKUs in the low-stock state in SKU order: those after
// `after` that start with prefix, at most limit of them.
func (db *DB) LowPage(ctx context.Context, prefix, after string, limit int) ([]string, error) {
	return db.skuList(ctx, sqlLowPage, db.warehouse, after, prefix, limit)
}

// LowOf returns which of skus are in the low-stock state.
func (db *DB) LowOf(ctx context.Context, skus []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(skus) == 0 {
		return out, nil
	}
	query, arg := sqlLowOf.of(skus)
	low, err := db.skuList(ctx, query, db.warehouse, arg)
	if err != nil {
		return nil, err
	}
	for _, sku := range low {
		out[sku] = true
	}
	return out, nil
}

// Alerts returns up to limit outbox rows with seq > since, in order.
func (db *DB) Alerts(ctx context.Context, since int64, limit int) ([]Alert, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT seq, kind, warehouse, sku, location, device, level, expected, got, cover, lead, created_at
		FROM alerts WHERE seq > ? ORDER BY seq LIMIT ?`, since, limit)
	if err != nil {
		return nil, fmt.Errorf("query alerts: %w", err)
	}
	defer rows.Close()
	var out []Alert
	for rows.Next() {
		var a Alert
		var created int64
		if err := rows.Scan(&a.Seq, &a.Kind, &a.Warehouse, &a.SKU, &a.Location, &a.Device, &a.Level, &a.Expected, &a.Got,
			&a.DaysOfCover, &a.LeadTimeDays, &created); err != nil {
			return nil, fmt.Errorf("query alerts: %w", err)
		}
		a.CreatedAt = time.UnixMilli(created).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// Cursor reads a named delivery cursor (0 when never set).
func (db *DB) Cursor(ctx context.Context, name string) (int64, error) {
	v, err := db.Meta(ctx, "cursor:"+name)
	if err != nil || v == "" {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// SetCursor durably stores a named delivery cursor.
func (db *DB) SetCursor(ctx context.Context, name string, v int64) error {
	_, err := db.writer.ExecContext(ctx, sqlSetMeta, "cursor:"+name, strconv.FormatInt(v, 10))
	return err
}

// raiseShortfalls raises allotment_shortfall for each SKU of this
// warehouse whose unallotted stock (on_hand less what its channels hold or
// sold and have not picked) this transaction took from >= 0 to < 0: a
// fact (a sale at the till, a loss) took units a channel was promised.
// The units are not taken from the channel: someone must make them good.
func (db *DB) raiseShortfalls(ctx context.Context, s *boundStmts, st *txState, add func(Alert) error) error {
	fell := map[string]int64{}
	for k, c := range st.counters {
		if k.warehouse == db.warehouse && (db.rightsSKUs[k.sku] || st.rights[stockKey{k.warehouse, k.sku, ""}]) {
			fell[k.sku] += c.p - c.n
		}
	}
	for _, sku := range slices.Sorted(maps.Keys(fell)) {
		// A pick lowers on_hand and Promised alike: what a settled line
		// took off Promised is not a fall of the warehouse's own stock.
		d := fell[sku] + st.delivered[sku]
		if d >= 0 {
			continue
		}
		onHand, _, promised, err := db.skuAt(ctx, s, st, sku)
		if err != nil {
			return err
		}
		// No channel holds or awaits any of it: negative_stock says it all.
		if promised > 0 && onHand-promised < 0 && onHand-promised-d >= 0 {
			after := onHand - promised
			if err := add(Alert{Kind: AlertShortfall, Warehouse: db.warehouse, SKU: sku, Level: after}); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadRightsSKUs reads which of this warehouse's SKUs have rights totals.
func (db *DB) loadRightsSKUs(ctx context.Context, tx *sql.Tx) error {
	db.rightsSKUs = map[string]bool{}
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT sku FROM escrow WHERE warehouse = ?`, db.warehouse)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var sku string
		if err := rows.Scan(&sku); err != nil {
			return err
		}
		db.rightsSKUs[sku] = true
	}
	return rows.Err()
}
