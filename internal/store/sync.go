package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/edgestock/edgestock/crdt"
)

// Entry is one PN-counter entry: a replica's (P, N) for a stock key, as the
// sync protocol carries it. Entries are states, not operations: merging the
// same entry twice, or an older one after a newer, changes nothing.
type Entry struct {
	Warehouse string
	Location  string
	SKU       string
	Replica   string
	crdt.Entry
}

// DeltaPage is a page of entries changed since a cursor.
type DeltaPage struct {
	Entries []Entry
	Next    int64 // the cursor to ask from next
	More    bool  // more entries are waiting past Next
}

// Deltas returns up to limit entries whose version is above since, in
// version order. A key changed many times since the cursor is one entry.
// Entries of skipReplica are left out (the peer asking wrote them).
func (db *DB) Deltas(ctx context.Context, since int64, limit int, skipReplica string) (DeltaPage, error) {
	// One read transaction: the page and the cursor past skipped rows must
	// come from the same snapshot, or a commit in between would be skipped.
	tx, err := db.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return DeltaPage{}, fmt.Errorf("query deltas: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	rows, err := tx.QueryContext(ctx, `SELECT warehouse, location, sku, replica, p, n, version FROM counters
		WHERE version > ? AND replica != ? ORDER BY version LIMIT ?`, since, skipReplica, limit+1)
	if err != nil {
		return DeltaPage{}, fmt.Errorf("query deltas: %w", err)
	}
	defer rows.Close()
	page := DeltaPage{Next: since}
	for rows.Next() {
		var e Entry
		var version int64
		if err := rows.Scan(&e.Warehouse, &e.Location, &e.SKU, &e.Replica, &e.P, &e.N, &version); err != nil {
			return DeltaPage{}, fmt.Errorf("query deltas: %w", err)
		}
		if len(page.Entries) == limit {
			page.More = true
			break
		}
		page.Entries = append(page.Entries, e)
		page.Next = version
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return DeltaPage{}, fmt.Errorf("query deltas: %w", err)
	}
	if !page.More && len(page.Entries) == 0 {
		// Skipped rows still advance the cursor: nothing below it is news.
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), ?) FROM counters WHERE version > ?`, since, since).Scan(&page.Next); err != nil {
			return DeltaPage{}, fmt.Errorf("query deltas: %w", err)
		}
	}
	return page, nil
}

// MergeOp merges foreign entries and records the sender's cursor in the
// same transaction, so a crash can never keep one without the other. The
// store sets Changed and NewReplica before the batch's done callback runs.
type MergeOp struct {
	Entries []Entry
	// Cursor is stored under CursorKey (default "hub_cursor": an agent
	// keeps how far it has merged the hub; the hub keeps one per agent).
	Cursor    string
	CursorKey string
	Now       time.Time
	Changed   int // entries that raised a stored (P, N)
	// NewReplica is set when the merge showed this database was restored
	// from an older copy of itself (see applyMerge).
	NewReplica string
	// Reincarnate, when set, is why this database is an older copy of
	// itself though no entry shows it: it starts a new incarnation.
	Reincarnate string
}

const sqlMergeEntry = `INSERT INTO counters(warehouse, location, sku, replica, p, n, version, updated_at) VALUES (?,?,?,?,?,?,?,?)
	ON CONFLICT (warehouse, sku, location, replica) DO UPDATE SET
		p = max(p, excluded.p), n = max(n, excluded.n), version = excluded.version, updated_at = excluded.updated_at
	WHERE excluded.p > p OR excluded.n > n`

func (db *DB) applyMerge(ctx context.Context, s *boundStmts, st *txState, op *MergeOp) error {
	op.Changed, op.NewReplica = 0, ""
	if op.Reincarnate != "" {
		return db.incarnate(ctx, s, st, op, op.Reincarnate)
	}
	merge := s.use(s.src.mergeEntry)
	for _, e := range op.Entries {
		if e.P > MaxTotal || e.N > MaxTotal {
			side, v := "p", e.P
			if e.P <= MaxTotal {
				side, v = "n", e.N
			}
			return &RangeError{Warehouse: e.Warehouse, Location: e.Location, SKU: e.SKU, Replica: e.Replica, Side: side, Total: v}
		}
		if e.Replica == db.replicaID {
			if err := db.checkRestored(ctx, s, st, op, e); err != nil {
				return err
			}
		}
		// The version is taken only if the row changes; an unchanged row
		// keeps its version, so re-sent entries do not show up as deltas.
		next := db.version + 1
		res, err := merge.ExecContext(ctx, e.Warehouse, e.Location, e.SKU, e.Replica, int64(e.P), int64(e.N), next, op.Now.UnixMilli())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			db.version = next
			op.Changed++
			st.merged[stockKey{e.Warehouse, e.SKU, e.Location}] = true
		}
	}
	if op.Cursor != "" {
		key := op.CursorKey
		if key == "" {
			key = "hub_cursor"
		}
		if _, err := s.use(s.src.setMeta).ExecContext(ctx, key, op.Cursor); err != nil {
			return err
		}
	}
	_, err := s.use(s.src.setMeta).ExecContext(ctx, "last_merge", strconv.FormatInt(op.Now.UnixMilli(), 10))
	return err
}

// checkRestored handles a peer holding a higher (P, N) for this database's
// own replica than the database does: only possible if the database is an
// older copy of itself (restored from a backup). Writing on under the same
// ID would be hidden by the higher entry, so the database becomes a new
// incarnation with a new replica ID, in this transaction; the old ID's
// entry is merged like any foreign one, so nothing either incarnation
// wrote is lost.
func (db *DB) checkRestored(ctx context.Context, s *boundStmts, st *txState, op *MergeOp, e Entry) error {
	var p, n uint64
	err := s.use(s.src.ownEntry).QueryRowContext(ctx, e.Warehouse, e.SKU, e.Location, e.Replica).Scan(&p, &n)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if (crdt.Entry{P: p, N: n}).Dominates(e.Entry) {
		return nil
	}
	return db.incarnate(ctx, s, st, op, "a peer holds newer state of this replica (sku "+e.SKU+")")
}

// incarnate gives the database a new replica ID in this transaction.
func (db *DB) incarnate(ctx context.Context, s *boundStmts, st *txState, op *MergeOp, why string) (err error) {
	if st.oldReplica != "" {
		return nil // this transaction already did
	}
	st.oldReplica = db.replicaID
	if db.replicaID, err = newIncarnation(ctx, s.tx, db.replicaID, db.warehouse, op.Now); err != nil {
		return err
	}
	op.NewReplica = db.replicaID
	db.logger.Warn("database restored from an older copy of itself: starting a new incarnation",
		"why", why, "old_replica", st.oldReplica, "new_replica", db.replicaID)
	return nil
}

// Reincarnate starts a new incarnation now, for why: a peer has seen this
// replica's versions past any this database reached.
func (db *DB) Reincarnate(ctx context.Context, why string) error {
	_, err := db.Apply(ctx, &Batch{Merges: []*MergeOp{{Reincarnate: why, Now: time.Now()}}})
	return err
}

// CommittedVersion is the highest counter version committed.
func (db *DB) CommittedVersion() int64 { return db.committedVersion.Load() }

// newIncarnation gives the database a new replica ID in tx, recording when
// old was left behind, and returns the new ID.
func newIncarnation(ctx context.Context, tx *sql.Tx, old, warehouse string, at time.Time) (string, error) {
	id := newReplicaID(warehouse)
	for k, v := range map[string]string{"replica_id": id, "incarnation:" + old: at.UTC().Format(time.RFC3339)} {
		if _, err := tx.ExecContext(ctx, sqlSetMeta, k, v); err != nil {
			return "", fmt.Errorf("new incarnation: %w", err)
		}
	}
	return id, nil
}

// CursorID names this database's version sequence in cursors: its replica,
// as a restored copy gets a new one.
func (db *DB) CursorID() string { return db.ReplicaID() }

// Meta reads a metadata value ("" when unset).
func (db *DB) Meta(ctx context.Context, key string) (string, error) {
	var v string
	err := db.reader.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

// SyncState is what the agent tells the hub about itself.
type SyncState struct {
	Replica   string
	HubCursor string
	LastMerge time.Time // zero before the first merge
}

// SyncState reads the replica ID, the stored hub cursor and the last merge.
func (db *DB) SyncState(ctx context.Context) (SyncState, error) {
	st := SyncState{Replica: db.ReplicaID()}
	var err error
	if st.HubCursor, err = db.Meta(ctx, "hub_cursor"); err != nil {
		return st, fmt.Errorf("read sync state: %w", err)
	}
	if st.LastMerge, err = db.LastMerge(ctx); err != nil {
		return st, fmt.Errorf("read sync state: %w", err)
	}
	return st, nil
}

// LastMerge is when foreign state was last merged (zero: never).
func (db *DB) LastMerge(ctx context.Context) (time.Time, error) {
	ms, err := db.Meta(ctx, "last_merge")
	if err != nil || ms == "" {
		return time.Time{}, err
	}
	n, _ := strconv.ParseInt(ms, 10, 64) // written by applyMerge
	return time.UnixMilli(n).UTC(), nil
}
