package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

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
				items += len(r.batch.Events) + len(r.batch.Rejected) + len(r.batch.Holds) + len(r.batch.Merges) + len(r.batch.Safety) + len(r.batch.Promises) + len(r.batch.HubHolds)
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
		if len(r.batch.Holds)+len(r.batch.Safety)+len(r.batch.Promises)+len(r.batch.HubHolds) > 0 {
			if err = flush(); err != nil { // holds and promises see every event before them
				return err
			}
		}
		for _, x := range r.batch.Safety {
			if err = db.applySafety(ctx, s, st, x, time.Now()); err != nil {
				return fmt.Errorf("commit: safety %s: %w", x.SKU, err)
			}
		}
		for _, op := range r.batch.Holds {
			if err = db.applyHold(ctx, s, st, op); err != nil {
				return fmt.Errorf("commit: hold %s: %w", op.Hold.ID, err)
			}
		}
		for _, p := range r.batch.Promises {
			if err = db.applyPromise(ctx, s, st, p, time.Now()); err != nil {
				return fmt.Errorf("commit: promise %s: %w", p.ID, err)
			}
		}
		for _, op := range r.batch.HubHolds {
			if err = ApplyHubHold(sqliteHubHolds{db: db, ctx: ctx, s: s, st: st, now: time.Now()}, op); err != nil {
				return fmt.Errorf("commit: hub hold %s: %w", op.Hold.ID, err)
			}
		}
		if len(r.batch.Links) > 0 {
			if err = db.applyLinks(ctx, s, st, r.batch.Links, time.Now().UTC()); err != nil {
				return fmt.Errorf("commit: links: %w", err)
			}
		}
		if op := r.batch.Demand; op != nil {
			if err = db.applyDemand(ctx, s, st, op, time.Now().UTC()); err != nil {
				return fmt.Errorf("commit: demand: %w", err)
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
	st.countersWritten = true
	if err = db.checkTotals(ctx, s, st); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err = db.raiseAlerts(ctx, s, st, time.Now().UTC()); err != nil {
		return fmt.Errorf("commit: alerts: %w", err)
	}
	changed := db.reservedChanged(st)
	db.publishAhead(st, changed) // readers see them no later than SQL does
	if err = tx.Commit(); err != nil {
		db.unpublish(changed)
		return fmt.Errorf("commit: %w", err)
	}
	if st.oldReplica != "" {
		id := db.replicaID
		db.replicaPub.Store(&id)
	}
	db.committedVersion.Store(db.version)
	db.commitLevels(st)
	for k, d := range st.reserved {
		db.addReserved(k, d)
	}
	db.commitReserved(st, changed)
	for sku, t := range st.totals {
		db.totals[sku] = t
	}
	for k := range st.rights {
		if k.warehouse == db.warehouse {
			db.rightsSKUs[k.sku] = true
		}
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
