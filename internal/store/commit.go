package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// requestQueue bounds batches waiting for the commit loop. When it fills,
// Submit blocks: back-pressure reaches the broker's read loop and the HTTP
// handlers instead of growing memory.
const requestQueue = 4096

// maxTxEvents caps how many events one transaction gathers; beyond it the
// fsync is already amortised and larger transactions only add latency.
const maxTxEvents = 2000

// Event is one validated event ready to apply, as the store records it.
type Event struct {
	Device   string
	ID       string
	BodyHash []byte // hash of the event's canonical body, for id_reused

	Type       string
	Warehouse  string
	Location   string
	SKU        string
	ToLocation string // transfer target: receives −Delta
	Qty        int64  // as sent by the device

	// Delta is the signed change at Location. When Absolute is set (count),
	// Qty is the counted level and the store computes Delta = Qty − on_hand
	// inside the transaction.
	Delta    int64
	Absolute bool
	// Reverses names a ticket of the same device: the event is a void and
	// the store reverses every line "{Reverses}/{i}" with event "void:{line}".
	Reverses string

	Channel    string
	DeviceTS   string
	DeviceSeq  int64
	Source     string // "mqtt", "http", …
	ReceivedAt time.Time
	// Raw is the payload as received; quarantined if the id was reused.
	Raw []byte
}

// Rejected is a payload that failed validation, kept raw for the operator.
type Rejected struct {
	Source     string
	Device     string
	EventID    string
	Reason     string
	Message    string
	Payload    []byte
	ReceivedAt time.Time
}

// Status is the outcome of one event.
type Status string

const (
	Applied   Status = "applied"
	Duplicate Status = "duplicate"
	IDReused  Status = "id_reused" // same (device, id), different body: nothing applied
	// UnknownTicket: a void of a ticket the device never sent; quarantined.
	UnknownTicket Status = "unknown_ticket"
	// OutOfRange: applying the event would take its SKU's totals past
	// MaxTotal; quarantined, nothing applied.
	OutOfRange Status = "out_of_range"
)

// Outcome is what the store did with one Event.
type Outcome struct {
	Status Status
	Seq    int64 // the event log seq (of the original for duplicates)
	Delta  int64 // the applied delta at Location (0 unless Applied)
}

// Batch is the unit of work callers submit: events to apply and rejections to
// quarantine, committed together.
type Batch struct {
	Events   []Event
	Rejected []Rejected
	Holds    []*HoldOp // applied after Events, in order
	Merges   []*MergeOp
	prune    *pruneOp // quarantine retention, after the rest
}

// request is a submitted batch waiting for the commit loop.
type request struct {
	batch    *Batch
	outcomes []Outcome
	done     func([]Outcome, error)
	// outOfRange holds SKUs whose totals this batch's events would take
	// past MaxTotal: its events on them are quarantined instead.
	outOfRange map[string]bool
}

// items counts what maxTxEvents caps: events and rejections.
func (r *request) items() int { return len(r.batch.Events) + len(r.batch.Rejected) }

// Submit queues b for the next group commit and returns at once; done is
// called from the commit loop, in submission order, once b is durable (or
// failed). done must not block: it runs before later batches are answered.
// Submit blocks while the queue is full.
func (db *DB) Submit(b *Batch, done func([]Outcome, error)) { db.submit(nil, b, done) }

// submit is Submit that gives up waiting for room in the queue when ctx
// ends (nil: never), answering ctx's error.
func (db *DB) submit(ctx context.Context, b *Batch, done func([]Outcome, error)) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		done(nil, ErrClosed)
		return
	}
	var ctxDone <-chan struct{}
	if ctx != nil {
		ctxDone = ctx.Done()
	}
	select {
	case db.requests <- &request{batch: b, done: done}:
	case <-db.stop: // closing while the queue is full (a failing store)
		done(nil, ErrClosed)
	case <-ctxDone: // a full queue behind a failing store: not queued
		done(nil, ctx.Err())
	}
}

// Apply submits b and waits until it is durable, or until ctx ends (while
// the queue is full too).
func (db *DB) Apply(ctx context.Context, b *Batch) ([]Outcome, error) {
	type result struct {
		out []Outcome
		err error
	}
	ch := make(chan result, 1)
	db.submit(ctx, b, func(out []Outcome, err error) { ch <- result{out, err} })
	select {
	case r := <-ch:
		return r.out, r.err
	case <-ctx.Done():
		// The batch may still commit; callers retry and dedupe makes it safe.
		return nil, ctx.Err()
	}
}

// commitSiblings is how many items the queue must hold for the commit loop
// to wait Options.CommitDelay: fewer means the load is light, and waiting
// would only add latency.
const commitSiblings = 16

// commitLoop gathers whatever requests are queued into one transaction.
// Batching is natural: while one commit syncs, the next requests queue up.
func (db *DB) commitLoop() {
	defer db.wg.Done()
	var pending []*request
	var delay *time.Timer
	for {
		r, ok := <-db.requests
		if !ok {
			return
		}
		pending = append(pending[:0], r)
		n, open := db.gather(&pending, r.items(), nil)
		if open && db.commitDelay > 0 && n >= commitSiblings && n < maxTxEvents {
			if delay == nil {
				delay = time.NewTimer(db.commitDelay)
			} else {
				delay.Reset(db.commitDelay)
			}
			db.gather(&pending, n, delay.C)
			delay.Stop()
		}
		db.commit(pending)
	}
}

// gather adds queued requests to pending, which holds n items, until it
// holds maxTxEvents, and until the queue is empty (until nil) or until
// fires. It returns the items then held and false once the queue is closed.
func (db *DB) gather(pending *[]*request, n int, until <-chan time.Time) (int, bool) {
	for n < maxTxEvents {
		var r *request
		var ok bool
		if until == nil {
			select {
			case r, ok = <-db.requests:
			default:
				return n, true
			}
		} else {
			select {
			case r, ok = <-db.requests:
			case <-until:
				return n, true
			}
		}
		if !ok {
			return n, false
		}
		*pending = append(*pending, r)
		n += r.items()
	}
	return n, true
}

// commit applies pending in one transaction. When that fails, a probe write
// tells a failing store (full disk, I/O error) from a batch that cannot
// commit. A failing store is retried with backoff until it recovers or the
// store closes: the loop takes no work meanwhile, so nothing more is
// acknowledged (back-pressure) and acknowledgements keep their order. A
// batch that fails on a healthy store is isolated and failed alone.
func (db *DB) commit(pending []*request) {
	backoff := retryMin
	for {
		start := time.Now()
		err := db.commitTx(pending)
		took := time.Since(start)
		if took > slowCommit {
			db.logger.Warn("slow commit", "took", took, "batches", len(pending), "err", err)
		}
		if db.observe != nil {
			items := 0
			for _, r := range pending {
				items += len(r.batch.Events) + len(r.batch.Rejected) + len(r.batch.Holds) + len(r.batch.Merges)
			}
			db.observe(items, took, err)
		}
		if err == nil {
			if db.Err() != nil {
				db.logger.Info("store recovered")
			}
			db.setErr(nil)
			for _, r := range pending {
				r.done(r.outcomes, nil)
			}
			db.checkpointBetweenCommits() // after the answers: it delays only the next batch
			return
		}
		if len(pending) == 1 && pending[0].refuseOutOfRange(err) {
			continue // again without the events that passed the bound
		}
		if !storeFailure(err) && db.probe() == nil {
			if len(pending) == 1 {
				db.logger.Error("batch cannot be committed; failing it", "err", err)
				pending[0].done(nil, err)
				return
			}
			for _, r := range pending {
				db.commit([]*request{r})
			}
			return
		}
		if db.Err() == nil {
			db.logger.Error("store failing; holding acknowledgements and retrying", "err", err, "batches", len(pending))
		}
		db.setErr(err)
		select {
		case <-db.stop:
			for _, r := range pending {
				r.done(nil, fmt.Errorf("%w while retrying: %w", ErrClosed, err))
			}
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, retryMax)
	}
}

// storeFailure reports whether err says the store itself is failing (busy,
// locked, full, I/O, out of memory, read-only, corrupt) rather than the
// batch: such errors are retried, never blamed on a batch, even when a
// tiny probe write happens to succeed.
func storeFailure(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff { // the primary result code
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR,
		sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOTADB:
		return true
	}
	return false
}

// probe commits a tiny write to tell whether the store can commit at all.
func (db *DB) probe() error {
	_, err := db.writer.Exec(`INSERT INTO meta(key, value) VALUES ('probe', datetime('now'))
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`)
	return err
}

// slowCommit is the commit duration worth a warning: devices wait for it.
const slowCommit = 50 * time.Millisecond

// Retry bounds for a failing store.
const (
	retryMin = 50 * time.Millisecond
	retryMax = 5 * time.Second
)

func (db *DB) commitTx(pending []*request) (err error) {
	ctx := context.Background()
	version := db.version
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("commit: begin: %w", err)
	}
	st := newTxState()
	defer func() {
		if err != nil {
			_ = tx.Rollback()
			db.version = version
			if st.oldReplica != "" {
				db.replicaID = st.oldReplica
			}
		}
	}()
	s := db.stmts.in(tx)
	s.q = &quarantineTx{db: db}
	deltas := st.counters
	// Events go to the log in chunks of up to insertChunk rows per INSERT;
	// a count needs on_hand as of its position, so it flushes the chunk
	// before it and is applied alone.
	var chunk []slot
	flush := func() error {
		err := db.insertChunk(ctx, s, st, chunk)
		chunk = chunk[:0]
		return err
	}
	for _, r := range pending {
		r.outcomes = make([]Outcome, len(r.batch.Events))
		for i := range r.batch.Events {
			e := &r.batch.Events[i]
			if r.outOfRange[e.SKU] {
				if err = flush(); err != nil {
					return err
				}
				if r.outcomes[i], err = refuseEvent(ctx, s, e); err != nil {
					return fmt.Errorf("commit: refuse %s/%s: %w", e.Device, e.ID, err)
				}
				continue
			}
			if !e.Absolute && e.Reverses == "" {
				if chunk = append(chunk, slot{e, &r.outcomes[i]}); len(chunk) == insertChunk {
					if err = flush(); err != nil {
						return err
					}
				}
				continue
			}
			if err = flush(); err != nil {
				return err
			}
			apply := applyCount
			if e.Reverses != "" {
				apply = applyVoid
			}
			if r.outcomes[i], err = apply(ctx, s, deltas, e); err == nil && r.outcomes[i].Status == Applied {
				err = db.noteSeq(ctx, s, st, e.Device, e.DeviceSeq)
			}
			if err != nil {
				return fmt.Errorf("commit: apply %s %s/%s: %w", e.Type, e.Device, e.ID, err)
			}
		}
		if len(r.batch.Holds) > 0 {
			if err = flush(); err != nil { // holds see every event before them
				return err
			}
		}
		for _, op := range r.batch.Holds {
			if err = db.applyHold(ctx, s, st, op); err != nil {
				return fmt.Errorf("commit: hold %s: %w", op.Hold.ID, err)
			}
		}
		for _, op := range r.batch.Merges {
			if err = flush(); err != nil {
				return err
			}
			if err = db.applyMerge(ctx, s, st, op); err != nil {
				return fmt.Errorf("commit: merge: %w", err)
			}
		}
		for i := range r.batch.Rejected {
			q := &r.batch.Rejected[i]
			if err = s.q.add(ctx, s, *q); err != nil {
				return fmt.Errorf("commit: %w", err)
			}
		}
	}
	if err = flush(); err != nil {
		return err
	}
	for _, r := range pending {
		if r.batch.prune != nil {
			if err = s.q.prune(ctx, s, r.batch.prune); err != nil {
				return fmt.Errorf("commit: %w", err)
			}
		}
	}
	if err = db.writeCounters(ctx, s, deltas); err != nil {
		return fmt.Errorf("commit: counters: %w", err)
	}
	if err = db.checkTotals(ctx, s, st); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err = db.raiseAlerts(ctx, s, st, time.Now().UTC()); err != nil {
		return fmt.Errorf("commit: alerts: %w", err)
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if st.oldReplica != "" {
		id := db.replicaID
		db.replicaPub.Store(&id)
	}
	db.committedVersion.Store(db.version)
	for k, d := range st.reserved {
		db.addReserved(k, d)
	}
	for sku, t := range st.totals {
		db.totals[sku] = t
	}
	s.q.commit()
	for sku, low := range st.alerts.low {
		if low {
			db.low[sku] = true
		} else {
			delete(db.low, sku)
		}
	}
	if db.notify != nil {
		if skus := st.touchedSKUs(db.warehouse, true); len(skus) > 0 || st.alerts.alerts > 0 || len(st.merged) > 0 {
			db.notify(Committed{Warehouse: db.warehouse, SKUs: skus, Alerts: st.alerts.alerts})
		}
	}
	return nil
}

// refuseOutOfRange handles a commit of r alone that failed because a SKU's
// totals would pass MaxTotal: if r has events on that SKU not refused yet,
// they will be (quarantined out_of_range) and true says to commit again.
// A merge past the bound has no events to refuse: it fails.
func (r *request) refuseOutOfRange(err error) bool {
	var re *RangeError
	if !errors.As(err, &re) || re.SKU == "" || r.outOfRange[re.SKU] {
		return false
	}
	for i := range r.batch.Events {
		if r.batch.Events[i].SKU == re.SKU {
			if r.outOfRange == nil {
				r.outOfRange = map[string]bool{}
			}
			r.outOfRange[re.SKU] = true
			return true
		}
	}
	return false
}

// refuseEvent records e, whose SKU's totals would pass MaxTotal, in the
// quarantine, unless its id is logged already (a duplicate or reused id).
func refuseEvent(ctx context.Context, s *boundStmts, e *Event) (Outcome, error) {
	if o, found, err := findEvent(ctx, s, e); found || err != nil {
		return o, err
	}
	err := s.q.add(ctx, s, Rejected{Source: e.Source, Device: e.Device, EventID: e.ID, Reason: string(OutOfRange),
		Message: fmt.Sprintf("sku %s: applying this event would take the SKU's totals past 2^53 (the bound of every stock total); nothing applied", e.SKU),
		Payload: e.Raw, ReceivedAt: e.ReceivedAt})
	return Outcome{Status: OutOfRange}, err
}

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
	for k, c := range deltas {
		if c.p == 0 && c.n == 0 {
			continue
		}
		db.version++
		if _, err := s.use(s.src.addCounter).ExecContext(ctx, k.warehouse, k.location, k.sku, db.replicaID, c.p, c.n, db.version, now); err != nil {
			return err
		}
	}
	return nil
}

// nonNil maps a nil payload to an empty one: the column is NOT NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
