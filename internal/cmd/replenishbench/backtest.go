package main

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/edgestock/edgestock/internal/replenish"
)

// config sizes one backtest run.
type config struct {
	SKUs          int
	Days          int
	WarmupDays    int       // forecasts and inventory are scored after this
	Seed          uint64    // the whole run is a function of it
	ServiceLevels []float64 // one inventory simulation per level and policy
}

// sku is one synthetic item: daily demand is compound Poisson, customers a
// day ~ Poisson(rate × weekday × trend × promotion), units per customer
// 1 + Geometric.
type sku struct {
	rate      float64
	sizeP     float64 // P(one more unit) of the geometric basket size
	weekday   [7]float64
	growth    float64 // relative change over the year
	promos    [][2]int
	promoLift float64
	leadDays  int
	sales     []salesDay // the realised demand, events per day
}

type salesDay struct {
	events []sale
	total  int64
}

type sale struct {
	at  time.Duration // into the day
	qty int64
}

var epoch = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC) // a Monday

func dayStart(i int) time.Time { return epoch.AddDate(0, 0, i) }

// generate draws cfg.SKUs items and their demand for cfg.Days days.
func generate(cfg config) []sku {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	out := make([]sku, cfg.SKUs)
	for i := range out {
		s := &out[i]
		s.rate = math.Exp(math.Log(1.5) + 1.4*rng.NormFloat64()) // median 1.5 customers a day, 5%-95%: 0.15-15
		s.rate = min(s.rate, 200)
		s.sizeP = 0.5 * rng.Float64()
		var sum float64
		weekend := rng.Float64() < 0.4
		for w := range s.weekday {
			s.weekday[w] = math.Exp(0.25 * rng.NormFloat64())
			if weekend && (w == 0 || w == 6) {
				s.weekday[w] *= 1.8
			}
			sum += s.weekday[w]
		}
		for w := range s.weekday {
			s.weekday[w] *= 7 / sum
		}
		s.growth = -0.5 + 1.3*rng.Float64()
		s.promoLift = 2 + 2*rng.Float64()
		for range 1 + rng.IntN(4) {
			from := rng.IntN(cfg.Days)
			s.promos = append(s.promos, [2]int{from, from + 3 + rng.IntN(5)})
		}
		s.leadDays = 2 + rng.IntN(9)
		s.sales = make([]salesDay, cfg.Days)
		for d := range cfg.Days {
			mean := s.rate * s.weekday[int(dayStart(d).Weekday())] * (1 + s.growth*float64(d)/365)
			for _, p := range s.promos {
				if d >= p[0] && d < p[1] {
					mean *= s.promoLift
				}
			}
			for range poisson(rng, mean) {
				q := int64(1)
				for rng.Float64() < s.sizeP {
					q++
				}
				at := time.Duration(rng.Int64N(int64(24 * time.Hour)))
				s.sales[d].events = append(s.sales[d].events, sale{at: at, qty: q})
				s.sales[d].total += q
			}
		}
	}
	return out
}

func poisson(rng *rand.Rand, mean float64) int {
	if mean > 50 {
		return max(0, int(math.Round(mean+math.Sqrt(mean)*rng.NormFloat64())))
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// accuracy is the one-day-ahead forecast error of the estimator and of the
// naive "same day last week" forecast.
type accuracy struct {
	SKUs                 int     // scored (items with a non-zero MASE scale)
	MASE, NaiveMASE      float64 // mean over items
	SKUsBetter           int     // items where the estimator's MASE is lower
	WeekMASE, NaiveWeek7 float64 // the same for the next 7 days' total, naive = last 7 days
}

// inventory is one policy's result at one service level, over all items
// after the warm-up: units-days held per unit of demand (days of
// inventory), demand lost to stockouts, and item-days that ran out.
type inventory struct {
	ServiceLevel   float64
	InventoryDays  float64
	LostFraction   float64
	StockoutDays   int
	DemandUnits    int64
	AverageOnHand  float64
	OrdersPerSKU   float64
	NaiveInvDays   float64
	NaiveLost      float64
	NaiveStockouts int
	NaiveAvgOnHand float64
	NaiveOrders    float64
}

type report struct {
	Config    config
	Accuracy  accuracy
	Inventory []inventory
}

// run is the backtest: the estimator learns each item's sales as they
// happen; every morning it forecasts the day and the week and, per service
// level, a daily-review (s, S) policy orders from its figures. The naive
// policy orders with the same rule from last week's mean and the last 28
// days' standard deviation.
func run(cfg config) report {
	items := generate(cfg)
	rep := report{Config: cfg}
	var f replenish.Forecaster
	var maseSum, naiveSum, weekSum, naiveWeekSum float64
	states := make([][]replenish.Demand, len(items)) // state at each morning, for the policies
	for i := range items {
		s := &items[i]
		var d replenish.Demand
		states[i] = make([]replenish.Demand, cfg.Days)
		var absErr, naiveErr, weekErr, naiveWeekErr, scale, weekScale float64
		var n, nw, ns, nws int
		for day := range cfg.Days {
			now := dayStart(day)
			states[i][day] = d
			if day >= 7 && day < cfg.WarmupDays {
				scale += math.Abs(float64(s.sales[day].total - s.sales[day-7].total))
				ns++
			}
			if day >= 14 && day < cfg.WarmupDays {
				weekScale += math.Abs(float64(weekTotal(s, day) - weekTotal(s, day-7)))
				nws++
			}
			if day >= cfg.WarmupDays {
				y := float64(s.sales[day].total)
				absErr += math.Abs(f.Forecast(d, now, 0) - y)
				naiveErr += math.Abs(float64(s.sales[day-7].total) - y)
				n++
				if day+7 <= cfg.Days {
					var fw float64
					for h := range 7 {
						fw += f.Forecast(d, now, h)
					}
					yw := float64(weekTotal(s, day+7))
					weekErr += math.Abs(fw - yw)
					naiveWeekErr += math.Abs(float64(weekTotal(s, day)) - yw)
					nw++
				}
			}
			for _, e := range s.sales[day].events {
				at := now.Add(e.at)
				f.Observe(&d, at, at, e.qty)
			}
		}
		if scale == 0 || weekScale == 0 || n == 0 || nw == 0 {
			continue
		}
		scale /= float64(ns)
		weekScale /= float64(nws)
		rep.Accuracy.SKUs++
		m, nm := absErr/float64(n)/scale, naiveErr/float64(n)/scale
		maseSum += m
		naiveSum += nm
		if m < nm {
			rep.Accuracy.SKUsBetter++
		}
		weekSum += weekErr / float64(nw) / weekScale
		naiveWeekSum += naiveWeekErr / float64(nw) / weekScale
	}
	if k := float64(rep.Accuracy.SKUs); k > 0 {
		rep.Accuracy.MASE, rep.Accuracy.NaiveMASE = maseSum/k, naiveSum/k
		rep.Accuracy.WeekMASE, rep.Accuracy.NaiveWeek7 = weekSum/k, naiveWeekSum/k
	}
	for _, sl := range cfg.ServiceLevels {
		inv := inventory{ServiceLevel: sl}
		var ours, naive simResult
		for i := range items {
			ours.add(simulate(cfg, &items[i], sl, func(day int, position int64, p replenish.Policy) int64 {
				fig, err := f.Figures(states[i][day], dayStart(day), replenish.Stock{OnHand: position, Available: position}, p)
				if err != nil {
					panic(err)
				}
				return fig.SuggestedQty
			}))
			naive.add(simulate(cfg, &items[i], sl, naivePolicy(&items[i])))
		}
		inv.DemandUnits = ours.demand
		inv.InventoryDays, inv.LostFraction, inv.StockoutDays = ours.inventoryDays(), ours.lostFraction(), ours.stockoutDays
		inv.AverageOnHand, inv.OrdersPerSKU = ours.avgOnHand(len(items)), float64(ours.orders)/float64(len(items))
		inv.NaiveInvDays, inv.NaiveLost, inv.NaiveStockouts = naive.inventoryDays(), naive.lostFraction(), naive.stockoutDays
		inv.NaiveAvgOnHand, inv.NaiveOrders = naive.avgOnHand(len(items)), float64(naive.orders)/float64(len(items))
		rep.Inventory = append(rep.Inventory, inv)
	}
	return rep
}

// weekTotal is the demand of the 7 days before day.
func weekTotal(s *sku, day int) int64 {
	var t int64
	for d := day - 7; d < day; d++ {
		t += s.sales[d].total
	}
	return t
}

type simResult struct {
	onHandDays   float64 // Σ end-of-day on hand over the scored days
	days         int
	demand, lost int64
	stockoutDays int
	orders       int
}

func (r *simResult) add(o simResult) {
	r.onHandDays += o.onHandDays
	r.days += o.days
	r.demand += o.demand
	r.lost += o.lost
	r.stockoutDays += o.stockoutDays
	r.orders += o.orders
}

func (r simResult) inventoryDays() float64 {
	return r.onHandDays / float64(r.days) / (float64(r.demand) / float64(r.days))
}
func (r simResult) lostFraction() float64      { return float64(r.lost) / float64(r.demand) }
func (r simResult) avgOnHand(skus int) float64 { return r.onHandDays / float64(r.days) * float64(skus) }

// order returns what to order on the morning of day given the stock
// position (on hand plus on order).
type order func(day int, position int64, p replenish.Policy) int64

// simulate runs one item through the year: every morning orders arriving
// are received, then the policy may order (received lead days later), then
// the day's demand is served from stock, the rest lost.
func simulate(cfg config, s *sku, serviceLevel float64, policy order) simResult {
	var r simResult
	p := replenish.Policy{LeadTimeDays: float64(s.leadDays), TargetDays: float64(s.leadDays + 7), ServiceLevel: serviceLevel}
	arriving := make([]int64, cfg.Days+s.leadDays+1)
	var onHand, onOrder int64
	for day := range cfg.Days {
		onHand += arriving[day]
		onOrder -= arriving[day]
		if day >= cfg.WarmupDays/2 {
			if q := policy(day, onHand+onOrder, p); q > 0 {
				arriving[day+s.leadDays] += q
				onOrder += q
				if day >= cfg.WarmupDays {
					r.orders++
				}
			}
		}
		want := s.sales[day].total
		sold := min(want, onHand)
		onHand -= sold
		if day >= cfg.WarmupDays {
			r.demand += want
			r.lost += want - sold
			if want > sold {
				r.stockoutDays++
			}
			r.onHandDays += float64(onHand)
			r.days++
		}
	}
	return r
}

// naivePolicy orders with the (s, S) rule of replenish.Figures from the
// naive estimates: daily demand = the last 7 days' mean, its standard
// deviation = the last 28 days'.
func naivePolicy(s *sku) order {
	return func(day int, position int64, p replenish.Policy) int64 {
		var sum, sq float64
		n := min(day, 28)
		for d := day - n; d < day; d++ {
			x := float64(s.sales[d].total)
			sum += x
			sq += x * x
		}
		var week float64
		for d := day - min(day, 7); d < day; d++ {
			week += float64(s.sales[d].total)
		}
		daily := week / float64(max(min(day, 7), 1))
		mean := sum / float64(max(n, 1))
		sd := math.Sqrt(max(sq/float64(max(n, 1))-mean*mean, 0))
		z := math.Sqrt2 * math.Erfinv(2*p.ServiceLevel-1)
		safety := z * sd * math.Sqrt(p.LeadTimeDays)
		rop := daily*p.LeadTimeDays + safety
		if float64(position) > rop {
			return 0
		}
		upTo := daily*max(p.TargetDays, p.LeadTimeDays) + safety
		return int64(math.Ceil(max(upTo-float64(position), 0)))
	}
}
