package replenish

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestForecaster_Figures(t *testing.T) {
	constant, now := feed(t, seriesOf(100, func(int) int64 { return 10 }))
	policy := Policy{LeadTimeDays: 3, TargetDays: 14, ServiceLevel: 0.5} // z = 0: no safety stock
	tests := []struct {
		name        string
		demand      Demand
		stock       Stock
		policy      Policy
		daily       float64
		cover       float64 // +Inf: none expected
		rop         float64
		suggested   int64
		stockoutNow bool
	}{
		{"above reorder point", constant, Stock{OnHand: 100, Available: 100}, policy, 10, 10, 30, 0, false},
		{"below reorder point: up to target", constant, Stock{OnHand: 25, Available: 25}, policy, 10, 2.5, 30, 115, false},
		{"holds count against cover", constant, Stock{OnHand: 100, Available: 25}, policy, 10, 2.5, 30, 115, false},
		{"target below lead time: up to lead time", constant, Stock{OnHand: 5, Available: 5}, Policy{LeadTimeDays: 3, TargetDays: 1, ServiceLevel: 0.5}, 10, 0.5, 30, 25, false},
		{"zero stock", constant, Stock{}, policy, 10, 0, 30, 140, true},
		{"negative stock is owed too", constant, Stock{OnHand: -7, Available: 0}, policy, 10, 0, 30, 147, true},
		{"no demand yet", Demand{}, Stock{OnHand: 5, Available: 5}, policy, 0, math.Inf(1), 0, 0, false},
		{"no demand, no stock", Demand{}, Stock{}, policy, 0, 0, 0, 0, true},
	}
	var f Forecaster
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fig, err := f.Figures(tt.demand, now, tt.stock, tt.policy)
			require.NoError(t, err)
			require.InDelta(t, tt.daily, fig.DailyDemand, 0.01*tt.daily+1e-9)
			if math.IsInf(tt.cover, 1) {
				require.True(t, math.IsInf(fig.DaysOfCover, 1))
				require.True(t, fig.StockoutAt.IsZero())
			} else {
				require.InDelta(t, tt.cover, fig.DaysOfCover, 0.01*tt.cover+1e-9)
				require.WithinDuration(t, now.Add(time.Duration(tt.cover*float64(24*time.Hour))), fig.StockoutAt, time.Hour)
			}
			if tt.stockoutNow {
				require.Equal(t, now, fig.StockoutAt)
			}
			require.InDelta(t, tt.rop, fig.ReorderPoint, 0.01*tt.rop+1e-9)
			require.InDelta(t, tt.suggested, fig.SuggestedQty, 0.02*float64(tt.suggested)+1)
			require.Equal(t, tt.policy.LeadTimeDays, fig.LeadTimeDays)
		})
	}
}

// Safety stock grows with the service level and with demand variability.
func TestForecaster_SafetyStock(t *testing.T) {
	var f Forecaster
	steady, now := feed(t, seriesOf(120, func(int) int64 { return 10 }))
	noisy, _ := feed(t, seriesOf(120, func(i int) int64 { return int64(10 + 8*((i*7919)%3-1)) }))
	stock := Stock{OnHand: 50, Available: 50}
	var last float64
	for _, sl := range []float64{0.5, 0.9, 0.99} {
		fig, err := f.Figures(steady, now, stock, Policy{LeadTimeDays: 4, TargetDays: 10, ServiceLevel: sl})
		require.NoError(t, err)
		require.GreaterOrEqual(t, fig.SafetyStock, last)
		last = fig.SafetyStock
		noisyFig, err := f.Figures(noisy, now, stock, Policy{LeadTimeDays: 4, TargetDays: 10, ServiceLevel: sl})
		require.NoError(t, err)
		if sl > 0.5 {
			require.Greater(t, noisyFig.SafetyStock, fig.SafetyStock, "service level %v", sl)
		}
	}
	require.Greater(t, last, 0.0)
}

func TestPolicy_Validate(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		field  string
	}{
		{"ok", Policy{LeadTimeDays: 3, TargetDays: 14, ServiceLevel: 0.95}, ""},
		{"negative lead time", Policy{LeadTimeDays: -1, TargetDays: 14, ServiceLevel: 0.95}, "lead_time_days"},
		{"NaN lead time", Policy{LeadTimeDays: math.NaN(), TargetDays: 14, ServiceLevel: 0.95}, "lead_time_days"},
		{"infinite target", Policy{LeadTimeDays: 3, TargetDays: math.Inf(1), ServiceLevel: 0.95}, "target_days"},
		{"service level 1", Policy{LeadTimeDays: 3, TargetDays: 14, ServiceLevel: 1}, "service level"},
		{"service level 0.3", Policy{LeadTimeDays: 3, TargetDays: 14, ServiceLevel: 0.3}, "service level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Validate()
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrBadPolicy)
			require.ErrorContains(t, err, tt.field)
			_, err = Forecaster{}.Figures(Demand{}, start, Stock{}, tt.policy)
			require.ErrorIs(t, err, ErrBadPolicy)
		})
	}
}
