package sync

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"time"
)

// ReplenishmentItem is one SKU of GET /v1/replenishment (SPEC §12), as an
// agent serves it and the hub gathers it.
type ReplenishmentItem struct {
	SKU          string     `json:"sku"`
	Warehouse    string     `json:"warehouse"` // at the hub, "*" for the total of every warehouse
	OnHand       int64      `json:"on_hand"`
	Available    int64      `json:"available"`
	DailyDemand  float64    `json:"daily_demand"`
	DaysOfCover  *float64   `json:"days_of_cover"` // null: no demand expected
	StockoutAt   *time.Time `json:"stockout_at"`   // null: no demand expected
	LeadTimeDays float64    `json:"lead_time_days"`
	TargetDays   float64    `json:"target_days"`
	SafetyStock  float64    `json:"safety_stock"`
	ReorderPoint float64    `json:"reorder_point"`
	SuggestedQty int64      `json:"suggested_qty"`
	AtRisk       bool       `json:"at_risk"` // a stockout_risk alert is raised
}

// ReplenishmentPage is the body of GET /v1/replenishment.
type ReplenishmentPage struct {
	Items []ReplenishmentItem `json:"items"`
	Next  string              `json:"next"` // "" at the end; else pass as ?after=
}

// Below reports whether the item's days of cover are below days.
func (it ReplenishmentItem) Below(days float64) bool {
	return it.DaysOfCover != nil && *it.DaysOfCover < days
}

// BelowDays reads ?below-days= of GET /v1/replenishment: +Inf (no filter)
// when absent.
func BelowDays(q url.Values) (float64, error) {
	s := q.Get("below-days")
	if s == "" {
		return math.Inf(1), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v >= 0) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("below-days: %q must be a number of days >= 0", s)
	}
	return v, nil
}
