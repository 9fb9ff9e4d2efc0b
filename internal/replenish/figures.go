package replenish

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Stock is what a warehouse holds of one sku when the figures are asked for.
type Stock struct {
	OnHand    int64 // may be negative: facts are never refused (SPEC §9)
	Available int64 // what new demand can still take: on_hand less holds and safety
}

// Policy is one sku's replenishment settings (replenishment.csv and its
// config defaults).
type Policy struct {
	LeadTimeDays float64 // from ordering to the goods being received, ≥ 0
	TargetDays   float64 // an order tops stock up to this many days of demand (at least the lead time)
	ServiceLevel float64 // probability of no stockout within a lead time, 0.5 ≤ x < 1
}

// ErrBadPolicy is wrapped by Figures when a Policy field is out of range.
var ErrBadPolicy = errors.New("replenish: bad policy")

// Validate names the first field out of range.
func (p Policy) Validate() error {
	switch {
	case !(p.LeadTimeDays >= 0) || math.IsInf(p.LeadTimeDays, 0):
		return fmt.Errorf("%w: lead_time_days %v: must be a finite number of days ≥ 0", ErrBadPolicy, p.LeadTimeDays)
	case !(p.TargetDays >= 0) || math.IsInf(p.TargetDays, 0):
		return fmt.Errorf("%w: target_days %v: must be a finite number of days ≥ 0", ErrBadPolicy, p.TargetDays)
	case !(p.ServiceLevel >= 0.5 && p.ServiceLevel < 1):
		return fmt.Errorf("%w: service level %v: must be at least 0.5 and below 1 (e.g. 0.95)", ErrBadPolicy, p.ServiceLevel)
	}
	return nil
}

// Figures are the replenishment figures of SPEC §12 for one sku.
type Figures struct {
	// DailyDemand is the mean expected demand per day over the next 7 days
	// (a whole week, so it does not depend on the weekday asked on).
	DailyDemand float64
	// DaysOfCover is how long the stock position lasts at the expected
	// demand: 0 when there is none, +Inf when no demand is expected.
	DaysOfCover float64
	// StockoutAt is now + DaysOfCover; the zero time when DaysOfCover is
	// +Inf.
	StockoutAt time.Time
	// LeadTimeDays is the policy's, echoed for the caller's item.
	LeadTimeDays float64
	// LeadTimeDemand is the expected demand from now over the lead time.
	LeadTimeDemand float64
	// SafetyStock is z(service level) × the standard deviation of the lead
	// time's demand.
	SafetyStock float64
	// ReorderPoint is LeadTimeDemand + SafetyStock: order when the stock
	// position is at or below it.
	ReorderPoint float64
	// SuggestedQty is what to order now: 0 above the reorder point, else
	// enough to reach the expected demand over max(target, lead time) days
	// plus the safety stock (a negative position is made good too).
	SuggestedQty int64
}

// Figures computes the replenishment figures of d at now for stock under
// policy. The stock position is min(available, on_hand): holds are demand
// already promised, and a negative on_hand is owed to the next receipt.
func (f Forecaster) Figures(d Demand, now time.Time, stock Stock, policy Policy) (Figures, error) {
	if err := policy.Validate(); err != nil {
		return Figures{}, err
	}
	m := f.fit(d, now)
	position := float64(min(stock.Available, stock.OnHand))
	fig := Figures{LeadTimeDays: policy.LeadTimeDays}
	for h := int64(1); h <= 7; h++ {
		fig.DailyDemand += m.fitted(h) / 7
	}
	fig.DaysOfCover = m.cover(position)
	if !math.IsInf(fig.DaysOfCover, 1) {
		fig.StockoutAt = now.Add(time.Duration(min(fig.DaysOfCover*float64(24*time.Hour), float64(math.MaxInt64/2))))
	}
	fig.LeadTimeDemand = m.demandWithin(policy.LeadTimeDays)
	z := math.Sqrt2 * math.Erfinv(2*policy.ServiceLevel-1)
	fig.SafetyStock = z * math.Sqrt(m.variance*policy.LeadTimeDays)
	fig.ReorderPoint = fig.LeadTimeDemand + fig.SafetyStock
	if position <= fig.ReorderPoint {
		upTo := m.demandWithin(max(policy.TargetDays, policy.LeadTimeDays)) + fig.SafetyStock
		if need := upTo - position; need > 0 {
			fig.SuggestedQty = int64(math.Ceil(need - 1e-9))
		}
	}
	return fig, nil
}
