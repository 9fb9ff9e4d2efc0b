package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are applied in order; PRAGMA user_version records how many ran.
// Never edit a released migration: append a new one.
var migrations = []string{
	// 1: the event log, counters, quarantine and metadata.
	`CREATE TABLE meta (
		key   TEXT PRIMARY KEY,
		value TEXT NOT NULL
	) STRICT;

	CREATE TABLE events (
		seq          INTEGER PRIMARY KEY, -- rows are never deleted, so rowids are never reused
		device       TEXT    NOT NULL,
		event_id     TEXT    NOT NULL,
		body_hash    BLOB    NOT NULL,
		type         TEXT    NOT NULL,
		warehouse    TEXT    NOT NULL,
		location     TEXT    NOT NULL,
		sku          TEXT    NOT NULL,
		to_location  TEXT    NOT NULL DEFAULT '',
		qty          INTEGER NOT NULL,
		delta        INTEGER NOT NULL,
		channel      TEXT    NOT NULL DEFAULT '',
		device_ts    TEXT    NOT NULL DEFAULT '',
		device_seq   INTEGER NOT NULL DEFAULT 0,
		source       TEXT    NOT NULL,
		received_at  INTEGER NOT NULL
	) STRICT;
	CREATE UNIQUE INDEX events_device_id ON events(device, event_id);

	CREATE TABLE counters (
		warehouse  TEXT    NOT NULL,
		location   TEXT    NOT NULL,
		sku        TEXT    NOT NULL,
		replica    TEXT    NOT NULL,
		p          INTEGER NOT NULL,
		n          INTEGER NOT NULL,
		version    INTEGER NOT NULL,
		updated_at INTEGER NOT NULL,
		PRIMARY KEY (warehouse, sku, location, replica)
	) STRICT, WITHOUT ROWID;
	CREATE INDEX counters_version ON counters(version);

	CREATE TABLE quarantine (
		seq         INTEGER PRIMARY KEY,
		source      TEXT    NOT NULL,
		device      TEXT    NOT NULL,
		event_id    TEXT    NOT NULL,
		reason      TEXT    NOT NULL,
		message     TEXT    NOT NULL,
		payload     BLOB    NOT NULL,
		received_at INTEGER NOT NULL
	) STRICT;`,

	// 2: cart reservations. A hold is active until it expires, is committed
	// (turned into a sale) or released.
	`CREATE TABLE holds (
		id          TEXT    PRIMARY KEY,
		body_hash   BLOB    NOT NULL,
		warehouse   TEXT    NOT NULL,
		location    TEXT    NOT NULL,
		sku         TEXT    NOT NULL,
		qty         INTEGER NOT NULL,
		holder      TEXT    NOT NULL,
		channel     TEXT    NOT NULL,
		state       TEXT    NOT NULL, -- active, committed, released, expired
		created_at  INTEGER NOT NULL,
		expires_at  INTEGER NOT NULL,
		event_id    TEXT    NOT NULL DEFAULT '',
		event_seq   INTEGER NOT NULL DEFAULT 0,
		updated_at  INTEGER NOT NULL
	) STRICT;
	CREATE INDEX holds_active ON holds(state, expires_at) WHERE state = 'active';
	CREATE INDEX holds_sku ON holds(warehouse, sku) WHERE state = 'active';`,

	// 3: the alert outbox, written in the transaction of the change that
	// raised each alert, and the state alerts are raised from.
	`CREATE TABLE alerts (
		seq        INTEGER PRIMARY KEY,
		kind       TEXT    NOT NULL,
		warehouse  TEXT    NOT NULL,
		sku        TEXT    NOT NULL DEFAULT '',
		location   TEXT    NOT NULL DEFAULT '',
		device     TEXT    NOT NULL DEFAULT '',
		level      INTEGER NOT NULL DEFAULT 0,
		expected   INTEGER NOT NULL DEFAULT 0,
		got        INTEGER NOT NULL DEFAULT 0,
		created_at INTEGER NOT NULL
	) STRICT;
	CREATE TABLE low_skus (
		warehouse TEXT NOT NULL,
		sku       TEXT NOT NULL,
		PRIMARY KEY (warehouse, sku)
	) STRICT, WITHOUT ROWID;
	CREATE TABLE device_seqs (
		device   TEXT    PRIMARY KEY,
		last_seq INTEGER NOT NULL
	) STRICT, WITHOUT ROWID;`,

	// 4: issued API tokens and their revocation. The token itself is never
	// stored: it is signed, and only its id, claims and state are kept.
	`CREATE TABLE tokens (
		id         TEXT    PRIMARY KEY,
		name       TEXT    NOT NULL,
		scopes     TEXT    NOT NULL,
		device     TEXT    NOT NULL DEFAULT '',
		issued_at  INTEGER NOT NULL,
		expires_at INTEGER NOT NULL,
		revoked_at INTEGER NOT NULL DEFAULT 0
	) STRICT;`,

	// 5: reads by SKU across warehouses (sqlSKUsStock, sqlSKUPage) search
	// instead of scanning every counter. The table is WITHOUT ROWID, so an
	// entry also holds the primary key: (sku, warehouse, location, replica).
	`CREATE INDEX counters_sku ON counters(sku);`,

	// 6: escrow rights per (warehouse, sku) (crdt.Escrow, SPEC §9): one
	// grow-only total per replica, kind, holder and (moves) receiving
	// holder. Versions come from the counters' sequence, so one cursor
	// covers both tables.
	`CREATE TABLE escrow (
		warehouse  TEXT    NOT NULL,
		sku        TEXT    NOT NULL,
		replica    TEXT    NOT NULL,
		kind       TEXT    NOT NULL,
		holder     TEXT    NOT NULL,
		to_holder  TEXT    NOT NULL,
		total      INTEGER NOT NULL,
		version    INTEGER NOT NULL,
		updated_at INTEGER NOT NULL,
		PRIMARY KEY (warehouse, sku, replica, kind, holder, to_holder)
	) WITHOUT ROWID;
	CREATE INDEX escrow_version ON escrow(version);`,

	// 7: promises on rights (allotments, orders, releases), once per id,
	// with the answer given, so a retry gets the same one; the safety
	// stock per SKU that local holds and allotments leave alone; order
	// lines, versioned with the counters, on their way to the warehouses;
	// the hub's cart holds on channels' rights; and a version on each
	// hold's change, which the agent's stream reads.
	`CREATE TABLE promises (
		id         TEXT    PRIMARY KEY,
		body_hash  BLOB    NOT NULL,
		body       BLOB    NOT NULL,
		created_at INTEGER NOT NULL
	) STRICT;
	CREATE TABLE safety (
		warehouse  TEXT    NOT NULL,
		sku        TEXT    NOT NULL,
		qty        INTEGER NOT NULL,
		updated_at INTEGER NOT NULL,
		PRIMARY KEY (warehouse, sku)
	) STRICT, WITHOUT ROWID;
	CREATE INDEX escrow_sku ON escrow(sku);
	CREATE TABLE lines (
		id         TEXT    PRIMARY KEY,
		warehouse  TEXT    NOT NULL,
		sku        TEXT    NOT NULL,
		channel    TEXT    NOT NULL,
		qty        INTEGER NOT NULL,
		cancelled  INTEGER NOT NULL,
		version    INTEGER NOT NULL,
		updated_at INTEGER NOT NULL
	) STRICT;
	CREATE INDEX lines_version ON lines(version);
	CREATE TABLE hub_holds (
		id         TEXT    PRIMARY KEY,
		body_hash  BLOB    NOT NULL,
		warehouse  TEXT    NOT NULL,
		sku        TEXT    NOT NULL,
		channel    TEXT    NOT NULL,
		qty        INTEGER NOT NULL,
		state      TEXT    NOT NULL,
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL,
		order_id   TEXT    NOT NULL,
		version    INTEGER NOT NULL
	) STRICT;
	CREATE INDEX hub_holds_sku ON hub_holds(sku, channel) WHERE state = 'active';
	CREATE INDEX hub_holds_version ON hub_holds(channel, version);
	ALTER TABLE holds ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
	CREATE INDEX holds_version ON holds(version);`,

	// 8: replenishment (SPEC §12): each SKU's learned demand (an encoded
	// replenish.Demand) and its stockout-risk state, written with the
	// cursor of the events they were learned from; stockout_risk alerts
	// carry days of cover and the lead time.
	`CREATE TABLE demand (
		warehouse  TEXT    NOT NULL,
		sku        TEXT    NOT NULL,
		state      BLOB    NOT NULL,
		at_risk    INTEGER NOT NULL DEFAULT 0,
		updated_at INTEGER NOT NULL,
		PRIMARY KEY (warehouse, sku)
	) STRICT, WITHOUT ROWID;
	ALTER TABLE alerts ADD COLUMN cover REAL NOT NULL DEFAULT 0;
	ALTER TABLE alerts ADD COLUMN lead REAL NOT NULL DEFAULT 0;`,

	// 9: the warehouse a hub's uplink token binds: the hub's uplink agents
	// are the warehouses it issued uplink tokens for (SPEC §11).
	`ALTER TABLE tokens ADD COLUMN warehouse TEXT NOT NULL DEFAULT '';`,
}

// migrate brings the schema up to date, each migration in a transaction of
// its own.
func migrate(ctx context.Context, db *sql.DB) error {
	var version int
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this binary knows (%d): refusing to downgrade", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, i+1)); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	return nil
}
