package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// stockKey identifies a counter of this replica.
type stockKey struct{ warehouse, sku, location string }

// counterDeltas gathers a transaction's growth of this replica's own
// entries, so a batch of 1,000 events on 100 SKUs writes 100 counter rows,
// not 1,000. P collects positive deltas and N negative ones: each only grows.
type counterDeltas map[stockKey]*struct{ p, n int64 }

// addEvent records an applied event's effect: delta at its location and,
// for a transfer, −delta at the target.
func (d counterDeltas) addEvent(e *Event, delta int64) {
	if delta == 0 {
		return
	}
	d.add(stockKey{e.Warehouse, e.SKU, e.Location}, delta)
	if e.ToLocation != "" {
		d.add(stockKey{e.Warehouse, e.SKU, e.ToLocation}, -delta)
	}
}

func (d counterDeltas) add(k stockKey, delta int64) {
	c := d[k]
	if c == nil {
		c = &struct{ p, n int64 }{}
		d[k] = c
	}
	if delta > 0 {
		c.p += delta
	} else {
		c.n -= delta
	}
}

// slot is an event waiting in a chunk and where its outcome goes.
type slot struct {
	event   *Event
	outcome *Outcome
}

// insertChunk writes chunk to the log with one INSERT OR IGNORE. Rows get
// consecutive seqs in chunk order (the seq is the rowid, one more than the
// largest, and rows are never deleted), and a skipped row takes none, so
// the inserted rows have the seqs last−inserted+1 … last. When every row
// went in (the common case), row i has seq first+i and nothing is read
// back. Otherwise each row is looked up: a row holding a seq of this range
// that no earlier row of the chunk claimed is the one inserted; any other
// is a duplicate or a reused id.
func (db *DB) insertChunk(ctx context.Context, s *boundStmts, st *txState, chunk []slot) error {
	if len(chunk) == 0 {
		return nil
	}
	args := make([]any, 0, eventColumns*len(chunk))
	insert := s.insertEvents(len(chunk))
	if alike(chunk) {
		insert = s.insertShared(len(chunk))
		args = appendSharedArgs(args, chunk[0].event)
		for _, sl := range chunk {
			args = appendRowArgs(args, sl.event)
		}
	} else {
		for _, sl := range chunk {
			args = appendEventArgs(args, sl.event)
		}
	}
	res, err := insert.ExecContext(ctx, args...)
	if err != nil {
		return fmt.Errorf("commit: insert events: %w", err)
	}
	inserted, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("commit: insert events: %w", err)
	}
	var first, last int64
	if inserted > 0 {
		if last, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("commit: insert events: %w", err)
		}
		first = last - inserted + 1
	}
	applied := func(sl slot, seq int64) error {
		e := sl.event
		st.counters.addEvent(e, e.Delta)
		if err := db.noteSeq(ctx, s, st, e.Device, e.DeviceSeq); err != nil {
			return fmt.Errorf("commit: device seq: %w", err)
		}
		*sl.outcome = Outcome{Status: Applied, Seq: seq, Delta: e.Delta}
		return nil
	}
	if inserted == int64(len(chunk)) {
		for i, sl := range chunk {
			if err := applied(sl, first+int64(i)); err != nil {
				return err
			}
		}
		return nil
	}
	claimed := 0 // rows of this chunk's range given out, in seq order
	for _, sl := range chunk {
		e := sl.event
		seq, hash, found, err := logged(ctx, s, e)
		if err == nil && !found {
			err = errors.New("neither inserted nor found")
		}
		if err != nil {
			return fmt.Errorf("commit: find event %s/%s: %w", e.Device, e.ID, err)
		}
		if seq == first+int64(claimed) { // the row this chunk inserted for e
			claimed++
			if err := applied(sl, seq); err != nil {
				return err
			}
			continue
		}
		if *sl.outcome, err = loggedBefore(ctx, s, e, seq, hash); err != nil {
			return fmt.Errorf("commit: find event %s/%s: %w", e.Device, e.ID, err)
		}
	}
	if int64(claimed) != inserted {
		return fmt.Errorf("commit: insert events: %d rows inserted but %d found", inserted, claimed)
	}
	return nil
}

// onHandNow is k's on_hand as of this point of the transaction: the
// committed level plus the transaction's own deltas.
func onHandNow(ctx context.Context, s *boundStmts, deltas counterDeltas, k stockKey) (int64, error) {
	var onHand int64
	if err := s.use(s.src.onHand).QueryRowContext(ctx, k.warehouse, k.sku, k.location).Scan(&onHand); err != nil {
		return 0, err
	}
	if c := deltas[k]; c != nil {
		onHand += c.p - c.n
	}
	return onHand, nil
}

// applyCount applies a count: dedupe first, then read on_hand (including
// this transaction's earlier changes) and record delta = counted − on_hand.
func applyCount(ctx context.Context, s *boundStmts, deltas counterDeltas, e *Event) (Outcome, error) {
	if o, found, err := findEvent(ctx, s, e); found || err != nil {
		return o, err
	}
	onHand, err := onHandNow(ctx, s, deltas, stockKey{e.Warehouse, e.SKU, e.Location})
	if err != nil {
		return Outcome{}, err
	}
	logged := *e
	logged.Delta = e.Qty - onHand
	seq, _, err := insertOne(ctx, s, &logged) // findEvent saw no row
	if err != nil {
		return Outcome{}, err
	}
	delta := logged.Delta
	deltas.addEvent(e, delta)
	return Outcome{Status: Applied, Seq: seq, Delta: delta}, nil
}

// applyVoid reverses every line of ticket e.Reverses of e.Device that is not
// reversed yet. Reversal ids derive from the voided lines, so a second void
// of the same ticket, under any id, finds them all present: a duplicate.
func applyVoid(ctx context.Context, s *boundStmts, deltas counterDeltas, e *Event) (Outcome, error) {
	// The void's own id is recorded like any event's: the same void again is
	// a duplicate, the same id voiding another ticket is id_reused.
	if o, found, err := findEvent(ctx, s, e); found || err != nil {
		return o, err
	}
	lines, err := ticketLines(ctx, s, e.Device, e.Reverses)
	if err != nil {
		return Outcome{}, err
	}
	if len(lines) == 0 {
		err := s.q.add(ctx, s, Rejected{Source: e.Source, Device: e.Device, EventID: e.ID, Reason: string(UnknownTicket),
			Message: fmt.Sprintf("void of ticket %q: device %s sent no such ticket", e.Reverses, e.Device), Payload: e.Raw, ReceivedAt: e.ReceivedAt})
		return Outcome{Status: UnknownTicket}, err
	}
	// The void's row names no stock key: its effect is the reversal rows.
	logged := *e
	logged.Location, logged.SKU, logged.ToLocation, logged.Qty, logged.Delta = "", "", "", 0, 0
	voidSeq, _, err := insertOne(ctx, s, &logged) // findEvent saw no row
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{Status: Duplicate, Seq: voidSeq} // until a line is reversed: voided before
	for _, l := range lines {
		rev := Event{Device: e.Device, ID: "void:" + l.ID, BodyHash: []byte("void"), Type: e.Type, Warehouse: l.Warehouse,
			Location: l.Location, SKU: l.SKU, ToLocation: l.ToLocation, Qty: l.Qty, Delta: -l.Delta, Channel: e.Channel,
			DeviceTS: e.DeviceTS, Source: e.Source, ReceivedAt: e.ReceivedAt}
		_, inserted, err := insertOne(ctx, s, &rev)
		if err != nil {
			return Outcome{}, err
		}
		if !inserted {
			continue // this line is already reversed
		}
		deltas.addEvent(&rev, rev.Delta)
		out.Status = Applied
	}
	return out, nil
}

// appendEventArgs appends e's values for sqlInsertEvents' columns.
func appendEventArgs(args []any, e *Event) []any {
	return append(args, e.Device, e.ID, e.BodyHash, e.Type, e.Warehouse, e.Location, e.SKU,
		e.ToLocation, e.Qty, e.Delta, e.Channel, e.DeviceTS, e.DeviceSeq, e.Source, e.ReceivedAt.UnixMilli())
}

// appendSharedArgs appends the values sqlInsertShared binds once: those of
// the columns events from one source at one place usually share.
func appendSharedArgs(args []any, e *Event) []any {
	return append(args, e.Type, e.Warehouse, e.Location, e.ToLocation, e.Channel, e.Source)
}

// appendRowArgs appends the values sqlInsertShared binds for each row.
func appendRowArgs(args []any, e *Event) []any {
	return append(args, e.Device, e.ID, e.BodyHash, e.SKU, e.Qty, e.Delta, e.DeviceTS, e.DeviceSeq, e.ReceivedAt.UnixMilli())
}

// alike reports whether chunk holds more than one event and all agree in
// the columns of appendSharedArgs, so sqlInsertShared can insert them.
func alike(chunk []slot) bool {
	if len(chunk) < 2 {
		return false
	}
	a := chunk[0].event
	for _, sl := range chunk[1:] {
		e := sl.event
		if e.Type != a.Type || e.Warehouse != a.Warehouse || e.Location != a.Location ||
			e.ToLocation != a.ToLocation || e.Channel != a.Channel || e.Source != a.Source {
			return false
		}
	}
	return true
}

// insertOne logs e unless (device, id) is already in the log; it returns
// e's seq when inserted. A row OR IGNORE skipped that is not in the log
// either (a NULL column) is an error, as in insertChunk.
func insertOne(ctx context.Context, s *boundStmts, e *Event) (seq int64, inserted bool, err error) {
	res, err := s.insertEvents(1).ExecContext(ctx, appendEventArgs(make([]any, 0, eventColumns), e)...)
	if err != nil {
		return 0, false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, false, err
	}
	if n == 0 {
		if _, _, found, err := logged(ctx, s, e); err != nil || !found {
			return 0, false, errors.Join(err, fmt.Errorf("event %s/%s neither inserted nor found", e.Device, e.ID))
		}
		return 0, false, nil
	}
	seq, err = res.LastInsertId()
	return seq, err == nil, err
}

// ticketLines returns the events "{ticket}/{i}" of device, in log order.
func ticketLines(ctx context.Context, s *boundStmts, device, ticket string) ([]LoggedEvent, error) {
	// '0' follows '/' in byte order: [ticket+"/", ticket+"0") is the prefix range.
	rows, err := s.use(s.src.ticketLines).QueryContext(ctx, device, ticket+"/", ticket+"0")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LoggedEvent
	for rows.Next() {
		var l LoggedEvent
		if err := rows.Scan(&l.Seq, &l.ID, &l.Warehouse, &l.Location, &l.SKU, &l.ToLocation, &l.Qty, &l.Delta); err != nil {
			return nil, err
		}
		// Only line events "{ticket}/{n}": not "{ticket}/2/1" of another
		// ticket whose id starts the same.
		if line := l.ID[len(ticket)+1:]; line == "" || strings.Trim(line, "0123456789") != "" {
			continue
		}
		l.Device = device
		out = append(out, l)
	}
	return out, rows.Err()
}

// findEvent looks up e's (device, id) in the log: found, it is a
// duplicate or a reused id (loggedBefore).
func findEvent(ctx context.Context, s *boundStmts, e *Event) (Outcome, bool, error) {
	seq, hash, found, err := logged(ctx, s, e)
	if !found || err != nil {
		return Outcome{}, found, err
	}
	o, err := loggedBefore(ctx, s, e, seq, hash)
	return o, true, err
}

// logged returns the seq and body hash of the log's row for e's (device,
// id), if there is one.
func logged(ctx context.Context, s *boundStmts, e *Event) (seq int64, hash []byte, found bool, err error) {
	switch err := s.use(s.src.findEvent).QueryRowContext(ctx, e.Device, e.ID).Scan(&seq, &hash); {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil, false, nil
	case err != nil:
		return 0, nil, false, err
	}
	return seq, hash, true, nil
}

// loggedBefore is e's outcome when its id was logged before as row seq
// with body hash: the same body is a duplicate; another is id_reused, and
// the payload is quarantined.
func loggedBefore(ctx context.Context, s *boundStmts, e *Event, seq int64, hash []byte) (Outcome, error) {
	if bytes.Equal(hash, e.BodyHash) {
		return Outcome{Status: Duplicate, Seq: seq}, nil
	}
	err := s.q.add(ctx, s, Rejected{Source: e.Source, Device: e.Device, EventID: e.ID, Reason: string(IDReused),
		Message: fmt.Sprintf("id %q was already used by event seq %d with a different body", e.ID, seq), Payload: e.Raw, ReceivedAt: e.ReceivedAt})
	return Outcome{Status: IDReused, Seq: seq}, err
}

// writeCounters grows this replica's own entries by the transaction's
// deltas, each change numbered with a new version (for delta sync).
func (db *DB) writeCounters(ctx context.Context, s *boundStmts, deltas counterDeltas) error {
	now := time.Now().UnixMilli()
	args := make([]any, 0, counterColumns*min(len(deltas), counterChunk))
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		_, err := s.use(s.src.addCounters[len(args)/counterColumns-1]).ExecContext(ctx, args...)
		args = args[:0]
		return err
	}
	for k, c := range deltas {
		if c.p == 0 && c.n == 0 {
			continue
		}
		db.version++
		args = append(args, k.warehouse, k.location, k.sku, db.replicaID, c.p, c.n, db.version, now)
		if len(args) == counterColumns*counterChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// nonNil maps a nil payload to an empty one: the column is NOT NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
