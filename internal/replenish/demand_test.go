package replenish

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// start is a Monday, 00:00 UTC.
var start = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

func dayAt(i int) time.Time { return start.AddDate(0, 0, i) }

// feed observes series[i] units on day i (one event at noon), in day order,
// and returns the state; now is the start of the day after the series.
func feed(tb testing.TB, series []int64) (Demand, time.Time) {
	tb.Helper()
	var f Forecaster
	var d Demand
	now := dayAt(len(series))
	for i, q := range series {
		if q > 0 {
			require.True(tb, f.Observe(&d, dayAt(i).Add(12*time.Hour), now, q))
		}
	}
	return d, now
}

func seriesOf(days int, qty func(i int) int64) []int64 {
	out := make([]int64, days)
	for i := range out {
		out[i] = qty(i)
	}
	return out
}

func TestForecaster_KnownSeries(t *testing.T) {
	weekdayProfile := [7]float64{0.5, 1, 1, 1, 1, 1.5, 2} // Sunday first
	tests := []struct {
		name   string
		series []int64
		want   func(day int) float64 // expected demand of a future day number
		tol    float64               // relative
	}{
		{"constant", seriesOf(100, func(int) int64 { return 10 }), func(int) float64 { return 10 }, 0.01},
		{"none", make([]int64, 30), func(int) float64 { return 0 }, 0},
		{
			// The weekday factors are shrunk towards 1 by about 1/(1+events
			// on that weekday in the slow memory): ~5% here.
			"weekday seasonality",
			seriesOf(280, func(i int) int64 { return int64(20 * weekdayProfile[weekday(int64(i)+int64(dayAt(0).Unix()/86400))]) }),
			func(i int) float64 { return 20 * weekdayProfile[weekday(int64(i)+int64(dayAt(0).Unix()/86400))] },
			0.08,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, now := feed(t, tt.series)
			var f Forecaster
			for h := range 14 {
				got := f.Forecast(d, now, h)
				want := tt.want(len(tt.series) + h)
				require.InDelta(t, want, got, tt.tol*want+1e-9, "day +%d", h)
			}
		})
	}
}

// A linear trend is fitted exactly by discounted least squares: the level
// and slope are the line's, the forecast follows it with the damped trend.
func TestForecaster_Trend(t *testing.T) {
	series := seriesOf(120, func(i int) int64 { return 20 + int64(i) })
	d, now := feed(t, series)
	var f Forecaster
	m := f.fit(d, now)
	require.InEpsilon(t, 140, m.level, 0.02, "level at the anchor day")
	require.InEpsilon(t, 1, m.slope, 0.05, "slope per day")
	require.Equal(t, 1.0, m.wFast)
	want := 140 + trendDamping*(1-math.Pow(trendDamping, 3))/(1-trendDamping)
	require.InEpsilon(t, want, f.Forecast(d, now, 3), 0.02)
}

// An item that sells 5 units every 10th day: the estimate is 0.5 a day
// and barely moves between sales and at each sale.
func TestForecaster_IntermittentDoesNotJump(t *testing.T) {
	var f Forecaster
	var d Demand
	lo, hi := math.Inf(1), 0.0
	for i := range 300 {
		if i%10 == 3 {
			f.Observe(&d, dayAt(i).Add(10*time.Hour), dayAt(i).Add(10*time.Hour), 5)
		}
		if i >= 150 {
			fig, err := f.Figures(d, dayAt(i).Add(18*time.Hour), Stock{OnHand: 10, Available: 10}, Policy{LeadTimeDays: 7, TargetDays: 14, ServiceLevel: 0.95})
			require.NoError(t, err)
			lo, hi = min(lo, fig.DailyDemand), max(hi, fig.DailyDemand)
		}
	}
	require.InEpsilon(t, 0.5, (lo+hi)/2, 0.1)
	require.Less(t, hi/lo, 1.15, "daily demand ranged %.3f..%.3f", lo, hi)

	// Random intermittent demand: sells on 8% of days, 1-9 units.
	rng := rand.New(rand.NewPCG(1, 2))
	series := seriesOf(365, func(int) int64 {
		if rng.Float64() < 0.08 {
			return 1 + rng.Int64N(9)
		}
		return 0
	})
	var recent float64
	for _, q := range series[len(series)-182:] {
		recent += float64(q) / 182
	}
	d, now := feed(t, series)
	require.InEpsilon(t, recent, f.Forecast(d, now, 1), 0.25)
}

// A new item's first sale is spread over at least a week of history.
func TestForecaster_FirstSale(t *testing.T) {
	var f Forecaster
	var d Demand
	at := dayAt(0).Add(9 * time.Hour)
	f.Observe(&d, at, at, 10)
	fig, err := f.Figures(d, at, Stock{OnHand: 5, Available: 5}, Policy{LeadTimeDays: 2, TargetDays: 7, ServiceLevel: 0.9})
	require.NoError(t, err)
	require.InDelta(t, 10.0/7, fig.DailyDemand, 0.15)
}

// tHelper is what testing.T and rapid.T both are.
type tHelper interface {
	require.TestingT
	Helper()
}

type event struct {
	day int
	hr  int
	qty int64
}

func eventsGen() *rapid.Generator[[]event] {
	return rapid.SliceOfN(rapid.Custom(func(t *rapid.T) event {
		return event{
			day: rapid.IntRange(0, 150).Draw(t, "day"),
			hr:  rapid.IntRange(0, 23).Draw(t, "hour"),
			qty: rapid.Int64Range(1, 50).Draw(t, "qty"),
		}
	}), 1, 200)
}

func observeAll(tb tHelper, evs []event, now time.Time) Demand {
	tb.Helper()
	var f Forecaster
	var d Demand
	for _, e := range evs {
		require.True(tb, f.Observe(&d, dayAt(e.day).Add(time.Duration(e.hr)*time.Hour), now, e.qty))
	}
	return d
}

func requireSameState(tb tHelper, a, b Demand) {
	tb.Helper()
	require.Equal(tb, a.seen, b.seen)
	require.Equal(tb, a.first, b.first)
	require.Equal(tb, a.last, b.last)
	require.Equal(tb, a.ring, b.ring)
	as, bs := a.sums(), b.sums()
	for i := range as {
		require.InDelta(tb, *as[i], *bs[i], 1e-4*float64(max(*as[i], *bs[i]))+1e-6, "sum %d", i)
	}
}

// Backfilled history arriving in any order, interleaved with live events,
// gives the same state as the same events in time order.
func TestDemand_OrderIndependent(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		evs := eventsGen().Draw(t, "events")
		now := dayAt(151)
		inOrder := append([]event(nil), evs...)
		sortEvents(inOrder)
		perm := rapid.Permutation(evs).Draw(t, "arrival")
		requireSameState(t, observeAll(t, inOrder, now), observeAll(t, perm, now))
	})
}

func sortEvents(evs []event) {
	for i := 1; i < len(evs); i++ {
		for j := i; j > 0 && (evs[j].day < evs[j-1].day || evs[j].day == evs[j-1].day && evs[j].hr < evs[j-1].hr); j-- {
			evs[j], evs[j-1] = evs[j-1], evs[j]
		}
	}
}

// A year of history imported after live sales started (newest first, days
// repeated in several batches) ends where feeding it in order does, and
// its forecast is the in-order one.
func TestDemand_BackfillAfterLive(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var evs []event
	for day := range 360 {
		for range rng.IntN(6) {
			evs = append(evs, event{day: day, hr: rng.IntN(24), qty: 1 + rng.Int64N(4)})
		}
	}
	now := dayAt(360)
	var live, backfill []event
	for _, e := range evs {
		if e.day >= 350 {
			live = append(live, e)
		} else {
			backfill = append(backfill, e)
		}
	}
	// Backfill arrives newest day first, each day's events split over two
	// passes: the first half of every day, then the second.
	var late []event
	for pass := range 2 {
		for i := len(backfill) - 1; i >= 0; i-- {
			if (i%2 == 0) == (pass == 0) {
				late = append(late, backfill[i])
			}
		}
	}
	inOrder := observeAll(t, evs, now)
	mixed := observeAll(t, append(live, late...), now)
	requireSameState(t, inOrder, mixed)
	var f Forecaster
	for h := range 7 {
		require.InEpsilon(t, f.Forecast(inOrder, now, h), f.Forecast(mixed, now, h), 1e-4)
	}
}

// A day's demand split into several events moves the mean as one event of
// the day's total does.
func TestDemand_SplitDay(t *testing.T) {
	var f Forecaster
	var one, split Demand
	now := dayAt(60)
	for day := range 60 {
		at := dayAt(day).Add(8 * time.Hour)
		f.Observe(&one, at, now, 12)
		for k := range 4 {
			f.Observe(&split, at.Add(time.Duration(k)*time.Hour), now, 3)
		}
	}
	require.InEpsilon(t, f.fit(one, now).slowMean, f.fit(split, now).slowMean, 1e-5)
	require.InEpsilon(t, f.fit(one, now).level, f.fit(split, now).level, 1e-5)
}

func TestForecaster_Observe(t *testing.T) {
	now := dayAt(500).Add(10 * time.Hour)
	tests := []struct {
		name    string
		at      time.Time
		qty     int64
		counted bool
		day     int64
	}{
		{"now", now, 1, true, 500},
		{"zero qty", now, 0, false, 0},
		{"negative qty", now, -3, false, 0},
		{"future ts taken as now", now.Add(72 * time.Hour), 2, true, 500},
		{"older than MaxAgeDays", dayAt(500 - MaxAgeDays - 1), 2, false, 0},
		{"MaxAgeDays old", dayAt(500 - MaxAgeDays), 2, true, 500 - MaxAgeDays},
	}
	base := start.Unix() / 86400
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f Forecaster
			var d Demand
			require.Equal(t, tt.counted, f.Observe(&d, tt.at, now, tt.qty))
			require.Equal(t, tt.counted, d.Seen())
			if tt.counted {
				require.Equal(t, base+tt.day, int64(d.first))
			}
		})
	}
}

// Days are local days of the Forecaster's Location: a sale at 23:30 in
// Berlin (22:30 UTC) is on Monday there.
func TestForecaster_Location(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	at := time.Date(2026, 1, 5, 22, 30, 0, 0, time.UTC) // Monday 23:30 CET
	for _, tt := range []struct {
		loc  *time.Location
		want int
	}{{nil, 1}, {berlin, 1}, {time.FixedZone("UTC+2", 7200), 2}} {
		d, _ := Forecaster{Location: tt.loc}.day(at)
		require.Equal(t, tt.want, weekday(d), "location %v", tt.loc)
	}
}
