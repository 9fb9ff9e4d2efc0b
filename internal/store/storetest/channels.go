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

// The channels world: two warehouses' agents (SQLite stores) and a hub
// store, joined by a sync the history drives page by page.
var (
	chWarehouses = []string{"wh1", "wh2"}
	chSKUs       = []string{"S1", "S2"}
	chChannels   = []string{"amazon", "ebay"}
)

type chKey struct{ wh, sku string }

// world is the stores and the model of what was promised.
type world struct {
	ctx    context.Context
	agents map[string]*store.DB
	dirs   map[string]string
	hub    Backend
	pulled map[string]int64 // the hub's cursor into each agent
	pushed map[string]int64 // each agent's cursor into the hub
	// spent is what booked orders spent, per (warehouse, sku, channel).
	spent map[[3]string]uint64
	// lines are the booked orders' lines, per warehouse.
	lines map[string][]store.OrderLine
	holds map[string][]string // active local holds per warehouse
	// allotted are the (warehouse, sku, channel) ever allotted to: orders
	// mostly go there, so that histories sell.
	allotted [][3]string
	// received and sold are the facts written, per (warehouse, sku).
	received, sold map[chKey]int64
	n              int // ids
}

// Channels holds the stores to SPEC §9's guarantee under any history: a
// rapid state machine over real stores (two SQLite agents and the hub's
// store) that receives, allots, holds and sells locally, books orders and
// releases at the hub, and syncs page by page with pages dropped,
// delivered again and out of date, and agents and the hub restarted.
// After every step, in the union of every store's state: no channel's
// rights are negative, every booked order is spent exactly once, picks
// never pass spends, and what is promised (channels' rights, committed
// orders, local holds) never passes what is on hand. Healed and
// everything picked, the stock is exactly what was received less what
// was sold.
//
// hub opens the hub's store: empty when fresh, else the same store again
// after the suite closed it (a hub restart).
func Channels(t *testing.T, hub func(t *rapid.T, fresh bool) Backend) {
	rapid.Check(t, func(rt *rapid.T) {
		w := &world{ctx: context.Background(), agents: map[string]*store.DB{}, dirs: map[string]string{}, hub: hub(rt, true),
			pulled: map[string]int64{}, pushed: map[string]int64{}, spent: map[[3]string]uint64{}, lines: map[string][]store.OrderLine{},
			holds: map[string][]string{}, received: map[chKey]int64{}, sold: map[chKey]int64{}}
		for _, wh := range chWarehouses {
			w.dirs[wh] = t.TempDir()
			w.open(rt, wh)
			for _, sku := range chSKUs { // stock to start from: histories get to selling sooner
				w.receiveAt(rt, wh, sku, 10)
			}
		}
		defer func() {
			for _, db := range w.agents {
				_ = db.Close()
			}
			if c, ok := w.hub.(interface{ Close() error }); ok {
				_ = c.Close()
			}
		}()
		// Repeat draws actions alike: the frequent ones are listed more than
		// once, so that histories get to orders.
		rt.Repeat(map[string]func(*rapid.T){
			"receive": w.receive, "receive again": w.receive,
			"allot": w.allot, "allot again": w.allot,
			"hold":  w.hold,
			"sell":  w.sellHold,
			"order": w.order, "order again": w.order, "order once more": w.order,
			"release": w.release,
			"cancel":  w.cancel,
			"pull":    w.pull, "pull again": w.pull, "pull once more": w.pull,
			"push": w.push, "push again": w.push,
			"pick": w.pick,
			"restart": func(rt *rapid.T) {
				wh := rapid.SampledFrom(chWarehouses).Draw(rt, "warehouse")
				require.NoError(rt, w.agents[wh].Close())
				w.open(rt, wh)
			},
			"restart hub": func(rt *rapid.T) {
				require.NoError(rt, w.hub.(interface{ Close() error }).Close())
				w.hub = hub(rt, false)
			},
			"": w.check,
		})
		w.heal(rt)
	})
}

func (w *world) open(rt *rapid.T, wh string) {
	db, err := store.Open(w.ctx, w.dirs[wh], store.Options{Warehouse: wh})
	require.NoError(rt, err)
	w.agents[wh] = db
}

func (w *world) id(kind string) string { w.n++; return fmt.Sprint(kind, "-", w.n) }

func (w *world) draw(rt *rapid.T) (string, string) {
	return rapid.SampledFrom(chWarehouses).Draw(rt, "warehouse"), rapid.SampledFrom(chSKUs).Draw(rt, "sku")
}

func (w *world) apply(rt *rapid.T, db Backend, b *store.Batch) {
	_, err := db.Apply(w.ctx, b)
	require.NoError(rt, err)
}

func (w *world) receive(rt *rapid.T) {
	wh, sku := w.draw(rt)
	w.receiveAt(rt, wh, sku, rapid.Int64Range(1, 10).Draw(rt, "qty"))
}

func (w *world) receiveAt(rt *rapid.T, wh, sku string, qty int64) {
	id := w.id("r")
	w.apply(rt, w.agents[wh], &store.Batch{Events: []store.Event{{Device: "d", ID: id, BodyHash: []byte(id), Type: "receive",
		Warehouse: wh, Location: "default", SKU: sku, Qty: qty, Delta: qty, Source: "test", ReceivedAt: time.Now()}}})
	w.received[chKey{wh, sku}] += qty
}

func (w *world) allot(rt *rapid.T) {
	wh, sku := w.draw(rt)
	ch := rapid.SampledFrom(chChannels).Draw(rt, "channel")
	p := &store.Promise{ID: w.id("a"), Ops: []store.EscrowOp{{Warehouse: wh, SKU: sku, Kind: crdt.Move, Holder: store.LocalHolder,
		To: ch, Qty: rapid.Uint64Range(1, 5).Draw(rt, "qty")}}}
	w.apply(rt, w.agents[wh], &store.Batch{Promises: []*store.Promise{p}})
	if p.Result.Status == store.PromiseOK {
		w.allotted = append(w.allotted, [3]string{wh, sku, ch})
	}
}

func (w *world) hold(rt *rapid.T) {
	wh, sku := w.draw(rt)
	id := w.id("h")
	op := &store.HoldOp{Kind: store.HoldCreate, BodyHash: []byte(id), Now: time.Now(), Hold: store.Hold{ID: id, Warehouse: wh,
		Location: "default", SKU: sku, Qty: rapid.Int64Range(1, 3).Draw(rt, "qty"), ExpiresAt: time.Now().Add(time.Hour)}}
	w.apply(rt, w.agents[wh], &store.Batch{Holds: []*store.HoldOp{op}})
	if op.Result.Status == store.HoldOK {
		w.holds[wh] = append(w.holds[wh], id)
	}
}

// sellHold commits a local hold: the till sells what the cart held.
func (w *world) sellHold(rt *rapid.T) {
	wh := rapid.SampledFrom(chWarehouses).Draw(rt, "warehouse")
	if len(w.holds[wh]) == 0 {
		rt.Skip("no hold")
	}
	i := rapid.IntRange(0, len(w.holds[wh])-1).Draw(rt, "hold")
	id := w.holds[wh][i]
	op := &store.HoldOp{Kind: store.HoldCommit, Hold: store.Hold{ID: id}, EventDevice: "holds", EventID: "hold:" + id, Now: time.Now()}
	w.apply(rt, w.agents[wh], &store.Batch{Holds: []*store.HoldOp{op}})
	require.Equal(rt, store.HoldOK, op.Result.Status)
	w.holds[wh] = append(w.holds[wh][:i], w.holds[wh][i+1:]...)
	w.sold[chKey{wh, op.Result.Hold.SKU}] += op.Result.Hold.Qty
}

func (w *world) order(rt *rapid.T) {
	wh, sku := w.draw(rt)
	ch := rapid.SampledFrom(chChannels).Draw(rt, "channel")
	if len(w.allotted) > 0 && rapid.Bool().Draw(rt, "where allotted") {
		k := rapid.SampledFrom(w.allotted).Draw(rt, "allotted")
		wh, sku, ch = k[0], k[1], k[2]
	}
	qty := rapid.Uint64Range(1, 4).Draw(rt, "qty")
	id := w.id("o")
	line := store.OrderLine{ID: id + ".1", Warehouse: wh, SKU: sku, Channel: ch, Qty: int64(qty)}
	p := &store.Promise{ID: "order:" + id, BodyHash: []byte(id), Body: []byte(id), Lines: []store.OrderLine{line},
		Ops: []store.EscrowOp{{Warehouse: wh, SKU: sku, Kind: crdt.Spend, Holder: ch, Qty: qty}}}
	w.apply(rt, w.hub, &store.Batch{Promises: []*store.Promise{p}})
	if p.Result.Status == store.PromiseOK {
		w.spent[[3]string{wh, sku, ch}] += qty
		w.lines[wh] = append(w.lines[wh], line)
	}
}

// cancel cancels a booked order line at the hub: at its warehouse it ends
// unpicked (its units the warehouse's again), or stays picked.
func (w *world) cancel(rt *rapid.T) {
	wh := rapid.SampledFrom(chWarehouses).Draw(rt, "warehouse")
	if len(w.lines[wh]) == 0 {
		rt.Skip("no line")
	}
	l := rapid.SampledFrom(w.lines[wh]).Draw(rt, "line")
	l.Cancelled = true
	w.apply(rt, w.hub, &store.Batch{Promises: []*store.Promise{{Lines: []store.OrderLine{l}}}})
}

func (w *world) release(rt *rapid.T) {
	wh, sku := w.draw(rt)
	p := &store.Promise{ID: w.id("rel"), Ops: []store.EscrowOp{{Warehouse: wh, SKU: sku, Kind: crdt.Move,
		Holder: rapid.SampledFrom(chChannels).Draw(rt, "channel"), To: store.LocalHolder, Qty: rapid.Uint64Range(1, 3).Draw(rt, "qty")}}}
	w.apply(rt, w.hub, &store.Batch{Promises: []*store.Promise{p}})
}

// mode draws how a page travels: delivered, dropped, or delivered again
// from an older cursor.
func mode(rt *rapid.T) string {
	return rapid.SampledFrom([]string{"deliver", "deliver", "deliver", "drop", "again"}).Draw(rt, "mode")
}

// pull moves a page of an agent's deltas to the hub.
func (w *world) pull(rt *rapid.T) {
	wh := rapid.SampledFrom(chWarehouses).Draw(rt, "warehouse")
	since := w.pulled[wh]
	m := mode(rt)
	if m == "again" {
		since = rapid.Int64Range(0, since).Draw(rt, "since")
	}
	page, err := w.agents[wh].Deltas(w.ctx, since, rapid.IntRange(1, 20).Draw(rt, "limit"), "")
	require.NoError(rt, err)
	if m == "drop" {
		return
	}
	w.apply(rt, w.hub, &store.Batch{Merges: []*store.MergeOp{{Entries: page.Entries, Escrow: page.Escrow, Now: time.Now()}}})
	if m == "deliver" {
		w.pulled[wh] = page.Next
	}
}

// push moves a page of the hub's deltas to an agent, its own lines only.
func (w *world) push(rt *rapid.T) {
	wh := rapid.SampledFrom(chWarehouses).Draw(rt, "warehouse")
	since := w.pushed[wh]
	m := mode(rt)
	if m == "again" {
		since = rapid.Int64Range(0, since).Draw(rt, "since")
	}
	page, err := w.hub.Deltas(w.ctx, since, rapid.IntRange(1, 6).Draw(rt, "limit"), "")
	require.NoError(rt, err)
	if m == "drop" {
		return
	}
	op := &store.MergeOp{Entries: page.Entries, Escrow: page.Escrow, Now: time.Now()}
	for _, l := range page.Lines {
		if l.Warehouse == wh {
			op.Lines = append(op.Lines, l)
		}
	}
	w.apply(rt, w.agents[wh], &store.Batch{Merges: []*store.MergeOp{op}})
	if m == "deliver" {
		w.pushed[wh] = page.Next
	}
}

// pick picks an order line that reached its warehouse.
func (w *world) pick(rt *rapid.T) {
	wh := rapid.SampledFrom(chWarehouses).Draw(rt, "warehouse")
	if len(w.lines[wh]) == 0 {
		rt.Skip("no line")
	}
	l := rapid.SampledFrom(w.lines[wh]).Draw(rt, "line")
	w.pickLine(rt, wh, l)
}

func (w *world) pickLine(rt *rapid.T, wh string, l store.OrderLine) {
	h, found, err := w.agents[wh].GetHold(w.ctx, store.LineHoldID(l.ID))
	require.NoError(rt, err)
	if !found || h.State != store.HoldCommitted {
		return // not here yet, or picked
	}
	op := &store.HoldOp{Kind: store.HoldCommit, Hold: store.Hold{ID: store.LineHoldID(l.ID)}, EventDevice: "holds", EventID: "hold:" + l.ID, Now: time.Now()}
	w.apply(rt, w.agents[wh], &store.Batch{Holds: []*store.HoldOp{op}})
	require.Equal(rt, store.HoldOK, op.Result.Status)
	require.Equal(rt, store.HoldPicked, op.Result.Hold.State)
	w.sold[chKey{wh, l.SKU}] += l.Qty
}

// truth is the union of every store's state.
func (w *world) truth(rt *rapid.T) (map[chKey]*crdt.Escrow, map[chKey]*crdt.PNCounter) {
	rights, stock := map[chKey]*crdt.Escrow{}, map[chKey]*crdt.PNCounter{}
	for _, db := range append([]Backend{w.hub}, w.agents["wh1"], w.agents["wh2"]) {
		for since, more := int64(0), true; more; {
			page, err := db.Deltas(w.ctx, since, 10_000, "")
			require.NoError(rt, err)
			for _, e := range page.Entries {
				k := chKey{e.Warehouse, e.SKU}
				if stock[k] == nil {
					stock[k] = &crdt.PNCounter{}
				}
				stock[k].MergeEntry(e.Replica+"/"+e.Location, e.Entry)
			}
			for _, x := range page.Escrow {
				k := chKey{x.Warehouse, x.SKU}
				if rights[k] == nil {
					rights[k] = &crdt.Escrow{}
				}
				rights[k].MergeEntry(x.EscrowEntry)
			}
			since, more = page.Next, page.More
		}
	}
	return rights, stock
}

// check holds the union of the stores to the guarantee.
func (w *world) check(rt *rapid.T) {
	rights, stock := w.truth(rt)
	for _, wh := range chWarehouses {
		reserved, err := w.agents[wh].ReservedOf(w.ctx, chSKUs, time.Now())
		require.NoError(rt, err)
		for _, sku := range chSKUs {
			k := chKey{wh, sku}
			e := rights[k]
			if e == nil {
				e = &crdt.Escrow{}
			}
			var onHand int64
			if c := stock[k]; c != nil {
				onHand = c.Value()
			}
			for _, ch := range chChannels {
				require.GreaterOrEqual(rt, e.Rights(ch), int64(0), "%v: %s's rights", k, ch)
				require.Equal(rt, w.spent[[3]string{wh, sku, ch}], e.Spent(ch), "%v: %s spent what its orders booked, once", k, ch)
				require.LessOrEqual(rt, e.Picked(ch), e.Spent(ch), "%v: %s picked past its orders", k, ch)
			}
			promised := e.Promised(store.LocalHolder) + reserved[sku]
			require.LessOrEqual(rt, promised, onHand, "%v: promised (channels' rights, committed orders, local holds) past on hand", k)
			require.Equal(rt, w.received[k]-w.sold[k], onHand, "%v: on hand is what was received less what was sold", k)
		}
	}
}

// heal syncs everything both ways until nothing moves, picks every line,
// and checks the end: nothing committed, nothing oversold.
func (w *world) heal(rt *rapid.T) {
	for range 50 {
		moved := false
		for _, wh := range chWarehouses {
			for _, dir := range []struct {
				from, to Backend
				cursor   map[string]int64
				lines    bool
			}{{w.agents[wh], w.hub, w.pulled, false}, {w.hub, w.agents[wh], w.pushed, true}} {
				page, err := dir.from.Deltas(w.ctx, dir.cursor[wh], 10_000, "")
				require.NoError(rt, err)
				op := &store.MergeOp{Entries: page.Entries, Escrow: page.Escrow, Now: time.Now()}
				for _, l := range page.Lines {
					if dir.lines && l.Warehouse == wh {
						op.Lines = append(op.Lines, l)
					}
				}
				w.apply(rt, dir.to, &store.Batch{Merges: []*store.MergeOp{op}})
				moved = moved || page.Next != dir.cursor[wh]
				dir.cursor[wh] = page.Next
			}
		}
		if !moved {
			break
		}
	}
	for _, wh := range chWarehouses {
		for _, l := range w.lines[wh] {
			w.pickLine(rt, wh, l)
		}
	}
	w.check(rt)
	rights, stock := w.truth(rt)
	for k, e := range rights {
		for _, ch := range chChannels {
			require.Equal(rt, int64(0), e.Committed(ch), "%v: %s has orders never picked", k, ch)
		}
		if c := stock[k]; c != nil {
			require.GreaterOrEqual(rt, c.Value(), int64(0), "%v: oversold", k)
		}
	}
}
