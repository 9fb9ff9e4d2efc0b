// Package store is the agent's durable state: the event log, the PN-counter
// entries per stock key and replica, the quarantine and the database's
// metadata (its replica ID). It is the only package that talks to SQLite.
//
// One writer connection runs every change in an IMMEDIATE transaction; a
// group-commit loop gathers concurrent batches into one transaction so many
// events share one fsync. Readers use a separate pool and never block the
// writer (WAL). Business rules (what an event type does to stock) live in
// package agent; this package applies the signed deltas it is given.
package store
