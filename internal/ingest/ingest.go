package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/internal/store"
)

// Result is what happened to one event, as reported to the device.
type Result struct {
	ID      string         `json:"id"`
	Status  string         `json:"status"` // applied, duplicate, rejected
	Reason  drivers.Reason `json:"reason,omitempty"`
	Message string         `json:"message,omitempty"`
	Seq     int64          `json:"seq,omitempty"`
	// Notify sends the result to the device's results topic even when it
	// asked only for rejections: a serialised unit scanned twice for the
	// same movement is a physical anomaly the operator must see.
	Notify bool `json:"-"`
}

// Result statuses.
const (
	StatusApplied   = "applied"
	StatusDuplicate = "duplicate"
	StatusRejected  = "rejected"
)

// Rejected reports whether r is a rejection.
func (r Result) Rejected() bool { return r.Status == StatusRejected }

// committer is what ingest needs from the store.
type committer interface {
	Submit(b *store.Batch, done func([]store.Outcome, error))
}

var _ committer = (*store.DB)(nil)

// Ingester turns device messages into durable events: decode with the
// topic's driver, validate, commit in the store's group commit, report.
type Ingester struct {
	store     committer
	warehouse string
	byTopic   map[string]drivers.Driver
	byName    map[string]drivers.Driver // every driver, topic or not
	// observe, when set, sees every ingest's results (metrics).
	observe func(msg drivers.Message, driver string, results []Result)
	// limits, when set, rate-limits each device.
	limits *limiter
	// ids numbers serialised scans and holds POS tickets to all or
	// nothing; nil when the store cannot look ids up (the hub's).
	ids *idChecks
	// reserved are the device names only the agent writes as (hold
	// commits, file drops): input naming one is refused, or another
	// writer could pre-claim the ids the agent will write.
	reserved map[string]reservedDevice
	// refused are event types this writer does not take, with why.
	refused map[string]string
}

// reservedDevice says who writes as a reserved device name.
type reservedDevice struct {
	owner  string // what writes as it, for the message
	source string // the drivers.Message.Source allowed to use it; "" none
}

// HoldsDevice is the device an agent's hold commits write their sale
// events as: a reserved device name (no input may write as it), so nobody
// can pre-claim the id of a hold's sale and block the commit.
const HoldsDevice = "reservations"

// holdsOwner is the reserved device name's owner for hold commits.
const holdsOwner = "reservation commits"

// ReserveDevice keeps device for the agent's own writer owner: only input
// from source (a drivers.Message.Source; "" for none) may use it.
func (in *Ingester) ReserveDevice(device, owner, source string) {
	in.reserved[device] = reservedDevice{owner: owner, source: source}
}

// RefuseTypes makes the ingester reject events of each type, with why
// (the hub's central writes take no sales: they go through orders).
// Set before use.
func (in *Ingester) RefuseTypes(why map[string]string) { in.refused = why }

// refuseReserved turns events written as a reserved device, or of a
// refused type, into rejections.
func (in *Ingester) refuseReserved(msg drivers.Message, items []drivers.Item) {
	for i := range items {
		it := &items[i]
		if why, ok := in.refused[it.Event.Type]; ok && it.Rejected == nil {
			it.Rejected = drivers.Reject(it.Event.ID, drivers.ReasonBadField, "type %s: %s", it.Event.Type, why)
			continue
		}
		r, ok := in.reserved[it.Event.Device]
		if !ok || it.Rejected != nil || msg.Source == r.source {
			continue
		}
		it.Rejected = drivers.Reject(it.Event.ID, drivers.ReasonUnauthorized,
			"device %q is reserved for the agent's %s: send as another device id", it.Event.Device, r.owner)
	}
}

// NewIngester builds every registered driver with env.
func NewIngester(st committer, warehouse string, env drivers.Env) (*Ingester, error) {
	in := &Ingester{store: st, warehouse: warehouse, byTopic: map[string]drivers.Driver{}, byName: map[string]drivers.Driver{}}
	if log, ok := st.(idLog); ok {
		in.ids = newIDChecks(log)
	}
	in.reserved = map[string]reservedDevice{HoldsDevice: {owner: holdsOwner}}
	for _, r := range drivers.Registered() {
		d, err := r.New(env)
		if err != nil {
			return nil, fmt.Errorf("driver %s: %w", r.Name, err)
		}
		in.byName[r.Name] = d
		if r.Topic != "" {
			in.byTopic[r.Topic] = d
		}
	}
	return in, nil
}

// Observe makes fn see every ingest's results with the message they came
// in (metrics, device activity); set before use. It runs on the store's
// commit loop: it must not block.
func (in *Ingester) Observe(fn func(msg drivers.Message, driver string, results []Result)) {
	in.observe = fn
}

// SetLimits rate-limits each device to rate messages per second with
// bursts up to burst (rate 0: no limit); safe while ingesting (a reload).
func (in *Ingester) SetLimits(rate, burst float64) {
	if in.limits == nil {
		in.limits = newLimiter(rate, burst)
		return
	}
	in.limits.set(rate, burst)
}

// Driver returns the registered driver name, built with the ingester's
// environment (barcode table, device settings); nil if there is none.
func (in *Ingester) Driver(name string) drivers.Driver { return in.byName[name] }

// HandlesTopic reports whether a driver serves the device topic kind.
func (in *Ingester) HandlesTopic(kind string) bool {
	_, ok := in.byTopic[kind]
	return ok
}

// Topics lists the device topic kinds drivers serve.
func (in *Ingester) Topics() []string {
	out := make([]string, 0, len(in.byTopic))
	for t := range in.byTopic {
		out = append(out, t)
	}
	return out
}

// Ingest decodes msg with the driver for kind and submits the result to the
// store. done runs once everything msg produced is durable (events applied
// or found duplicate, rejections quarantined), on the store's commit loop:
// it must not block. Calls made in order are answered in order.
func (in *Ingester) Ingest(kind string, msg drivers.Message, done func([]Result, error)) {
	maxPayload := 0
	if msg.Source == "mqtt" {
		maxPayload = MaxMQTTPayload
	}
	if items := in.admit(msg, maxPayload); items != nil {
		in.ingest(kind, msg, items, done)
		return
	}
	d, ok := in.byTopic[kind]
	var items []drivers.Item
	if ok {
		items = d.Decode(msg)
	} else {
		items = []drivers.Item{{Rejected: drivers.Reject("", drivers.ReasonUnknownTopic, "no driver serves topic kind %q", kind), Raw: msg.Payload}}
	}
	in.ingest(kind, msg, items, done)
}

// IngestRetained refuses msg, which came with RETAIN=1 on a device topic,
// as Ingest refuses bad input: rejected unauthorized, quarantined raw (its
// first quarantineSample bytes when it is over the payload limit), done
// once that is durable.
func (in *Ingester) IngestRetained(kind string, msg drivers.Message, done func([]Result, error)) {
	raw := msg.Payload
	if len(raw) > MaxMQTTPayload {
		raw = raw[:quarantineSample]
	}
	items := []drivers.Item{{Rejected: drivers.Reject("", drivers.ReasonUnauthorized, "%s", ErrRetainedDeviceTopic), Raw: raw}}
	in.ingest(kind, msg, items, done)
}

// IngestWait is Ingest, waiting until msg is durable: its results, the
// store's error, or ctx's once the caller stops waiting (the message may
// still commit; a retry is deduplicated).
func (in *Ingester) IngestWait(ctx context.Context, kind string, msg drivers.Message) ([]Result, error) {
	return await(ctx, func(done func([]Result, error)) { in.Ingest(kind, msg, done) })
}

// await calls submit with a done callback and waits for it, or for ctx.
func await(ctx context.Context, submit func(done func([]Result, error))) ([]Result, error) {
	type answer struct {
		results []Result
		err     error
	}
	ch := make(chan answer, 1) // done never blocks the commit loop
	submit(func(res []Result, err error) { ch <- answer{res, err} })
	select {
	case ans := <-ch:
		return ans.results, ans.err
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// IngestItems submits already decoded items (see Ingest); driver names
// their driver for metrics.
func (in *Ingester) IngestItems(driver string, msg drivers.Message, items []drivers.Item, done func([]Result, error)) {
	in.ingest(driver, msg, items, done)
}

func (in *Ingester) ingest(driver string, msg drivers.Message, items []drivers.Item, done func([]Result, error)) {
	in.refuseReserved(msg, items)
	if in.ids == nil || !needsCheck(items) {
		in.submit(driver, msg, items, nil, done)
		return
	}
	in.ids.mu.Lock() // through Submit: the next check sees these as pending
	defer in.ids.mu.Unlock()
	decided, added, err := in.ids.check(context.Background(), items)
	if err != nil {
		done(nil, fmt.Errorf("look up event ids: %w", err))
		return
	}
	release := in.ids.release(added)
	in.submit(driver, msg, items, decided, func(results []Result, err error) {
		release()
		done(results, err)
	})
}

// submit sends items to the store, but for those decided (non-nil) before.
func (in *Ingester) submit(driver string, msg drivers.Message, items []drivers.Item, decided []*decision, done func([]Result, error)) {
	batch := &store.Batch{}
	results := make([]Result, len(items))
	eventAt := make([]int, 0, len(items)) // results index of each batch event
	for i, it := range items {
		if decided != nil && decided[i] != nil {
			d := decided[i]
			results[i] = d.result
			if d.quarantine {
				batch.Rejected = append(batch.Rejected, store.Rejected{
					Source: msg.Source, Device: msg.Device, EventID: d.result.ID, Reason: string(d.result.Reason),
					Message: d.result.Message, Payload: it.Raw, ReceivedAt: msg.ReceivedAt,
				})
			}
			continue
		}
		if it.Rejected != nil {
			results[i] = Result{ID: it.Rejected.ID, Status: StatusRejected, Reason: it.Rejected.Reason, Message: it.Rejected.Message}
			batch.Rejected = append(batch.Rejected, store.Rejected{
				Source: msg.Source, Device: msg.Device, EventID: it.Rejected.ID, Reason: string(it.Rejected.Reason),
				Message: it.Rejected.Message, Payload: it.Raw, ReceivedAt: msg.ReceivedAt,
			})
			continue
		}
		results[i] = Result{ID: it.Event.ID}
		eventAt = append(eventAt, i)
		batch.Events = append(batch.Events, in.storeEvent(msg, &it))
	}
	in.store.Submit(batch, func(outcomes []store.Outcome, err error) {
		if err != nil {
			done(nil, err)
			return
		}
		for j, o := range outcomes {
			r := &results[eventAt[j]]
			r.Seq = o.Seq
			switch o.Status {
			case store.Applied:
				r.Status = StatusApplied
			case store.Duplicate:
				r.Status = StatusDuplicate
				if e := &items[eventAt[j]].Event; e.Serial != "" {
					r.Notify = true
					r.Message = fmt.Sprintf("serial %s was already %s by this device (seq %d): a repeated scan of one unit", serialName(e.Serial), pastTense(e.Type), o.Seq)
				}
			case store.IDReused:
				r.Status, r.Reason = StatusRejected, drivers.ReasonIDReused
				r.Message = fmt.Sprintf("id already used by event seq %d with a different body", o.Seq)
			case store.UnknownTicket:
				r.Status, r.Reason = StatusRejected, drivers.ReasonUnknownTicket
				r.Message = "the voided ticket was never received from this device"
			case store.OutOfRange:
				r.Status, r.Reason = StatusRejected, drivers.Reason(store.OutOfRange)
				r.Message = "the SKU's stock totals would pass 2^53; nothing applied"
			}
		}
		if in.observe != nil {
			in.observe(msg, driver, results)
		}
		done(results, nil)
	})
}

// storeEvent maps a valid event to what the store records: the signed
// effect of its type (the business rule) and its body hash (for id_reused).
func (in *Ingester) storeEvent(msg drivers.Message, it *drivers.Item) store.Event {
	e := &it.Event
	se := store.Event{
		Device: e.Device, ID: e.ID, BodyHash: BodyHash(e), Type: e.Type,
		Warehouse: in.warehouse, Location: e.Location, SKU: e.SKU, ToLocation: e.ToLocation, Qty: e.Qty,
		Channel: e.Channel, DeviceTS: e.TS, DeviceSeq: e.Seq, Source: msg.Source, ReceivedAt: msg.ReceivedAt, Raw: it.Raw,
	}
	switch e.Type {
	case drivers.TypeReceive, drivers.TypeReturn, drivers.TypeAdjust:
		se.Delta = e.Qty
	case drivers.TypeSale, drivers.TypePick, drivers.TypeTransfer:
		se.Delta = -e.Qty
	case drivers.TypeCount:
		se.Absolute = true
	case drivers.TypeVoid:
		se.Reverses = e.Voids
	}
	return se
}

// BodyHash identifies an event's content, so a redelivery (same id, same
// content, whatever the JSON spelling) is a duplicate and a reused id is not.
//
// The hash is of each string field as a big-endian uint32 length and its
// bytes, then qty and seq as big-endian uint64s: stored hashes are compared
// with new ones, so this encoding never changes. The first 16 bytes of the
// SHA-256 are kept.
func BodyHash(e *drivers.Event) []byte {
	var buf [256]byte // most bodies fit: no allocation but the result
	b := buf[:0]
	for _, s := range [...]string{e.Type, e.SKU, e.Barcode, e.Location, e.ToLocation, e.TS, e.Channel, e.Voids} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(e.Qty))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
	sum := sha256.Sum256(b)
	return append([]byte(nil), sum[:16]...)
}
