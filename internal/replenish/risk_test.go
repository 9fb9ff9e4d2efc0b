package replenish

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRisk_Next(t *testing.T) {
	type step struct {
		cover    float64
		received bool
		want     Transition
	}
	tests := []struct {
		name  string
		lead  float64
		steps []step
	}{
		{"raised once per crossing", 4, []step{{6, false, Hold}, {3.9, false, Raise}, {3, false, Hold}, {2, false, Hold}}},
		{"hysteresis: back above lead time is not enough", 4, []step{{3, false, Raise}, {4.5, false, Hold}, {3.5, false, Hold}, {4.99, false, Hold}, {5, false, Clear}, {4.5, false, Hold}, {3.9, false, Raise}}},
		{"clear needs at least a day above a short lead time", 1, []step{{0.5, false, Raise}, {1.5, false, Hold}, {2, false, Clear}}},
		{"a receive clears at the lead time", 4, []step{{3, false, Raise}, {4.2, true, Clear}, {4.1, false, Hold}, {3.8, false, Raise}}},
		{"a receive that leaves cover short keeps it raised", 4, []step{{1, false, Raise}, {2, true, Hold}, {6, false, Clear}}},
		{"no demand clears", 4, []step{{2, false, Raise}, {math.Inf(1), false, Clear}}},
		{"no lead time never raises", 0, []step{{0, false, Hold}, {0, true, Hold}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Risk
			for i, s := range tt.steps {
				var got Transition
				r, got = r.Next(Figures{LeadTimeDays: tt.lead, DaysOfCover: s.cover}, s.received)
				require.Equal(t, s.want, got, "step %d (cover %v): %s", i, s.cover, got)
				require.Equal(t, got == Raise || (got == Hold && r.Raised), r.Raised, "step %d", i)
			}
		})
	}
}
