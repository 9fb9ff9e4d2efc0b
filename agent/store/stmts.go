package store

import (
	"context"
	"database/sql"
	"fmt"
)

// writerStmts are the commit loop's prepared statements, prepared once on the
// writer connection.
type writerStmts struct {
	findEvent, onHand, insertEvent, addCounter, quarantine *sql.Stmt
}

const (
	sqlFindEvent   = `SELECT seq, body_hash FROM events WHERE device = ? AND event_id = ?`
	sqlOnHand      = `SELECT COALESCE(SUM(p) - SUM(n), 0) FROM counters WHERE warehouse = ? AND sku = ? AND location = ?`
	sqlInsertEvent = `INSERT INTO events(device, event_id, body_hash, type, warehouse, location, sku, to_location, qty, delta,
		channel, device_ts, device_seq, source, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (device, event_id) DO NOTHING RETURNING seq`
	sqlAddCounter = `INSERT INTO counters(warehouse, location, sku, replica, p, n, version, updated_at) VALUES (?,?,?,?,?,?,?,?)
		ON CONFLICT (warehouse, sku, location, replica) DO UPDATE SET
			p = p + excluded.p, n = n + excluded.n, version = excluded.version, updated_at = excluded.updated_at`
	sqlQuarantine = `INSERT INTO quarantine(source, device, event_id, reason, message, payload, received_at) VALUES (?,?,?,?,?,?,?)`
)

func (s *writerStmts) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&s.findEvent, sqlFindEvent},
		{&s.onHand, sqlOnHand},
		{&s.insertEvent, sqlInsertEvent},
		{&s.addCounter, sqlAddCounter},
		{&s.quarantine, sqlQuarantine},
	} {
		st, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", p.sql, err)
		}
		*p.dst = st
	}
	return nil
}

// close releases the statements; closing the connection releases them too,
// so errors here change nothing.
func (s *writerStmts) close() {
	for _, st := range []*sql.Stmt{s.findEvent, s.onHand, s.insertEvent, s.addCounter, s.quarantine} {
		if st != nil {
			_ = st.Close()
		}
	}
}

// boundStmts are writerStmts bound to one transaction.
type boundStmts struct {
	findEvent, onHand, insertEvent, addCounter, quarantine *sql.Stmt
}

func (s *writerStmts) in(tx *sql.Tx) boundStmts {
	return boundStmts{
		findEvent:   tx.Stmt(s.findEvent),
		onHand:      tx.Stmt(s.onHand),
		insertEvent: tx.Stmt(s.insertEvent),
		addCounter:  tx.Stmt(s.addCounter),
		quarantine:  tx.Stmt(s.quarantine),
	}
}
