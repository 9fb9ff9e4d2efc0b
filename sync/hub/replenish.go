package hub

import (
	"context"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	stdsync "sync"
	"time"

	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/internal/httpjson"
	"github.com/edgestock/edgestock/sync"
)

// TotalWarehouse names the item of every warehouse's total in the hub's
// GET /v1/replenishment: "*" is no warehouse ID.
const TotalWarehouse = "*"

// Replenishment is the hub's GET /v1/replenishment answer.
type Replenishment struct {
	sync.ReplenishmentPage
	// Unavailable lists the warehouses that could not be asked: their
	// SKUs' totals leave them out.
	Unavailable []UnavailableWarehouse `json:"unavailable"`
}

// UnavailableWarehouse is an agent the hub could not ask, and why.
type UnavailableWarehouse struct {
	Warehouse string `json:"warehouse"`
	Error     string `json:"error"`
}

// Replenishment figures come from each agent, which learns its own demand
// from its event log (the hub sees merged counters, not the sales' times).
// This bounds the wait for one.
const replenishTimeout = 10 * time.Second

// Replenishment asks the agents of warehouses (every agent when empty)
// for a page of their replenishment figures after the SKU after, and
// gathers them: per SKU each warehouse's item and their total, for at
// most limit SKUs, in SKU order. A finite below keeps the SKUs whose
// total or any warehouse's cover is below it (+Inf: all).
func (h *Hub) Replenishment(ctx context.Context, warehouses []string, sku, prefix, after string, limit int, below float64) Replenishment {
	links := h.linkList()
	if len(warehouses) > 0 {
		links = slices.DeleteFunc(slices.Clone(links), func(l *link) bool { return !slices.Contains(warehouses, l.Warehouse) })
	}
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	for k, v := range map[string]string{"sku": sku, "prefix": prefix, "after": after} {
		if v != "" {
			q.Set(k, v)
		}
	}
	type answer struct {
		page sync.ReplenishmentPage
		err  error
	}
	answers := make([]answer, len(links))
	var wg stdsync.WaitGroup
	for i, l := range links {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, replenishTimeout)
			defer cancel()
			answers[i].err = l.get(ctx, "/v1/replenishment?"+q.Encode(), &answers[i].page)
		})
	}
	wg.Wait()

	out := Replenishment{Unavailable: []UnavailableWarehouse{}}
	out.Items = []sync.ReplenishmentItem{}
	bySKU := map[string][]sync.ReplenishmentItem{}
	cut := "" // past the end of a warehouse's full page, its SKUs are unknown
	for i, a := range answers {
		if a.err != nil {
			out.Unavailable = append(out.Unavailable, UnavailableWarehouse{Warehouse: links[i].Warehouse, Error: a.err.Error()})
			continue
		}
		if a.page.Next != "" && (cut == "" || a.page.Next < cut) {
			cut = a.page.Next
		}
		for _, it := range a.page.Items {
			bySKU[it.SKU] = append(bySKU[it.SKU], it)
		}
	}
	skus := make([]string, 0, len(bySKU))
	for s := range bySKU {
		if cut == "" || s <= cut {
			skus = append(skus, s)
		}
	}
	slices.Sort(skus)
	if len(skus) > limit {
		skus, cut = skus[:limit], skus[limit-1]
	}
	for _, s := range skus {
		items := bySKU[s]
		slices.SortFunc(items, func(a, b sync.ReplenishmentItem) int { return strings.Compare(a.Warehouse, b.Warehouse) })
		total := totalOf(s, items)
		if !math.IsInf(below, 1) && !total.Below(below) && !slices.ContainsFunc(items, func(it sync.ReplenishmentItem) bool { return it.Below(below) }) {
			continue
		}
		out.Items = append(out.Items, items...)
		out.Items = append(out.Items, total)
	}
	out.Next = cut
	return out
}

// totalOf sums a SKU's items: stock, demand and suggestions add up; days
// of cover is the total position over the total daily demand.
func totalOf(sku string, items []sync.ReplenishmentItem) sync.ReplenishmentItem {
	t := sync.ReplenishmentItem{SKU: sku, Warehouse: TotalWarehouse}
	position := int64(0)
	var soonest *time.Time
	for _, it := range items {
		t.OnHand += it.OnHand
		t.Available += it.Available
		position += min(it.Available, it.OnHand)
		t.DailyDemand += it.DailyDemand
		t.SafetyStock += it.SafetyStock
		t.ReorderPoint += it.ReorderPoint
		t.SuggestedQty += it.SuggestedQty
		t.LeadTimeDays = max(t.LeadTimeDays, it.LeadTimeDays)
		t.TargetDays = max(t.TargetDays, it.TargetDays)
		t.AtRisk = t.AtRisk || it.AtRisk
		if it.StockoutAt != nil && (soonest == nil || it.StockoutAt.Before(*soonest)) {
			soonest = it.StockoutAt
		}
	}
	t.DailyDemand = math.Round(t.DailyDemand*1000) / 1000
	if t.DailyDemand > 0 {
		cover := math.Round(max(float64(position), 0)/t.DailyDemand*1000) / 1000
		t.DaysOfCover = &cover
		t.StockoutAt = soonest // the first warehouse to run out
	}
	return t
}

// handleReplenishment is GET /v1/replenishment at the hub: each
// warehouse's figures, asked of its agent, and their total per SKU.
func (a *API) handleReplenishment(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := httpjson.QueryInt(r, "limit", 100, 1, 1000)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_query", "%v", err)
		return
	}
	below, err := sync.BelowDays(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_query", "%v", err)
		return
	}
	for _, wh := range q["warehouse"] {
		if !a.Hub.Knows(wh) {
			writeError(w, http.StatusBadRequest, "bad_query", "warehouse: %q is not one of this hub's agents", wh)
			return
		}
	}
	if s := q.Get("sku"); s != "" && !drivers.ValidID(s) {
		writeError(w, http.StatusBadRequest, "bad_query", "sku: %q is not a SKU", s)
		return
	}
	writeJSON(w, http.StatusOK, a.Hub.Replenishment(r.Context(), q["warehouse"], q.Get("sku"), q.Get("prefix"), q.Get("after"), int(limit), below))
}
