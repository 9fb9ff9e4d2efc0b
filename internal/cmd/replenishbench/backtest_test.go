package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// The backtest at a size that runs in seconds under -race; the full year
// for 1,000 SKUs is `go run ./internal/cmd/replenishbench` (or this test
// with REPLENISH_BACKTEST=full).
func TestRun_BeatsNaive(t *testing.T) {
	cfg := config{SKUs: 60, Days: 200, WarmupDays: 56, Seed: 7, ServiceLevels: []float64{0.9, 0.99}}
	if os.Getenv("REPLENISH_BACKTEST") == "full" {
		cfg.SKUs, cfg.Days = 1000, 365
	}
	rep := run(cfg)
	var out bytes.Buffer
	print(&out, rep)
	t.Log("\n" + out.String())
	a := rep.Accuracy
	require.Greater(t, a.SKUs, cfg.SKUs/2)
	require.Less(t, a.MASE, a.NaiveMASE, "one-day MASE must beat same day last week")
	require.Less(t, a.WeekMASE, a.NaiveWeek7, "one-week MASE must beat last week")
	// A higher service level holds more and loses less.
	require.Greater(t, rep.Inventory[1].InventoryDays, rep.Inventory[0].InventoryDays)
	require.Less(t, rep.Inventory[1].LostFraction, rep.Inventory[0].LostFraction)

	again := run(cfg)
	require.Equal(t, rep, again, "the run is a function of the seed")
}
