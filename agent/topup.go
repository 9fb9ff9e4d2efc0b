package agent

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/edgestock/edgestock/crdt"
	"github.com/edgestock/edgestock/internal/store"
)

// Top-up timing.
const (
	topUpInterval = time.Second
	// topUpReach is how recent the hub's last sync request must be for the
	// hub to count as reachable: it asks at least every few seconds while
	// connected. Rights allotted while it cannot see them would only be
	// units nobody can sell.
	topUpReach = 30 * time.Second
	// topUpRescan is how often every SKU is looked at, not only those a
	// commit touched (a channel's config is new, or the hub came back).
	topUpRescan = 5 * time.Minute
)

// topUp keeps each configured channel's rights per SKU between low-water
// and target (SPEC §9): SKUs touched by commits are looked at within a
// second, every SKU every topUpRescan and when the hub comes back.
type topUp struct {
	a        *Agent
	channels []string // sorted: a short SKU goes to the first ones first
	mu       sync.Mutex
	dirty    map[string]bool
	rescan   bool // look at every SKU at the next pass
	lastScan time.Time
	reached  bool // the hub was reachable at the last pass
	loop     *loop
}

func (a *Agent) startTopUp() *topUp {
	t := &topUp{a: a, dirty: map[string]bool{}, rescan: true}
	for id := range a.cfg.Channels {
		t.channels = append(t.channels, id)
	}
	slices.Sort(t.channels)
	t.loop = every(topUpInterval, t.pass)
	return t
}

// mark notes SKUs a commit touched.
func (t *topUp) mark(skus []string) {
	t.mu.Lock()
	for _, s := range skus {
		t.dirty[s] = true
	}
	t.mu.Unlock()
}

// Stop ends the loop.
func (t *topUp) Stop() { t.loop.Stop() }

func (t *topUp) pass(ctx context.Context) {
	ms := t.a.hubSeen.Load()
	reached := ms != 0 && now().Sub(time.UnixMilli(ms)) < topUpReach
	if !reached {
		t.reached = false
		return // keep the marks for when it is back
	}
	t.mu.Lock()
	if !t.reached || now().Sub(t.lastScan) > topUpRescan {
		t.rescan = true
	}
	skus, rescan := t.dirty, t.rescan
	t.dirty, t.rescan, t.reached = map[string]bool{}, false, true
	t.mu.Unlock()
	err := t.run(ctx, skus, rescan)
	if err != nil && ctx.Err() == nil {
		t.a.logger.Warn("channel top-up", "err", err)
		t.mu.Lock()
		t.rescan = true // try everything again next time
		t.mu.Unlock()
	}
}

// run tops up skus, or every SKU of the warehouse when all is set.
func (t *topUp) run(ctx context.Context, skus map[string]bool, all bool) error {
	if all {
		t.lastScan = now()
		for after := ""; ; {
			page, err := t.a.store.StockPage(ctx, "", after, viewPage)
			if err != nil || len(page) == 0 {
				return err
			}
			if err := t.page(ctx, page); err != nil {
				return err
			}
			after = page[len(page)-1]
		}
	}
	list := make([]string, 0, len(skus))
	for s := range skus {
		list = append(list, s)
	}
	slices.Sort(list)
	for len(list) > 0 {
		n := min(len(list), viewPage)
		if err := t.page(ctx, list[:n]); err != nil {
			return err
		}
		list = list[n:]
	}
	return nil
}

// page allots what skus' channels lack, in one transaction; what the
// available stock does not cover in full gets what there is.
func (t *topUp) page(ctx context.Context, skus []string) error {
	rights, err := t.a.store.RightsOf(ctx, t.a.cfg.Warehouse, skus)
	if err != nil {
		return err
	}
	var want []*store.Promise
	for _, sku := range skus {
		e := rights[sku]
		for _, ch := range t.channels {
			c := t.a.cfg.Channels[ch]
			if r := e.Rights(ch); r < c.LowWater {
				want = append(want, t.allot(sku, ch, c.Target-r))
			}
		}
	}
	for round := 0; len(want) > 0 && round < 2; round++ { // then what there is, once
		if _, err := t.a.store.Apply(ctx, &store.Batch{Promises: want}); err != nil {
			return err
		}
		var short []*store.Promise
		for _, p := range want {
			if r := p.Result.Rights; p.Result.Status == store.PromiseInsufficient && r > 0 {
				short = append(short, t.allot(p.Ops[0].SKU, p.Ops[0].To, r)) // what there is
			}
		}
		want = short
	}
	return nil
}

func (t *topUp) allot(sku, channel string, qty int64) *store.Promise {
	return &store.Promise{Ops: []store.EscrowOp{{Warehouse: t.a.cfg.Warehouse, SKU: sku, Kind: crdt.Move,
		Holder: store.LocalHolder, To: channel, Qty: uint64(qty)}}}
}
