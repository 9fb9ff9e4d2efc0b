// Package store is the durable state both roles keep in SQLite: the event
// log, the PN-counter entries per stock key and replica, holds, alerts, the
// quarantine, tokens and the database's metadata (its replica ID and its
// incarnations). It is the only SQL besides pgstore, the hub's PostgreSQL
// store; storetest holds both to one contract.
//
// One writer connection runs every change in an IMMEDIATE transaction; a
// group-commit loop gathers concurrent batches into one transaction so many
// events share one fsync. Readers use a separate pool and never block the
// writer (WAL). What an event type does to stock is decided by its caller
// (internal/ingest); this package applies the signed deltas it is given.
package store
