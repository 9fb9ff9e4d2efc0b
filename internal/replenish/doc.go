// Package replenish owns the pure core of replenishment (SPEC §12): a small,
// fixed-size demand state per (warehouse, sku) learned from sale and pick
// quantities, the figures computed from it (daily demand, days of cover,
// stockout time, reorder point, suggested quantity), and the stockout-risk
// crossing rule with its hysteresis.
//
// Like crdt/, it is pure and deterministic: no I/O, no clock, no goroutines,
// no locks, no logging. Event times and "now" are inputs; it never calls
// time.Now. Persisting a Demand (MarshalBinary), watching replenishment.csv,
// serving GET /v1/replenishment and publishing stockout_risk alerts belong to
// the roles that call it. docs/REPLENISHMENT.md explains the method and
// carries the backtest figures.
package replenish
