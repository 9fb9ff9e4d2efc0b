package store

import (
	"context"
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
	Safety   []Safety     // applied before Holds
	Promises []*Promise   // applied after Holds, in order
	HubHolds []*HubHoldOp // applied after Promises, in order
	Demand   *DemandOp    // the replenishment follower's write
	Links    []LinkState  // the hub's view of its agents' links
	prune    *pruneOp     // quarantine retention, after the rest
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
