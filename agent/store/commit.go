package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
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
}

// request is a submitted batch waiting for the commit loop.
type request struct {
	batch    *Batch
	outcomes []Outcome
	done     func([]Outcome, error)
}

// Submit queues b for the next group commit and returns at once; done is
// called from the commit loop, in submission order, once b is durable (or
// failed). done must not block: it runs before later batches are answered.
// Submit blocks while the queue is full.
func (db *DB) Submit(b *Batch, done func([]Outcome, error)) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		done(nil, ErrClosed)
		return
	}
	db.requests <- &request{batch: b, done: done}
}

// Apply submits b and waits until it is durable.
func (db *DB) Apply(ctx context.Context, b *Batch) ([]Outcome, error) {
	type result struct {
		out []Outcome
		err error
	}
	ch := make(chan result, 1)
	db.Submit(b, func(out []Outcome, err error) { ch <- result{out, err} })
	select {
	case r := <-ch:
		return r.out, r.err
	case <-ctx.Done():
		// The batch may still commit; callers retry and dedupe makes it safe.
		return nil, ctx.Err()
	}
}

// commitLoop gathers whatever requests are queued into one transaction.
// Batching is natural: while one commit syncs, the next requests queue up.
func (db *DB) commitLoop() {
	defer db.wg.Done()
	var pending []*request
	for {
		r, ok := <-db.requests
		if !ok {
			return
		}
		pending = append(pending[:0], r)
		n := len(r.batch.Events) + len(r.batch.Rejected)
	gather:
		for n < maxTxEvents {
			select {
			case r, ok := <-db.requests:
				if !ok {
					break gather
				}
				pending = append(pending, r)
				n += len(r.batch.Events) + len(r.batch.Rejected)
			default:
				break gather
			}
		}
		db.commit(pending)
	}
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
		err := db.commitTx(pending)
		if err == nil {
			if db.Err() != nil {
				db.logger.Info("store recovered")
			}
			db.setErr(nil)
			for _, r := range pending {
				r.done(r.outcomes, nil)
			}
			return
		}
		if db.probe() == nil {
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

// probe commits a tiny write to tell whether the store can commit at all.
func (db *DB) probe() error {
	_, err := db.writer.Exec(`INSERT INTO meta(key, value) VALUES ('probe', datetime('now'))
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`)
	return err
}

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
	defer func() {
		if err != nil {
			_ = tx.Rollback()
			db.version = version
		}
	}()
	s := db.stmts.in(tx)
	deltas := counterDeltas{}
	for _, r := range pending {
		r.outcomes = make([]Outcome, len(r.batch.Events))
		for i := range r.batch.Events {
			if r.outcomes[i], err = applyEvent(ctx, s, deltas, &r.batch.Events[i]); err != nil {
				return fmt.Errorf("commit: apply event %s/%s: %w", r.batch.Events[i].Device, r.batch.Events[i].ID, err)
			}
		}
		for i := range r.batch.Rejected {
			q := &r.batch.Rejected[i]
			if _, err = s.quarantine.ExecContext(ctx, q.Source, q.Device, q.EventID, q.Reason, q.Message, nonNil(q.Payload), q.ReceivedAt.UnixMilli()); err != nil {
				return fmt.Errorf("commit: quarantine: %w", err)
			}
		}
	}
	if err = db.writeCounters(ctx, s, deltas); err != nil {
		return fmt.Errorf("commit: counters: %w", err)
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// stockKey identifies a counter of this replica.
type stockKey struct{ warehouse, sku, location string }

// counterDeltas gathers a transaction's growth of this replica's own
// entries, so a batch of 1,000 events on 100 SKUs writes 100 counter rows,
// not 1,000. P collects positive deltas and N negative ones: each only grows.
type counterDeltas map[stockKey]*struct{ p, n int64 }

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

// applyEvent dedupes e and records it, adding its effect to deltas, inside
// the caller's transaction.
func applyEvent(ctx context.Context, s boundStmts, deltas counterDeltas, e *Event) (Outcome, error) {
	key := stockKey{e.Warehouse, e.SKU, e.Location}
	delta := e.Delta
	if e.Absolute {
		// A count needs on_hand before it: dedupe first, then read.
		if o, found, err := findEvent(ctx, s, e); found || err != nil {
			return o, err
		}
		var onHand int64
		if err := s.onHand.QueryRowContext(ctx, e.Warehouse, e.SKU, e.Location).Scan(&onHand); err != nil {
			return Outcome{}, err
		}
		if c := deltas[key]; c != nil {
			onHand += c.p - c.n
		}
		delta = e.Qty - onHand
	}
	var seq int64
	err := s.insertEvent.QueryRowContext(ctx, e.Device, e.ID, e.BodyHash, e.Type, e.Warehouse, e.Location, e.SKU,
		e.ToLocation, e.Qty, delta, e.Channel, e.DeviceTS, e.DeviceSeq, e.Source, e.ReceivedAt.UnixMilli()).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) { // (device, id) exists: ON CONFLICT DO NOTHING returned no row
		o, _, err := findEvent(ctx, s, e)
		return o, err
	}
	if err != nil {
		return Outcome{}, err
	}
	if delta != 0 {
		deltas.add(key, delta)
		if e.ToLocation != "" {
			deltas.add(stockKey{e.Warehouse, e.SKU, e.ToLocation}, -delta)
		}
	}
	return Outcome{Status: Applied, Seq: seq, Delta: delta}, nil
}

// findEvent looks up (device, id). A match with the same body hash is a
// duplicate; another body is id_reused, and the payload is quarantined.
func findEvent(ctx context.Context, s boundStmts, e *Event) (Outcome, bool, error) {
	var seq int64
	var hash []byte
	switch err := s.findEvent.QueryRowContext(ctx, e.Device, e.ID).Scan(&seq, &hash); {
	case errors.Is(err, sql.ErrNoRows):
		return Outcome{}, false, nil
	case err != nil:
		return Outcome{}, false, err
	}
	if bytes.Equal(hash, e.BodyHash) {
		return Outcome{Status: Duplicate, Seq: seq}, true, nil
	}
	_, err := s.quarantine.ExecContext(ctx, e.Source, e.Device, e.ID, string(IDReused),
		fmt.Sprintf("id %q was already used by event seq %d with a different body", e.ID, seq), nonNil(e.Raw), e.ReceivedAt.UnixMilli())
	return Outcome{Status: IDReused, Seq: seq}, true, err
}

// writeCounters grows this replica's own entries by the transaction's
// deltas, each change numbered with a new version (for delta sync).
func (db *DB) writeCounters(ctx context.Context, s boundStmts, deltas counterDeltas) error {
	now := time.Now().UnixMilli()
	for k, c := range deltas {
		if c.p == 0 && c.n == 0 {
			continue
		}
		db.version++
		if _, err := s.addCounter.ExecContext(ctx, k.warehouse, k.location, k.sku, db.replicaID, c.p, c.n, db.version, now); err != nil {
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
