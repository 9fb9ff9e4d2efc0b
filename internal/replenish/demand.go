package replenish

import (
	"math"
	"time"
)

// The estimator's constants. They are part of the persisted state's meaning:
// a Demand encoded under one set must not be read under another, so they are
// constants, not configuration (docs/REPLENISHMENT.md says how they were
// chosen).
const (
	// WindowDays is how many recent days keep their exact daily totals. An
	// event up to WindowDays-1 days older than the newest one still lands in
	// its own day's total; an older one (backfill) still counts fully in the
	// weighted sums, which are exact in any order, but not in the residual
	// variance.
	WindowDays = 28

	// HalfLifeFastDays is the memory of the level and trend of items that
	// sell often: a day's demand weighs half as much 14 days later.
	HalfLifeFastDays = 14
	// HalfLifeSlowDays is the memory of the weekday profile, of the demand
	// frequency and size, and of the level of intermittent items.
	HalfLifeSlowDays = 91

	// MaxAgeDays bounds how old an event may be (relative to the time it is
	// observed) and still count: a device whose clock reset to 1970 must not
	// stretch an item's history over decades of zero demand.
	MaxAgeDays = 400

	// minHistoryDays is the history a new item is assumed to have at least:
	// its first sale of 10 units is 10/7 a day, not 10 per elapsed hour.
	minHistoryDays = 7
	// trendFullDays: the trend is trusted fully once the history spans this
	// many days, not at all below trendMinDays, linearly in between.
	trendMinDays  = 14
	trendFullDays = 42
	// trendDamping is φ of the damped trend: h days ahead the trend adds
	// slope·(φ+φ²+…+φ^h), at most slope·φ/(1−φ) = 9 days of slope.
	trendDamping = 0.9
	// Demand events expected within the fast memory below which an item is
	// intermittent (the slow estimate only) and above which it is smooth (the
	// fast one only); linear blend in between.
	intermittentEvents = 5
	smoothEvents       = 20
	// seasonPriorEvents shrinks a weekday's factor towards 1 until about
	// this many demand events fell on that weekday (within the slow memory).
	seasonPriorEvents = 1
	// variancePriorDays weighs the compound-Poisson variance against the
	// residual variance of the last WindowDays days, in days.
	variancePriorDays = 7
	// coverHorizonDays bounds the day-by-day walk of DaysOfCover; beyond it
	// the last week's mean rate is extrapolated.
	coverHorizonDays = 730
	// fastWeightDays bounds the loop over past days for the fast weights:
	// δ^a < 1e-9 beyond it.
	fastWeightDays = 30 * HalfLifeFastDays
)

var (
	decayFast = math.Exp2(-1.0 / HalfLifeFastDays)
	decaySlow = math.Exp2(-1.0 / HalfLifeSlowDays)
)

// Demand is the learned demand of one (warehouse, sku): fixed size (216
// bytes in memory, about 125 encoded, at most 243) whatever the history. The zero
// value is an item with no demand seen yet.
//
// All sums are exponentially weighted by age relative to the newest day
// seen, and sums of that kind do not depend on the order in which their terms
// arrive: feeding the same events in any order, split into any number of
// events per day, gives the same state up to float rounding.
type Demand struct {
	seen        bool
	first, last int32 // oldest and newest local day with demand (days since 1970-01-01)

	// ring holds the exact total of each of the WindowDays days up to last,
	// at index day mod WindowDays. It feeds the residual variance.
	ring [WindowDays]uint32

	// Per weekday (0 = Sunday): Σ q·δf^a and Σ q·a·δf^a over events of age a
	// days at the fast decay (level and trend), Σ q·δs^a at the slow decay
	// (weekday profile, intermittent level).
	fast0, fast1, slow0 [7]float32
	// events is Σ δs^a per demand event (how often it sells), squares is
	// Σ q²·δs^a (the compound-Poisson variance of daily demand).
	events, squares float32
}

// Forecaster learns and reads Demand states on one calendar. Days, and so
// weekdays, are local days of Location (UTC when nil); keep it fixed for the
// life of the persisted states. The zero value uses UTC.
type Forecaster struct {
	Location *time.Location
}

func (f Forecaster) loc() *time.Location {
	if f.Location == nil {
		return time.UTC
	}
	return f.Location
}

// day returns t's local day number (days since 1970-01-01) and the fraction
// of that day elapsed at t.
func (f Forecaster) day(t time.Time) (int64, float64) {
	lt := t.In(f.loc())
	y, m, d := lt.Date()
	n := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
	start := time.Date(y, m, d, 0, 0, 0, 0, f.loc())
	end := time.Date(y, m, d+1, 0, 0, 0, 0, f.loc())
	frac := float64(lt.Sub(start)) / float64(end.Sub(start))
	return n, min(max(frac, 0), 1)
}

// weekday of a day number: 1970-01-01 was a Thursday (4).
func weekday(day int64) int { return int(((day+4)%7 + 7) % 7) }

func ringSlot(day int64) int { return int(((day % WindowDays) + WindowDays) % WindowDays) }

// Observe counts qty units of demand (a sale or a pick) that happened at at,
// observed at now (the ingest time). An event time after now is taken as now
// (a device clock ahead must not age the history); pass now as at when the
// event has no time. It reports whether the event counted: qty ≤ 0, an
// event more than MaxAgeDays before now, or a day outside the int32 range do
// not.
func (f Forecaster) Observe(d *Demand, at, now time.Time, qty int64) bool {
	if qty <= 0 {
		return false
	}
	if at.After(now) {
		at = now
	}
	day, _ := f.day(at)
	today, _ := f.day(now)
	if today-day > MaxAgeDays || day < math.MinInt32 || day > math.MaxInt32 {
		return false
	}
	if !d.seen {
		*d = Demand{seen: true, first: int32(day), last: int32(day)}
	}
	if day > int64(d.last) {
		d.advance(day - int64(d.last))
	}
	d.first = int32(min(int64(d.first), day))
	age := int64(d.last) - day
	q := float64(qty)
	wf := math.Pow(decayFast, float64(age))
	ws := math.Pow(decaySlow, float64(age))
	w := weekday(day)
	add(&d.fast0[w], q*wf)
	add(&d.fast1[w], q*float64(age)*wf)
	add(&d.slow0[w], q*ws)
	add(&d.events, ws)
	add(&d.squares, q*q*ws)
	if age < WindowDays {
		s := ringSlot(day)
		d.ring[s] = uint32(min(uint64(d.ring[s])+uint64(qty), math.MaxUint32))
	}
	return true
}

// add adds x to *sum, saturating below +Inf so that every state encodes.
func add(sum *float32, x float64) {
	*sum = float32(min(float64(*sum)+x, math.MaxFloat32))
}

// advance moves the newest day forward by n > 0 days: every weight ages.
func (d *Demand) advance(n int64) {
	d.fast0, d.fast1, d.slow0, d.events, d.squares = d.shifted(n)
	for i := int64(1); i <= min(n, WindowDays); i++ {
		d.ring[ringSlot(int64(d.last)+i)] = 0
	}
	d.last = int32(int64(d.last) + n)
}

// shifted returns the sums as they are n ≥ 0 days after last, without
// changing d.
func (d *Demand) shifted(n int64) (f0, f1, s0 [7]float32, events, squares float32) {
	df := math.Pow(decayFast, float64(n))
	ds := math.Pow(decaySlow, float64(n))
	for w := range 7 {
		f0[w] = float32(df * float64(d.fast0[w]))
		f1[w] = float32(df * (float64(d.fast1[w]) + float64(n)*float64(d.fast0[w])))
		s0[w] = float32(ds * float64(d.slow0[w]))
	}
	return f0, f1, s0, float32(ds * float64(d.events)), float32(ds * float64(d.squares))
}

// Seen reports whether any demand was ever observed.
func (d Demand) Seen() bool { return d.seen }
