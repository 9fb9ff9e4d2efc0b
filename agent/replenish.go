package agent

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/internal/httpjson"
	"github.com/edgestock/edgestock/internal/replenish"
	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/sync"
)

// Replenishment follower tuning.
const (
	// replenishInterval is how often the follower looks for new events: a
	// stockout_risk alert follows its sale within about this long.
	replenishInterval = 500 * time.Millisecond
	// replenishPage is how many events one step learns from, in one read
	// and one write: large, so that under heavy ingest the figures of a
	// busy SKU are assessed a few times a second, not once per commit.
	replenishPage = 10_000
	// replenishSteps bounds the steps of one pass, so a long backlog (the
	// first start on an old database) yields to Close between passes.
	replenishSteps = 25
	// replenishScan bounds the SKUs one GET /v1/replenishment reads.
	replenishScan = 10_000
)

// SKUPolicy is one row of replenishment.csv: a SKU's lead time and target.
type SKUPolicy struct {
	LeadTimeDays float64
	TargetDays   float64 // 0: the configured default
}

// replenisher learns each SKU's demand from the event log (SPEC §12),
// after the commit rather than in it: it follows the log by seq, and
// writes the states it learned with the log's cursor and the
// stockout_risk crossings in one transaction, so each event is learned
// from once and each crossing alerted once, whatever crashes. Ingest does
// not wait for it.
type replenisher struct {
	a      *Agent
	fc     replenish.Forecaster
	cfg    Replenishment
	file   *watchedFile[map[string]SKUPolicy]
	cursor int64 // the last event seq learned from (the loop's alone)
	errs   distinct
	loop   *loop
}

func (a *Agent) openReplenisher(ctx context.Context) (*replenisher, error) {
	loc, err := time.LoadLocation(a.cfg.Replenishment.TimeZone)
	if err != nil { // Validate checked it
		return nil, fmt.Errorf("replenishment.time-zone: %w", err)
	}
	r := &replenisher{a: a, fc: replenish.Forecaster{Location: loc}, cfg: a.cfg.Replenishment}
	if r.file, err = openWatched(a.cfg.Replenishment.File, map[string]SKUPolicy{}, parseReplenishment, a.logger.With("component", "replenishment")); err != nil {
		return nil, fmt.Errorf("replenishment.file: %w", err)
	}
	if r.cursor, err = a.store.DemandCursor(ctx); err != nil {
		r.file.Close()
		return nil, err
	}
	r.loop = every(replenishInterval, r.pass)
	return r, nil
}

// Close stops the follower; what it has not learned yet it learns at the
// next start, from the stored cursor.
func (r *replenisher) Close() {
	r.loop.Stop()
	r.file.Close()
}

// policy is sku's policy: its row of replenishment.csv over the defaults.
func (r *replenisher) policy(sku string) replenish.Policy {
	p := r.cfg.Policy()
	if row, ok := r.file.Get()[sku]; ok {
		p.LeadTimeDays = row.LeadTimeDays
		if row.TargetDays > 0 {
			p.TargetDays = row.TargetDays
		}
	}
	return p
}

func (r *replenisher) pass(ctx context.Context) {
	for range replenishSteps {
		more, err := r.step(ctx)
		if r.errs.changed(err) && ctx.Err() == nil {
			if err != nil {
				r.a.logger.Warn("replenishment: learning demand from the event log", "err", err)
			} else {
				r.a.logger.Info("replenishment: learning demand again")
			}
		}
		if err != nil || !more {
			return
		}
	}
}

// skuDemand is a SKU's state while a step updates it.
type skuDemand struct {
	d        replenish.Demand
	risk     replenish.Risk
	learned  bool // d changed
	received bool // a receive arrived in this step
}

// step learns from up to replenishPage events past the cursor; more says
// a full page was read.
func (r *replenisher) step(ctx context.Context) (more bool, err error) {
	events, err := r.a.store.DemandEvents(ctx, r.cursor, replenishPage)
	if err != nil || len(events) == 0 {
		return false, err
	}
	wh := r.a.cfg.Warehouse
	var skus []string
	for _, e := range events {
		if e.Warehouse == wh {
			skus = append(skus, e.SKU)
		}
	}
	slices.Sort(skus)
	skus = slices.Compact(skus)
	states, err := r.load(ctx, skus)
	if err != nil {
		return false, err
	}
	for _, e := range events {
		st := states[e.SKU]
		if e.Warehouse != wh || st == nil {
			continue
		}
		switch e.Type {
		case drivers.TypeSale, drivers.TypePick:
			at := e.ReceivedAt
			if t, err := time.Parse(time.RFC3339Nano, e.DeviceTS); err == nil { // validated at ingest
				at = t
			}
			if r.fc.Observe(&st.d, at, e.ReceivedAt, e.Qty) {
				st.learned = true
			}
		case drivers.TypeReceive:
			st.received = true
		}
	}
	op := &store.DemandOp{Cursor: events[len(events)-1].Seq}
	if err := r.assess(ctx, skus, states, op); err != nil {
		return false, err
	}
	if _, err := r.a.store.Apply(ctx, &store.Batch{Demand: op}); err != nil {
		return false, err
	}
	r.cursor = op.Cursor
	return len(events) == replenishPage, nil
}

// load reads the states of skus.
func (r *replenisher) load(ctx context.Context, skus []string) (map[string]*skuDemand, error) {
	rows, err := r.a.store.DemandOf(ctx, r.a.cfg.Warehouse, skus)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*skuDemand, len(skus))
	for _, sku := range skus {
		st := &skuDemand{}
		if row, ok := rows[sku]; ok {
			if err := st.d.UnmarshalBinary(row.State); err != nil {
				return nil, fmt.Errorf("demand of %s: %w", sku, err)
			}
			st.risk.Raised = row.AtRisk
		}
		out[sku] = st
	}
	return out, nil
}

// assess puts into op each changed state of skus, and the stockout_risk
// crossings their figures make now.
func (r *replenisher) assess(ctx context.Context, skus []string, states map[string]*skuDemand, op *store.DemandOp) error {
	var seen []string // SKUs with demand, or a raised alert to clear
	for _, sku := range skus {
		if st := states[sku]; st.d.Seen() || st.risk.Raised {
			seen = append(seen, sku)
		}
	}
	views, err := r.a.stockViews(ctx, seen)
	if err != nil {
		return err
	}
	at := now()
	for _, v := range views {
		st := states[v.SKU]
		fig, err := r.fc.Figures(st.d, at, replenish.Stock{OnHand: v.OnHand, Available: v.Available}, r.policy(v.SKU))
		if err != nil {
			return fmt.Errorf("figures of %s: %w", v.SKU, err) // a policy out of range: parse and Validate refuse those
		}
		risk, move := st.risk.Next(fig, st.received)
		if move != replenish.Hold {
			kind := store.AlertStockoutRisk
			if move == replenish.Clear {
				kind = store.AlertStockoutRiskCleared
			}
			op.Alerts = append(op.Alerts, store.Alert{Kind: kind, Warehouse: v.Warehouse, SKU: v.SKU,
				Level: min(v.Available, v.OnHand), DaysOfCover: storedCover(fig.DaysOfCover), LeadTimeDays: fig.LeadTimeDays})
		}
		if st.learned || risk != st.risk {
			state, _ := st.d.MarshalBinary() // a Demand always encodes
			op.Rows = append(op.Rows, store.DemandRow{Warehouse: v.Warehouse, SKU: v.SKU, State: state, AtRisk: risk.Raised, UpdatedAt: at})
		}
	}
	return nil
}

// storedCover keeps days of cover in the alert outbox: -1 for "no demand
// expected" (+Inf), which JSON cannot carry.
func storedCover(days float64) float64 {
	if math.IsInf(days, 1) {
		return -1
	}
	return days
}

// ReplenishmentItem is one SKU of GET /v1/replenishment (SPEC §12).
type ReplenishmentItem = sync.ReplenishmentItem

// round3 keeps three decimals: figures, not noise.
func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

func (r *replenisher) item(v StockView, row store.DemandRow, at time.Time) (ReplenishmentItem, error) {
	var d replenish.Demand
	if err := d.UnmarshalBinary(row.State); err != nil {
		return ReplenishmentItem{}, fmt.Errorf("demand of %s: %w", row.SKU, err)
	}
	p := r.policy(row.SKU)
	fig, err := r.fc.Figures(d, at, replenish.Stock{OnHand: v.OnHand, Available: v.Available}, p)
	if err != nil {
		return ReplenishmentItem{}, err
	}
	it := ReplenishmentItem{SKU: row.SKU, Warehouse: v.Warehouse, OnHand: v.OnHand, Available: v.Available,
		DailyDemand: round3(fig.DailyDemand), LeadTimeDays: p.LeadTimeDays, TargetDays: max(p.TargetDays, p.LeadTimeDays),
		SafetyStock: round3(fig.SafetyStock), ReorderPoint: round3(fig.ReorderPoint), SuggestedQty: fig.SuggestedQty, AtRisk: row.AtRisk}
	if !math.IsInf(fig.DaysOfCover, 1) {
		cover, out := round3(fig.DaysOfCover), fig.StockoutAt.UTC().Truncate(time.Second)
		it.DaysOfCover, it.StockoutAt = &cover, &out
	}
	return it, nil
}

// handleReplenishment is GET /v1/replenishment: the figures of each SKU
// that has sold here, in SKU order, paged by ?after=; ?sku= one SKU,
// ?prefix= those starting with it, ?below-days= those whose days of cover
// are below it. A page may hold fewer than limit items (a strict filter
// over many SKUs): go on while next is not "".
func (a *Agent) handleReplenishment(w http.ResponseWriter, r *http.Request) {
	rp := a.replenish
	if rp == nil {
		writeError(w, http.StatusNotFound, "not_enabled", "replenishment is off in this agent's config (replenishment.enabled)")
		return
	}
	q := r.URL.Query()
	limit, err := pageLimit(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_query", "%v", err)
		return
	}
	below, err := sync.BelowDays(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_query", "%v", err)
		return
	}
	sku, prefix, after := q.Get("sku"), q.Get("prefix"), q.Get("after")
	if sku != "" && !drivers.ValidID(sku) {
		writeError(w, http.StatusBadRequest, "bad_query", "sku: %q is not a SKU", sku)
		return
	}
	ctx := r.Context()
	at := now()
	items := []ReplenishmentItem{}
	next := ""
	// A strict below-days may match few SKUs of many: one request reads at
	// most replenishScan of them, and says where to go on.
	for scanned := 0; ; scanned += limit {
		if scanned >= replenishScan {
			next = after // fewer than limit items: go on from here
			break
		}
		var rows []store.DemandRow
		if sku != "" {
			one, err := a.store.DemandOf(ctx, a.cfg.Warehouse, []string{sku})
			if err != nil {
				writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
				return
			}
			if row, ok := one[sku]; ok {
				rows = append(rows, row)
			}
		} else if rows, err = a.store.DemandPage(ctx, a.cfg.Warehouse, prefix, after, limit); err != nil {
			writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
			return
		}
		skus := make([]string, len(rows))
		for i, row := range rows {
			skus[i] = row.SKU
		}
		views, err := a.stockViews(ctx, skus)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
			return
		}
		byID := make(map[string]StockView, len(views))
		for _, v := range views {
			byID[v.SKU] = v
		}
		full := false
		for _, row := range rows {
			it, err := rp.item(byID[row.SKU], row, at)
			if err != nil {
				writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
				return
			}
			if math.IsInf(below, 1) || it.Below(below) {
				items = append(items, it)
			}
			if after = row.SKU; len(items) == limit {
				full = true
				break
			}
		}
		if full && sku == "" {
			next = after
			break
		}
		if sku != "" || len(rows) < limit {
			break // the end
		}
	}
	httpjson.Write(w, http.StatusOK, sync.ReplenishmentPage{Items: items, Next: next})
}

// parseReplenishment reads replenishment.csv: a header naming sku and
// lead_time_days (and optionally target_days), then a row per SKU.
func parseReplenishment(r io.Reader) (map[string]SKUPolicy, error) {
	out := map[string]SKUPolicy{}
	err := eachSKURow(r, []string{"lead_time_days"}, []string{"target_days"}, func(line int, sku string, field func(string) string) error {
		days := func(name string) (float64, error) {
			v, err := strconv.ParseFloat(field(name), 64)
			if err != nil || !(v >= 0) || math.IsInf(v, 0) {
				return 0, fmt.Errorf("line %d: %s %q must be a number of days >= 0", line, name, field(name))
			}
			return v, nil
		}
		var p SKUPolicy
		var err error
		if p.LeadTimeDays, err = days("lead_time_days"); err != nil {
			return err
		}
		if field("target_days") != "" {
			if p.TargetDays, err = days("target_days"); err != nil {
				return err
			}
		}
		out[sku] = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
