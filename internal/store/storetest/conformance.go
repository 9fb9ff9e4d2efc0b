// Package storetest holds every store to one contract: the conformance
// suite runs the same random histories against the SQLite store and the
// PostgreSQL store, with crdt as the oracle.
package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/edgestock/edgestock/crdt"
	"github.com/edgestock/edgestock/internal/store"
)

// Backend is what the suite needs of a store.
type Backend interface {
	Apply(ctx context.Context, b *store.Batch) ([]store.Outcome, error)
	Deltas(ctx context.Context, since int64, limit int, skipReplica string) (store.DeltaPage, error)
	SKUsStock(ctx context.Context, skus []string) ([]store.StockLevel, error)
	ReplicaID() string
}

// The suite's small world, so histories collide: the same keys, devices
// and ids come back again and again.
var (
	warehouses = []string{"wh1", "wh2"}
	locations  = []string{"default", "A-01"}
	skus       = []string{"S-1", "S-2", "S-3"}
	devices    = []string{"d1", "d2"}
	replicas   = []string{"wh2.aaaa", "wh3.bbbb", "hub.cccc"}
	holders    = []string{"local", "amazon", "ebay"}
)

// maxSteps bounds a history's events and merges.
const maxSteps = 25

type key struct{ warehouse, location, sku string }

// rightsKey names one (warehouse, sku)'s escrow.
type rightsKey struct{ warehouse, sku string }

// model is the oracle: per key a PN-counter, and what each (device, id)
// was first seen with.
type model struct {
	counters map[key]*crdt.PNCounter
	rights   map[rightsKey]*crdt.Escrow
	logged   map[[2]string]string // (device, id) -> body
	promised map[string]string    // promise id -> body, once applied
	own      string
	prefix   string // of this history's SKUs and event ids
	start    int64  // the store's cursor before this history
}

// end pages to the end of db's deltas and returns the cursor there.
func end(ctx context.Context, rt require.TestingT, db Backend) int64 {
	var since int64
	for {
		page, err := db.Deltas(ctx, since, 10_000, "")
		require.NoError(rt, err)
		since = page.Next
		if !page.More {
			return since
		}
	}
}

func (m *model) counter(k key) *crdt.PNCounter {
	c, ok := m.counters[k]
	if !ok {
		c = &crdt.PNCounter{}
		m.counters[k] = c
	}
	return c
}

func (m *model) onHand(k key) int64 { return m.counter(k).Value() }

// Lines holds a store to the order lines' contract (SPEC §9): written with
// their promise, carried by Deltas after the promise's rights, cancelled
// once (a new version), and a cancellation again changes nothing.
func Lines(t *testing.T, db Backend) {
	ctx := context.Background()
	start := end(ctx, t, db)
	merge := &store.MergeOp{Now: time.Now(), Escrow: []store.EscrowEntry{{Warehouse: "wh1", SKU: "L-1", EscrowEntry: crdt.EscrowEntry{
		EscrowKey: crdt.EscrowKey{Replica: "wh1.0123456789abcdef", Kind: crdt.Move, Holder: store.LocalHolder, To: "web"}, Total: 5}}}}
	_, err := db.Apply(ctx, &store.Batch{Merges: []*store.MergeOp{merge}})
	require.NoError(t, err)
	line := store.OrderLine{ID: "L-order.1", Warehouse: "wh1", SKU: "L-1", Channel: "web", Qty: 2}
	order := &store.Promise{ID: "order:L-order", BodyHash: []byte("h"), Body: []byte("b"), Lines: []store.OrderLine{line},
		Ops: []store.EscrowOp{{Warehouse: "wh1", SKU: "L-1", Kind: crdt.Spend, Holder: "web", Qty: 2}}}
	_, err = db.Apply(ctx, &store.Batch{Promises: []*store.Promise{order}})
	require.NoError(t, err)
	require.Equal(t, store.PromiseOK, order.Result.Status)
	page, err := db.Deltas(ctx, start, 100, "")
	require.NoError(t, err)
	require.Equal(t, []store.OrderLine{line}, page.Lines)
	require.Len(t, page.Escrow, 2, "the allotment, then the order's spend")
	after := page.Next

	cancelled := line
	cancelled.Cancelled = true
	for range 2 {
		cancel := &store.Promise{Lines: []store.OrderLine{cancelled}}
		_, err = db.Apply(ctx, &store.Batch{Promises: []*store.Promise{cancel}})
		require.NoError(t, err)
	}
	page, err = db.Deltas(ctx, after, 100, "")
	require.NoError(t, err)
	require.Equal(t, []store.OrderLine{cancelled}, page.Lines, "cancelled, once")
	require.Empty(t, page.Escrow)
	page, err = db.Deltas(ctx, page.Next, 100, "")
	require.NoError(t, err)
	require.Empty(t, page.Lines)
}

// Run runs the suite on db, an empty store. Each history rapid runs has
// SKUs and event ids of its own, so one store serves them all.
func Run(t *testing.T, db Backend) {
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		ctx := context.Background()
		m := &model{counters: map[key]*crdt.PNCounter{}, rights: map[rightsKey]*crdt.Escrow{}, logged: map[[2]string]string{}, promised: map[string]string{}, own: db.ReplicaID(),
			prefix: fmt.Sprintf("r%d.", run), start: end(ctx, rt, db)}
		// Bounded histories: each step is a commit, and SQLite under the
		// race detector commits about 20 times slower.
		for range rapid.IntRange(1, maxSteps).Draw(rt, "steps") {
			switch rapid.IntRange(0, 4).Draw(rt, "action") {
			case 0:
				merge(ctx, rt, db, m)
			case 1:
				mergeRights(ctx, rt, db, m)
			case 4:
				promise(ctx, rt, db, m)
			default:
				applyEvent(ctx, rt, db, m)
			}
			if rapid.IntRange(0, 3).Draw(rt, "check") == 0 {
				check(ctx, rt, db, m)
			}
		}
		check(ctx, rt, db, m)
	})
}

func (m *model) drawKey(rt *rapid.T) key {
	return key{rapid.SampledFrom(warehouses).Draw(rt, "warehouse"), rapid.SampledFrom(locations).Draw(rt, "location"),
		m.prefix + rapid.SampledFrom(skus).Draw(rt, "sku")}
}

// applyEvent applies one event of a random type, maybe with an id seen
// before (a duplicate, or a reused id with another body).
func applyEvent(ctx context.Context, rt *rapid.T, db Backend, m *model) {
	k := m.drawKey(rt)
	device := rapid.SampledFrom(devices).Draw(rt, "device")
	id := fmt.Sprint(m.prefix, "e", rapid.IntRange(0, 30).Draw(rt, "id"))
	typ := rapid.SampledFrom([]string{"receive", "sale", "adjust", "count", "transfer"}).Draw(rt, "type")
	qty := rapid.Int64Range(1, 50).Draw(rt, "qty")
	e := store.Event{Device: device, ID: id, Type: typ, Warehouse: k.warehouse, Location: k.location, SKU: k.sku, Qty: qty,
		Source: "test", ReceivedAt: time.Now()}
	switch typ {
	case "receive":
		e.Delta = qty
	case "sale":
		e.Delta = -qty
	case "adjust":
		if rapid.Bool().Draw(rt, "negative") {
			qty = -qty
		}
		e.Qty, e.Delta = qty, qty
	case "count":
		e.Qty = rapid.Int64Range(0, 50).Draw(rt, "counted")
		e.Absolute = true
	case "transfer":
		e.Delta = -qty
		e.ToLocation = locations[0]
		if k.location == locations[0] {
			e.ToLocation = locations[1]
		}
	}
	body := fmt.Sprintf("%s|%s|%s|%s|%d|%s", typ, k.warehouse, k.location, k.sku, e.Qty, e.ToLocation)
	e.BodyHash = []byte(body)
	out, err := db.Apply(ctx, &store.Batch{Events: []store.Event{e}})
	require.NoError(rt, err)
	require.Len(rt, out, 1)
	seen, ok := m.logged[[2]string{device, id}]
	switch {
	case ok && seen == body:
		require.Equal(rt, store.Duplicate, out[0].Status)
		return
	case ok:
		require.Equal(rt, store.IDReused, out[0].Status)
		return
	}
	require.Equal(rt, store.Applied, out[0].Status)
	m.logged[[2]string{device, id}] = body
	delta := e.Delta
	if e.Absolute {
		delta = e.Qty - m.onHand(k)
	}
	require.Equal(rt, delta, out[0].Delta, "the applied delta")
	m.counter(k).Apply(m.own, delta)
	if e.ToLocation != "" {
		m.counter(key{k.warehouse, e.ToLocation, k.sku}).Apply(m.own, -delta)
	}
}

// merge merges a page of foreign entries: states, possibly older than what
// the store holds, possibly repeated.
func merge(ctx context.Context, rt *rapid.T, db Backend, m *model) {
	n := rapid.IntRange(1, 5).Draw(rt, "entries")
	op := &store.MergeOp{Now: time.Now(), Cursor: "peer@1", CursorKey: "cursor:conformance"}
	for range n {
		k := m.drawKey(rt)
		e := store.Entry{Warehouse: k.warehouse, Location: k.location, SKU: k.sku, Replica: rapid.SampledFrom(replicas).Draw(rt, "replica"),
			Entry: crdt.Entry{P: rapid.Uint64Range(0, 100).Draw(rt, "p"), N: rapid.Uint64Range(0, 100).Draw(rt, "n")}}
		op.Entries = append(op.Entries, e)
		m.counter(k).MergeEntry(e.Replica, e.Entry)
	}
	_, err := db.Apply(ctx, &store.Batch{Merges: []*store.MergeOp{op}})
	require.NoError(rt, err)
}

// mergeRights merges a page of foreign escrow totals, of every kind,
// possibly older than what the store holds, possibly repeated.
func mergeRights(ctx context.Context, rt *rapid.T, db Backend, m *model) {
	op := &store.MergeOp{Now: time.Now(), Cursor: "peer@1", CursorKey: "cursor:conformance"}
	for range rapid.IntRange(1, 5).Draw(rt, "totals") {
		k := m.drawKey(rt)
		x := store.EscrowEntry{Warehouse: k.warehouse, SKU: k.sku, EscrowEntry: crdt.EscrowEntry{EscrowKey: crdt.EscrowKey{
			Replica: rapid.SampledFrom(replicas).Draw(rt, "replica"),
			Kind:    rapid.SampledFrom([]crdt.Kind{crdt.Supply, crdt.Move, crdt.Spend, crdt.Pick}).Draw(rt, "kind"),
			Holder:  rapid.SampledFrom(holders).Draw(rt, "holder"),
		}, Total: rapid.Uint64Range(1, 100).Draw(rt, "total")}}
		if x.Kind == crdt.Move {
			x.To = "local"
			if x.Holder == "local" {
				x.To = "amazon"
			}
		}
		op.Escrow = append(op.Escrow, x)
		m.escrow(rightsKey{k.warehouse, k.sku}).MergeEntry(x.EscrowEntry)
	}
	_, err := db.Apply(ctx, &store.Batch{Merges: []*store.MergeOp{op}})
	require.NoError(rt, err)
}

// promise applies a promise of one to three channel operations (spends,
// moves between channels) as the store's own replica, maybe under an id
// seen before: applied all or none, once, each within its holder's rights
// as the oracle counts them.
func promise(ctx context.Context, rt *rapid.T, db Backend, m *model) {
	p := &store.Promise{ID: fmt.Sprint(m.prefix, "p", rapid.IntRange(0, 5).Draw(rt, "promise"))}
	body := ""
	for range rapid.IntRange(1, 3).Draw(rt, "ops") {
		k := m.drawKey(rt)
		op := store.EscrowOp{Warehouse: k.warehouse, SKU: k.sku, Kind: crdt.Spend, Holder: rapid.SampledFrom(holders[1:]).Draw(rt, "holder"),
			Qty: rapid.Uint64Range(1, 40).Draw(rt, "qty")}
		if rapid.Bool().Draw(rt, "move") {
			op.Kind, op.To = crdt.Move, "ebay"
			if op.Holder == "ebay" {
				op.To = "amazon"
			}
		}
		p.Ops = append(p.Ops, op)
		body += fmt.Sprintf("%v;", op)
	}
	p.BodyHash, p.Body = []byte(body), []byte("answer "+body)
	_, err := db.Apply(ctx, &store.Batch{Promises: []*store.Promise{p}})
	require.NoError(rt, err)
	if seen, ok := m.promised[p.ID]; ok {
		want := store.PromiseExisted
		if seen != body {
			want = store.PromiseIDReused
		}
		require.Equal(rt, want, p.Result.Status)
		require.Equal(rt, "answer "+seen, string(p.Result.Body), "the answer given the first time")
		return
	}
	// The oracle: the same operations on copies of the model's counters.
	after := map[rightsKey]*crdt.Escrow{}
	want := store.PromiseOK
	for _, op := range p.Ops {
		k := rightsKey{op.Warehouse, op.SKU}
		if after[k] == nil {
			c := m.escrow(k).Clone()
			after[k] = &c
		}
		if op.Kind == crdt.Move {
			_, err = after[k].Move(m.own, op.Holder, op.To, op.Qty)
		} else {
			_, err = after[k].Spend(m.own, op.Holder, op.Qty)
		}
		if err != nil {
			want = store.PromiseInsufficient
			break
		}
	}
	require.Equal(rt, want, p.Result.Status)
	if want != store.PromiseOK {
		return
	}
	m.promised[p.ID] = body
	for k, e := range after {
		m.rights[k] = e
	}
}

func (m *model) escrow(k rightsKey) *crdt.Escrow {
	e, ok := m.rights[k]
	if !ok {
		e = &crdt.Escrow{}
		m.rights[k] = e
	}
	return e
}

// check holds the store to the oracle: every key's level, and the deltas
// from the start, which rebuild exactly the oracle's entries.
func check(ctx context.Context, rt *rapid.T, db Backend, m *model) {
	names := make([]string, len(skus))
	for i, s := range skus {
		names[i] = m.prefix + s
	}
	levels, err := db.SKUsStock(ctx, names)
	require.NoError(rt, err)
	got := map[key]int64{}
	for _, l := range levels {
		for loc, n := range l.Locations {
			got[key{l.Warehouse, loc, l.SKU}] = n
		}
	}
	for k, c := range m.counters {
		require.Equal(rt, c.Value(), got[k], "on hand of %v", k)
	}
	rebuilt := map[key]*crdt.PNCounter{}
	rebuiltRights := map[rightsKey]*crdt.Escrow{}
	since := m.start
	for {
		page, err := db.Deltas(ctx, since, 7, "")
		require.NoError(rt, err)
		for _, e := range page.Entries {
			k := key{e.Warehouse, e.Location, e.SKU}
			if rebuilt[k] == nil {
				rebuilt[k] = &crdt.PNCounter{}
			}
			rebuilt[k].MergeEntry(e.Replica, e.Entry)
		}
		for _, x := range page.Escrow {
			k := rightsKey{x.Warehouse, x.SKU}
			if rebuiltRights[k] == nil {
				rebuiltRights[k] = &crdt.Escrow{}
			}
			rebuiltRights[k].MergeEntry(x.EscrowEntry)
		}
		require.GreaterOrEqual(rt, page.Next, since, "the cursor never goes back")
		since = page.Next
		if !page.More {
			break
		}
	}
	for k, c := range m.counters {
		r := rebuilt[k]
		if r == nil {
			r = &crdt.PNCounter{}
		}
		require.True(rt, c.Equal(*r), "deltas of %v rebuild the state: want %v got %v", k, c.Replicas(), r.Replicas())
	}
	for k, e := range m.rights {
		r := rebuiltRights[k]
		if r == nil {
			r = &crdt.Escrow{}
		}
		require.True(rt, e.Equal(*r), "deltas of %v rebuild the rights: want %v got %v", k, e.Entries(), r.Entries())
	}
}

// AlertBackend is a store with an alert outbox.
type AlertBackend interface {
	Backend
	Alerts(ctx context.Context, since int64, limit int) ([]store.Alert, error)
}

// alertTop is the seq of db's last alert (0: none).
func alertTop(t *testing.T, db AlertBackend) int64 {
	all, err := db.Alerts(context.Background(), 0, 1_000_000)
	require.NoError(t, err)
	if len(all) == 0 {
		return 0
	}
	return all[len(all)-1].Seq
}

// Links: a link state raises an alert only when it changes, and not for
// a first contact; applying the same state again, as a second hub process
// seeing the same change would, records nothing.
func Links(t *testing.T, db AlertBackend) {
	ctx := context.Background()
	since := alertTop(t, db)
	wh := fmt.Sprintf("links-%d", time.Now().UnixNano())
	never := wh + "-never"
	for _, step := range [][]store.LinkState{
		{{Warehouse: wh, Online: true}}, // first contact: no news
		{{Warehouse: wh, Online: true}},
		{{Warehouse: wh, Online: false}, {Warehouse: never, Online: false}}, // down; never reached
		{{Warehouse: wh, Online: false}},                                    // a second process saw it too
		{{Warehouse: wh, Online: true}},
	} {
		_, err := db.Apply(ctx, &store.Batch{Links: step})
		require.NoError(t, err)
	}
	got, err := db.Alerts(ctx, since, 100)
	require.NoError(t, err)
	var kinds []string
	for _, a := range got {
		kinds = append(kinds, a.Kind+":"+a.Warehouse)
		require.False(t, a.CreatedAt.IsZero())
	}
	require.Equal(t, []string{store.AlertWarehouseOffline + ":" + wh, store.AlertWarehouseOffline + ":" + never,
		store.AlertWarehouseOnline + ":" + wh}, kinds)
}

// LinksHeld: an agent that dials the hub is judged by the process holding
// its uplink; another process that sees it offline is not heard, until
// the holder itself says so.
func LinksHeld(t *testing.T, db AlertBackend) {
	ctx := context.Background()
	since := alertTop(t, db)
	wh := fmt.Sprintf("held-%d", time.Now().UnixNano())
	for _, step := range []store.LinkState{
		{Warehouse: wh, Online: false, Holder: "h2"}, // never reached: offline (alert)
		{Warehouse: wh, Online: true, Holder: "h1"},  // dials h1 (alert)
		{Warehouse: wh, Online: false, Holder: "h2"}, // h2 never had it: not heard
		{Warehouse: wh, Online: true, Holder: "h2"},  // moves to h2: online still
		{Warehouse: wh, Online: false, Holder: "h1"}, // h1 lost it long ago: not heard
		{Warehouse: wh, Online: false, Holder: "h2"}, // h2 loses it (alert)
	} {
		_, err := db.Apply(ctx, &store.Batch{Links: []store.LinkState{step}})
		require.NoError(t, err)
	}
	got, err := db.Alerts(ctx, since, 100)
	require.NoError(t, err)
	var kinds []string
	for _, a := range got {
		kinds = append(kinds, a.Kind)
	}
	require.Equal(t, []string{store.AlertWarehouseOffline, store.AlertWarehouseOnline, store.AlertWarehouseOffline}, kinds)
}
