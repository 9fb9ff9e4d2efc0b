package replenish

import (
	"math"
	"time"
)

// model is a Demand read at one moment: what the figures and the forecasts
// are computed from. Building one costs a few hundred multiplications.
type model struct {
	anchor   int64   // the day now falls in (or the newest day seen, if later)
	frac     float64 // fraction of the anchor day elapsed
	level    float64 // deseasonalised daily demand at anchor, fast memory
	slope    float64 // its change per day (already scaled by trust)
	slowMean float64 // mean daily demand over the slow memory
	wFast    float64 // weight of the fast estimate against slowMean
	season   [7]float64
	variance float64 // variance of one day's demand around its forecast
}

// fit reads d at now.
func (f Forecaster) fit(d Demand, now time.Time) model {
	var m model
	for w := range m.season {
		m.season[w] = 1
	}
	today, frac := f.day(now)
	m.anchor, m.frac = today, frac
	if !d.seen {
		return m
	}
	if m.anchor <= int64(d.last) {
		m.anchor, m.frac = int64(d.last), 1
	}
	f0, f1, s0, events, squares := d.shifted(m.anchor - int64(d.last))
	span := m.anchor - int64(d.first) // ages 0..span hold history
	// dayWeight is the weight of the day of age a: the anchor day counts
	// only for its elapsed fraction.
	dayWeight := func(a int64) float64 {
		if a == 0 {
			return m.frac
		}
		return 1
	}

	// Slow weights per weekday, Σ δs^a over the history's days of that
	// weekday, in closed form (geometric series of step 7).
	var slowW [7]float64
	d7 := math.Pow(decaySlow, 7)
	for a0 := range int64(7) {
		if a0 > span {
			break
		}
		k := (span-a0)/7 + 1
		sum := math.Pow(decaySlow, float64(a0)) * (1 - math.Pow(d7, float64(k))) / (1 - d7)
		if a0 == 0 {
			sum -= 1 - m.frac
		}
		slowW[weekday(m.anchor-a0)] += sum
	}
	var slowTotal, slowWSum float64
	for w := range 7 {
		slowTotal += float64(s0[w])
		slowWSum += slowW[w]
	}
	minSlowW := (1 - math.Pow(decaySlow, minHistoryDays)) / (1 - decaySlow)
	m.slowMean = slowTotal / max(slowWSum, minSlowW)

	// Weekday profile: each weekday's mean over the overall mean, shrunk
	// towards 1 by how many demand events back it, normalised to mean 1.
	if slowTotal > 0 && slowWSum > 0 {
		overall := slowTotal / slowWSum
		var sum float64
		for w := range 7 {
			if slowW[w] > 0 {
				raw := float64(s0[w]) / slowW[w] / overall
				n := float64(events) * slowW[w] / slowWSum
				r := n / (n + seasonPriorEvents)
				m.season[w] = 1 + r*(raw-1)
			}
			sum += m.season[w]
		}
		for w := range 7 {
			m.season[w] *= 7 / sum
		}
	}

	// Fast level and trend: discounted least squares of y_d ≈ s_w·(A − B·a)
	// with weights δf^a/s_w (variance proportional to the mean, as for
	// counts): the normal equations need only the raw sums, and a weekday
	// that never sells simply carries no weight.
	var y0, y1 float64
	for w := range 7 {
		y0 += float64(f0[w])
		y1 += float64(f1[w])
	}
	var w0, w1, w2 float64
	wa := 1.0
	for a := int64(0); a <= min(span, fastWeightDays); a++ {
		x := wa * dayWeight(a) * m.season[weekday(m.anchor-a)]
		w0 += x
		w1 += x * float64(a)
		w2 += x * float64(a) * float64(a)
		wa *= decayFast
	}
	minFastW := (1 - math.Pow(decayFast, minHistoryDays)) / (1 - decayFast)
	det := w0*w2 - w1*w1
	trust := min(max(float64(span-trendMinDays)/(trendFullDays-trendMinDays), 0), 1)
	if trust > 0 && det > 1e-9*w0*w2 {
		m.level = (y0*w2 - w1*y1) / det
		m.slope = trust * (w1*y0 - w0*y1) / det
	} else {
		m.level = y0 / max(w0, minFastW)
	}

	// Intermittent items (few demand events within the fast memory) use the
	// slow mean: a window measured in demand events, as Croston's method
	// has, rather than in days.
	eventsPerDay := float64(events) / max(slowWSum, minSlowW)
	expected := eventsPerDay / (1 - decayFast)
	m.wFast = min(max((expected-intermittentEvents)/(smoothEvents-intermittentEvents), 0), 1)

	// Variance of a day's demand: the compound-Poisson figure (rate × mean
	// squared size) as a prior, updated with the residuals of the complete
	// days kept exactly in the ring.
	poisson := float64(squares) / max(slowWSum, minSlowW)
	var rss float64
	var n int
	for a := int64(1); a < WindowDays; a++ {
		day := m.anchor - a
		if day < int64(d.first) {
			break
		}
		var y float64
		if day <= int64(d.last) && int64(d.last)-day < WindowDays {
			y = float64(d.ring[ringSlot(day)])
		}
		r := y - m.fitted(-a)
		rss += r * r
		n++
	}
	m.variance = (rss + variancePriorDays*poisson) / (float64(n) + variancePriorDays)
	return m
}

// fitted is the expected demand of the day h days after the anchor (h < 0:
// in the past, the straight fit; h > 0: the damped trend).
func (m model) fitted(h int64) float64 {
	var trend float64
	if h <= 0 {
		trend = m.slope * float64(h)
	} else {
		// φ + φ² + … + φ^h
		trend = m.slope * trendDamping * (1 - math.Pow(trendDamping, float64(h))) / (1 - trendDamping)
	}
	level := m.wFast*(m.level+trend) + (1-m.wFast)*m.slowMean
	return max(0, level*m.season[weekday(m.anchor+h)])
}

// demandWithin is the expected demand from now over the next days days
// (fractional), starting with the rest of today.
func (m model) demandWithin(days float64) float64 {
	var total float64
	left := days
	for h := int64(0); left > 0 && h <= coverHorizonDays; h++ {
		span := 1.0
		if h == 0 {
			span = 1 - m.frac
		}
		take := min(span, left)
		total += m.fitted(h) * take
		left -= take
	}
	if left > 0 {
		total += left * m.weekMean(coverHorizonDays)
	}
	return total
}

// weekMean is the mean expected daily demand over the 7 days ending h days
// after the anchor.
func (m model) weekMean(h int64) float64 {
	var sum float64
	for i := h - 6; i <= h; i++ {
		sum += m.fitted(i)
	}
	return sum / 7
}

// cover is how many days from now the stock lasts (+Inf when no demand is
// ever expected).
func (m model) cover(stock float64) float64 {
	if stock <= 0 {
		return 0
	}
	var used, days float64
	for h := int64(0); h <= coverHorizonDays; h++ {
		span := 1.0
		if h == 0 {
			span = 1 - m.frac
		}
		rate := m.fitted(h)
		if need := stock - used; rate*span >= need {
			return days + need/rate
		}
		used += rate * span
		days += span
	}
	rate := m.weekMean(coverHorizonDays)
	if rate <= 0 {
		return math.Inf(1)
	}
	return days + (stock-used)/rate
}

// Forecast returns the expected demand of the local day h days after now's
// day (h = 0: all of today, including what already sold).
func (f Forecaster) Forecast(d Demand, now time.Time, h int) float64 {
	m := f.fit(d, now)
	today, _ := f.day(now)
	return m.fitted(today + int64(h) - m.anchor)
}
