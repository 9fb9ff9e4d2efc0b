// Command replenishbench backtests internal/replenish on a synthetic year:
// items with weekly seasonality, trends and promotions, from intermittent
// to fast movers. It prints the one-day and one-week mean absolute scaled
// error of the estimator against the naive "same day last week" forecast,
// and, per service level, the inventory held and the demand lost by a
// daily-review (s, S) policy ordering from replenish.Figures, beside the
// same policy fed naive estimates. The run is a function of -seed.
//
// Usage:
//
//	go run ./internal/cmd/replenishbench [-skus 1000] [-days 365] [-seed 1]
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

func main() {
	cfg := config{WarmupDays: 56, ServiceLevels: []float64{0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995}}
	flag.IntVar(&cfg.SKUs, "skus", 1000, "synthetic items")
	flag.IntVar(&cfg.Days, "days", 365, "days simulated (the first 56 are warm-up)")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "random seed")
	flag.Parse()
	if cfg.SKUs < 1 || cfg.Days <= cfg.WarmupDays+7 {
		fmt.Fprintf(os.Stderr, "replenishbench: need -skus ≥ 1 and -days > %d\n", cfg.WarmupDays+7)
		os.Exit(2)
	}
	began := time.Now()
	rep := run(cfg)
	print(os.Stdout, rep)
	fmt.Fprintf(os.Stderr, "took %s\n", time.Since(began).Round(time.Millisecond))
}

func print(w io.Writer, r report) {
	a := r.Accuracy
	fmt.Fprintf(w, "backtest: %d SKUs, %d days (%d warm-up), seed %d\n\n", r.Config.SKUs, r.Config.Days, r.Config.WarmupDays, r.Config.Seed)
	fmt.Fprintf(w, "forecast accuracy, mean over %d scored SKUs (MASE, scale = in-sample seasonal naive error):\n", a.SKUs)
	fmt.Fprintf(w, "  next day:    estimator %.3f  naive (same day last week) %.3f  estimator better on %d SKUs\n", a.MASE, a.NaiveMASE, a.SKUsBetter)
	fmt.Fprintf(w, "  next 7 days: estimator %.3f  naive (last 7 days)        %.3f\n\n", a.WeekMASE, a.NaiveWeek7)
	fmt.Fprintln(w, "(s,S) policy, daily review, lead 2-10 days, target lead+7 days; after warm-up:")
	fmt.Fprintln(w, "  service  | estimator: inv days  lost %   stockout days  orders/SKU | naive: inv days  lost %   stockout days  orders/SKU")
	for _, i := range r.Inventory {
		fmt.Fprintf(w, "  %.3f    |            %6.2f  %6.2f%%  %13d  %10.1f |        %6.2f  %6.2f%%  %13d  %10.1f\n",
			i.ServiceLevel, i.InventoryDays, 100*i.LostFraction, i.StockoutDays, i.OrdersPerSKU,
			i.NaiveInvDays, 100*i.NaiveLost, i.NaiveStockouts, i.NaiveOrders)
	}
	fmt.Fprintln(w, "\nat equal inventory (naive's curve interpolated at the estimator's inventory days):")
	for _, i := range r.Inventory {
		lost, stockouts, ok := naiveAt(r.Inventory, i.InventoryDays)
		if !ok {
			fmt.Fprintf(w, "  %.3f: %.2f inv days is outside the naive policy's range\n", i.ServiceLevel, i.InventoryDays)
			continue
		}
		fmt.Fprintf(w, "  %.3f: %.2f inv days: lost %.2f%% vs naive %.2f%%, stockout days %d vs naive %.0f (%.0f%% avoided)\n",
			i.ServiceLevel, i.InventoryDays, 100*i.LostFraction, 100*lost, i.StockoutDays, stockouts, 100*(1-float64(i.StockoutDays)/stockouts))
	}
}

// naiveAt interpolates the naive policy's lost fraction and stockout days
// at invDays, linearly between its service levels.
func naiveAt(inv []inventory, invDays float64) (lost, stockouts float64, ok bool) {
	for k := 1; k < len(inv); k++ {
		a, b := inv[k-1], inv[k]
		if invDays >= a.NaiveInvDays && invDays <= b.NaiveInvDays {
			t := (invDays - a.NaiveInvDays) / (b.NaiveInvDays - a.NaiveInvDays)
			return a.NaiveLost + t*(b.NaiveLost-a.NaiveLost),
				float64(a.NaiveStockouts) + t*float64(b.NaiveStockouts-a.NaiveStockouts), true
		}
	}
	return 0, 0, false
}
