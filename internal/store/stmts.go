package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// insertChunk is the most events one INSERT statement carries. Fewer,
// larger statements cut the per-statement cost (bind, step, reset and
// database/sql's bookkeeping) that dominates small inserts.
const insertChunk = 32

// eventColumns is the number of values per row of sqlInsertEvents.
const eventColumns = 15

// writerStmts are the commit loop's prepared statements, prepared once on the
// writer connection.
type writerStmts struct {
	findEvent, onHand, quarantine, ticketLines *sql.Stmt
	// addCounters[n-1] adds n counters' deltas (writeCounters).
	addCounters [counterChunk]*sql.Stmt
	// insertEvents[n-1] inserts n events, insertShared[n-1] n ≥ 2 events
	// alike in their shared columns.
	insertEvents, insertShared [insertChunk]*sql.Stmt
	// Run at the end of most transactions (raiseAlerts).
	lastDeviceSeq, saveDeviceSeq, addAlert *sql.Stmt
	// Merges from the hub: one run per entry.
	mergeEntry, ownEntry, setMeta *sql.Stmt
	mergeEscrow, ownEscrow        *sql.Stmt
	// Rights, safety stock and promises.
	escrowOf, safetyOf, setSafety, getPromise, insertPromise *sql.Stmt
	// A SKU's on_hand per location (the level cache).
	locationsOnHand *sql.Stmt
	// Totals per SKU (checkTotals).
	skuTotal *sql.Stmt
	// Reservations.
	getHold, insertHold, renewHold, endHold, expiredHolds *sql.Stmt
	prepared                                              []*sql.Stmt // all of the above, for close
}

const (
	sqlFindEvent         = `SELECT seq, body_hash FROM events WHERE device = ? AND event_id = ?`
	sqlOnHand            = `SELECT ` + sqlLevel + ` FROM counters WHERE warehouse = ? AND sku = ? AND location = ?`
	sqlAddCountersUpsert = ` ON CONFLICT (warehouse, sku, location, replica) DO UPDATE SET
			p = p + excluded.p, n = n + excluded.n, version = excluded.version, updated_at = excluded.updated_at`
	sqlTicketLines = `SELECT seq, event_id, warehouse, location, sku, to_location, qty, delta FROM events
		WHERE device = ? AND event_id >= ? AND event_id < ? ORDER BY seq`
	sqlQuarantine      = `INSERT INTO quarantine(source, device, event_id, reason, message, payload, received_at) VALUES (?,?,?,?,?,?,?)`
	sqlLocationsOnHand = `SELECT location, ` + sqlLevel + ` FROM counters WHERE warehouse = ? AND sku = ? GROUP BY location`
	sqlLastDeviceSeq   = `SELECT last_seq FROM device_seqs WHERE device = ?`
	sqlSaveDeviceSeq   = `INSERT INTO device_seqs(device, last_seq) VALUES (?, ?)
		ON CONFLICT (device) DO UPDATE SET last_seq = excluded.last_seq`
	sqlAddAlert = `INSERT INTO alerts(kind, warehouse, sku, location, device, level, expected, got, cover, lead, created_at)
		VALUES (?,?,?,?,?,?,?,?,?,?,?)`
	sqlOwnEntry  = `SELECT p, n FROM counters WHERE warehouse = ? AND sku = ? AND location = ? AND replica = ?`
	sqlOwnEscrow = `SELECT total FROM escrow WHERE warehouse = ? AND sku = ? AND replica = ? AND kind = ? AND holder = ? AND to_holder = ?`
	sqlSetMeta   = `INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`

	sqlInsertHold = `INSERT INTO holds(id, body_hash, warehouse, location, sku, qty, holder, channel, state,
		created_at, expires_at, updated_at, version) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`
	sqlRenewHold    = `UPDATE holds SET expires_at = ?, updated_at = ?, version = ? WHERE id = ?`
	sqlEndHold      = `UPDATE holds SET state = ?, updated_at = ?, event_id = ?, event_seq = ?, version = ? WHERE id = ?`
	sqlExpiredHolds = `SELECT id, warehouse, location, sku, qty FROM holds WHERE state = 'active' AND expires_at <= ?`
)

// counterChunk is the most counters' deltas one upsert carries: a commit
// touching many SKUs adds to them in a few statements, not one each.
const counterChunk = 16

// counterColumns is the number of values per row of sqlAddCounters.
const counterColumns = 8

// sqlAddCounters adds n counters' deltas to their rows (distinct keys),
// creating those missing.
func sqlAddCounters(n int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", counterColumns), ",") + ")"
	return `INSERT INTO counters(warehouse, location, sku, replica, p, n, version, updated_at) VALUES ` +
		strings.TrimSuffix(strings.Repeat(row+",", n), ",") + sqlAddCountersUpsert
}

// sqlInsertEvents inserts n events, skipping those already in the log (see
// insertChunk). OR IGNORE, not ON CONFLICT DO NOTHING: under the latter a
// NOT NULL violation would abort the statement halfway, so SQLite journals
// every page a multi-row statement touches in case it must undo it. No
// value bound here is ever NULL; a row that were would be skipped, and
// insertChunk reports a row neither inserted nor found.
func sqlInsertEvents(n int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", eventColumns), ",") + ")"
	return sqlInsertInto + strings.TrimSuffix(strings.Repeat(row+",", n), ",")
}

const sqlInsertInto = `INSERT OR IGNORE INTO events(device, event_id, body_hash, type, warehouse, location, sku, to_location, qty, delta,
	channel, device_ts, device_seq, source, received_at) VALUES `

// sqlInsertShared is sqlInsertEvents for n (at least 2) events alike in
// their shared columns, whose values are bound once, as ?1 … ?6 (the order
// of appendSharedArgs), and the other columns' per row. The driver copies
// every text value into C memory, and binding was the insert's largest
// cost: these are 6 of an event's 10 text values. SQLite numbers a bare ?
// one past the highest number so far, so the first row's device is ?7 and
// the row values follow the six. Only the shared parameters are numbered:
// the driver asks SQLite for every parameter's name, which it finds by
// scanning the numbered ones, so numbering all of them made binding
// quadratic.
func sqlInsertShared(n int) string {
	const row = "(?,?,?,?1,?2,?3,?,?4,?,?,?5,?,?,?6,?)"
	return sqlInsertInto + "(?7" + row[2:] + strings.Repeat(","+row, n-1)
}

func (s *writerStmts) prepare(ctx context.Context, db *sql.DB) error {
	type prep struct {
		dst **sql.Stmt
		sql string
	}
	all := []prep{
		{&s.findEvent, sqlFindEvent},
		{&s.onHand, sqlOnHand},
		{&s.quarantine, sqlQuarantine},
		{&s.ticketLines, sqlTicketLines},
		{&s.lastDeviceSeq, sqlLastDeviceSeq},
		{&s.saveDeviceSeq, sqlSaveDeviceSeq},
		{&s.addAlert, sqlAddAlert},
		{&s.mergeEntry, sqlMergeEntry},
		{&s.ownEntry, sqlOwnEntry},
		{&s.mergeEscrow, sqlMergeEscrow},
		{&s.ownEscrow, sqlOwnEscrow},
		{&s.escrowOf, sqlEscrowOf},
		{&s.safetyOf, sqlSafetyOf},
		{&s.locationsOnHand, sqlLocationsOnHand},
		{&s.setSafety, sqlSetSafety},
		{&s.getPromise, sqlGetPromise},
		{&s.insertPromise, sqlInsertPromise},
		{&s.setMeta, sqlSetMeta},
		{&s.skuTotal, sqlSKUTotal},
		{&s.getHold, sqlGetHold},
		{&s.insertHold, sqlInsertHold},
		{&s.renewHold, sqlRenewHold},
		{&s.endHold, sqlEndHold},
		{&s.expiredHolds, sqlExpiredHolds},
	}
	for n := 1; n <= counterChunk; n++ {
		all = append(all, prep{&s.addCounters[n-1], sqlAddCounters(n)})
	}
	for n := 1; n <= insertChunk; n++ {
		all = append(all, prep{&s.insertEvents[n-1], sqlInsertEvents(n)})
		if n >= 2 {
			all = append(all, prep{&s.insertShared[n-1], sqlInsertShared(n)})
		}
	}
	for _, p := range all {
		st, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", p.sql, err)
		}
		*p.dst = st
		s.prepared = append(s.prepared, st)
	}
	return nil
}

// close releases the statements; closing the connection releases them too,
// so errors here change nothing.
func (s *writerStmts) close() {
	for _, st := range s.prepared {
		_ = st.Close()
	}
}

// boundStmts are writerStmts bound to one transaction, each on first use:
// a transaction uses few of them.
type boundStmts struct {
	tx    *sql.Tx
	src   *writerStmts
	bound map[*sql.Stmt]*sql.Stmt
	q     *quarantineTx // every quarantine row goes through it (limits)
}

func (s *writerStmts) in(tx *sql.Tx) *boundStmts {
	return &boundStmts{tx: tx, src: s, bound: make(map[*sql.Stmt]*sql.Stmt, 4)}
}

// insertEvents returns the statement inserting n events, bound to the
// transaction.
func (b *boundStmts) insertEvents(n int) *sql.Stmt { return b.use(b.src.insertEvents[n-1]) }

// insertShared returns the statement inserting n ≥ 2 events alike in
// their shared columns, bound to the transaction (see alike).
func (b *boundStmts) insertShared(n int) *sql.Stmt { return b.use(b.src.insertShared[n-1]) }

// use returns st, one of the writerStmts, bound to the transaction.
func (b *boundStmts) use(st *sql.Stmt) *sql.Stmt {
	t, ok := b.bound[st]
	if !ok {
		t = b.tx.Stmt(st)
		b.bound[st] = t
	}
	return t
}
