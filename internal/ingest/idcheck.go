package ingest

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/internal/store"
)

// idLog is what the id checks read from the store's event log.
type idLog interface {
	// DeviceEventsWithPrefix: one device's events whose id starts with prefix.
	DeviceEventsWithPrefix(ctx context.Context, device, prefix string) ([]store.LoggedID, error)
	// EventsWithPrefix: every device's events whose id starts with prefix.
	EventsWithPrefix(ctx context.Context, prefix string) ([]store.LoggedID, error)
}

var _ idLog = (*store.DB)(nil)

// idChecks decides what (device, id) dedupe alone cannot: the event ids of
// serialised scans that carry none (a unit's n-th sale is "{gtin}/{serial}/
// sale/{n}"), and whether a POS ticket seen before comes again with another
// body (then none of its lines apply). Both depend on what the log holds,
// so the decision and the submission happen under one lock, and events
// submitted but not yet committed count as logged (pending): a redelivery
// racing its own commit, or a ticket re-sent before the first commit, is
// judged against them. Only messages with such events take the lock.
type idChecks struct {
	log idLog

	mu      sync.Mutex // held from the lookups through Submit
	pending map[string][]*pendingID

	// finished collects pending ids whose batch was answered; the done
	// callbacks run on the commit loop and must not wait for mu (whose
	// holder may be blocked in Submit), so they only append here.
	finMu    sync.Mutex
	finished []*pendingID
}

// pendingID is an event submitted and not yet answered.
type pendingID struct {
	key             string
	device, id, typ string
	hash            []byte
}

func newIDChecks(log idLog) *idChecks {
	return &idChecks{log: log, pending: map[string][]*pendingID{}}
}

// needsCheck reports whether any item is a serialised scan or a ticket line.
func needsCheck(items []drivers.Item) bool {
	for i := range items {
		if e := &items[i].Event; items[i].Rejected == nil && (e.Serial != "" || e.Ticket != "") {
			return true
		}
	}
	return false
}

// prune forgets pending ids whose batches were answered (mu held): the log
// now holds them, or their batch failed and holds nothing.
func (c *idChecks) prune() {
	c.finMu.Lock()
	done := c.finished
	c.finished = nil
	c.finMu.Unlock()
	for _, p := range done {
		list := c.pending[p.key]
		for i, q := range list {
			if q == p {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(c.pending, p.key)
		} else {
			c.pending[p.key] = list
		}
	}
}

// release returns the callback that retires ids once their batch is answered.
func (c *idChecks) release(ids []*pendingID) func() {
	return func() {
		c.finMu.Lock()
		c.finished = append(c.finished, ids...)
		c.finMu.Unlock()
	}
}

// logged is what the log and the pending submissions hold under key:
// committed rows first, in log order, then pending ones in submission order.
func (c *idChecks) logged(key string, committed []store.LoggedID) []store.LoggedID {
	out := committed
	for _, p := range c.pending[key] {
		known := false
		for _, l := range committed {
			if l.Device == p.device && l.ID == p.id {
				known = true // committed between the prune and the read
				break
			}
		}
		if !known {
			out = append(out, store.LoggedID{Device: p.device, ID: p.id, Type: p.typ, BodyHash: p.hash})
		}
	}
	return out
}

// decision is what check decided for an item without the store.
type decision struct {
	result     Result
	quarantine bool // keep the item's payload (once per message)
}

// check completes the ids of serialised scans and holds tickets to all or
// nothing (mu held). It returns the items it decided (nil where the store
// decides) and the pending ids to release once the batch is answered.
func (c *idChecks) check(ctx context.Context, items []drivers.Item) ([]*decision, []*pendingID, error) {
	c.prune()
	decided := make([]*decision, len(items))
	var added []*pendingID
	tickets := map[string][]int{} // ticket → its line items
	for i := range items {
		it := &items[i]
		switch {
		case it.Rejected != nil:
		case it.Event.Serial != "":
			d, p, err := c.serial(ctx, &it.Event)
			if err != nil {
				return nil, nil, err
			}
			decided[i] = d
			if p != nil {
				added = append(added, p)
			}
		case it.Event.Ticket != "":
			tickets[it.Event.Ticket] = append(tickets[it.Event.Ticket], i)
		}
	}
	for ticket, lines := range tickets {
		ps, err := c.ticket(ctx, ticket, items, lines, decided)
		if err != nil {
			return nil, nil, err
		}
		added = append(added, ps...)
	}
	for _, p := range added {
		c.pending[p.key] = append(c.pending[p.key], p)
	}
	return decided, added, nil
}

// serial gives a serialised scan the id of its movement: a scan that
// repeats the unit's last movement (same type) is that movement again,
// under its id when the same device logged it (the store then answers
// duplicate), or a duplicate decided here when another device did. Any
// other scan is the next movement of its type.
//
// A scan cannot tell a redelivery from a second, physical movement: only
// the order can. A redelivery arrives before anything newer of its device;
// a unit cannot be sold twice without coming back in between. So a
// redelivery stays one movement unless another device moved the same unit
// between the original's commit and the redelivery.
func (c *idChecks) serial(ctx context.Context, e *drivers.Event) (*decision, *pendingID, error) {
	committed, err := c.log.EventsWithPrefix(ctx, e.Serial)
	if err != nil {
		return nil, nil, fmt.Errorf("serial %s: %w", strings.TrimSuffix(e.Serial, "/"), err)
	}
	var moves []store.LoggedID
	for _, l := range c.logged(e.Serial, committed) {
		if typ, ok := serialMove(e.Serial, l.ID); ok {
			l.Type = typ
			moves = append(moves, l)
		}
	}
	if n := len(moves); n > 0 && moves[n-1].Type == e.Type {
		last := moves[n-1]
		if last.Device == e.Device {
			e.ID = last.ID // the store finds it: duplicate (or id_reused)
			return nil, nil, nil
		}
		return &decision{result: Result{ID: last.ID, Status: StatusDuplicate, Seq: last.Seq, Notify: true,
			Message: fmt.Sprintf("serial %s was already %s by device %s: a unit moves once; check the unit", serialName(e.Serial), pastTense(e.Type), last.Device)}}, nil, nil
	}
	count := 0
	for _, m := range moves {
		if m.Type == e.Type {
			count++
		}
	}
	e.ID = drivers.SerialID(e.Serial, e.Type, count+1)
	return nil, &pendingID{key: e.Serial, device: e.Device, id: e.ID, typ: e.Type}, nil
}

// serialMove reads id as a movement "{serial}{type}/{n}" of the unit.
func serialMove(serial, id string) (string, bool) {
	rest, ok := strings.CutPrefix(id, serial)
	if !ok {
		return "", false
	}
	typ, n, ok := strings.Cut(rest, "/")
	if !ok || !drivers.KnownType(typ) || n == "" || strings.Trim(n, "0123456789") != "" {
		return "", false // another unit whose serial starts the same, or another id
	}
	return typ, true
}

func serialName(serial string) string { return strings.TrimSuffix(serial, "/") }

func pastTense(typ string) string {
	switch typ {
	case drivers.TypeSale:
		return "sold"
	case drivers.TypeCount:
		return "counted"
	case drivers.TypePick:
		return "picked"
	}
	return typ + "ed"
}

// ticket holds a POS ticket to all or nothing: a ticket the log (or a
// pending submission) already has is applied again only when every line is
// the same and there are as many (then the store answers duplicate);
// otherwise every line is id_reused and the payload is quarantined once.
func (c *idChecks) ticket(ctx context.Context, ticket string, items []drivers.Item, lines []int, decided []*decision) ([]*pendingID, error) {
	device := items[lines[0]].Event.Device
	key := "ticket\x00" + device + "\x00" + ticket
	committed, err := c.log.DeviceEventsWithPrefix(ctx, device, ticket+"/")
	if err != nil {
		return nil, fmt.Errorf("ticket %s: %w", ticket, err)
	}
	logged := map[string][]byte{}
	for _, l := range c.logged(key, committed) {
		if n := l.ID[len(ticket)+1:]; n != "" && strings.Trim(n, "0123456789") == "" {
			logged[l.ID] = l.BodyHash
		}
	}
	hashes := make([][]byte, len(lines))
	same := len(logged) == len(lines)
	for j, i := range lines {
		hashes[j] = BodyHash(&items[i].Event)
		if h, ok := logged[items[i].Event.ID]; !ok || string(h) != string(hashes[j]) {
			same = false
		}
	}
	if len(logged) > 0 && !same {
		message := fmt.Sprintf("ticket %q was already received from device %s with another body (%d lines): nothing of this one is applied; send a new ticket id",
			ticket, device, len(logged))
		for j, i := range lines {
			decided[i] = &decision{result: Result{ID: items[i].Event.ID, Status: StatusRejected, Reason: drivers.ReasonIDReused, Message: message},
				quarantine: j == 0}
		}
		return nil, nil
	}
	if len(logged) > 0 {
		return nil, nil // the same ticket again: the store answers duplicate
	}
	out := make([]*pendingID, len(lines))
	for j, i := range lines {
		e := &items[i].Event
		out[j] = &pendingID{key: key, device: device, id: e.ID, typ: e.Type, hash: hashes[j]}
	}
	return out, nil
}
