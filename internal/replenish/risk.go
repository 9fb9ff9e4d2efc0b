package replenish

// Transition is what a Risk evaluation asks the caller to publish.
type Transition int8

const (
	// Hold: nothing to publish.
	Hold Transition = iota
	// Raise: publish stockout_risk.
	Raise
	// Clear: publish that the risk is over.
	Clear
)

func (t Transition) String() string {
	switch t {
	case Raise:
		return "raise"
	case Clear:
		return "clear"
	}
	return "hold"
}

// The hysteresis of stockout_risk: a raised alert clears on its own only
// once days of cover reach lead time × (1 + ClearMargin), and at least
// ClearMinDays above the lead time, so a forecast that wobbles around the
// lead time does not raise it again and again.
const (
	ClearMargin  = 0.25
	ClearMinDays = 1.0
)

// Risk is the stockout_risk alert state of one (warehouse, sku); the caller
// keeps it (the zero value: not raised) and feeds each new Figures to Next.
type Risk struct {
	Raised bool
}

// Next returns the state after fig and the transition to publish. received
// says a receive event arrived since the previous evaluation.
//
// The alert is raised once when days of cover drops below the lead time. It
// clears when cover reaches the hysteresis threshold, or at once on a
// receive that lifts cover back to the lead time. A receive that leaves
// cover below the lead time does not clear it: the risk is still there, and
// clearing would either raise it again at the next evaluation (with no
// crossing in between) or leave a real risk silent.
func (r Risk) Next(fig Figures, received bool) (Risk, Transition) {
	lead, cover := fig.LeadTimeDays, fig.DaysOfCover
	if !r.Raised {
		if lead > 0 && cover < lead {
			return Risk{Raised: true}, Raise
		}
		return r, Hold
	}
	clearAt := max(lead*(1+ClearMargin), lead+ClearMinDays)
	if cover >= clearAt || (received && cover >= lead) {
		return Risk{}, Clear
	}
	return r, Hold
}
