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

// EscrowEntry is one total of a (warehouse, sku)'s rights (crdt.Escrow):
// a state like Entry, merged by max.
type EscrowEntry struct {
	Warehouse string
	SKU       string
	crdt.EscrowEntry
}

// DeltaPage is a page of entries changed since a cursor: counter entries
// and escrow totals, which share one version sequence.
type DeltaPage struct {
	Entries []Entry
	Escrow  []EscrowEntry
	Lines   []OrderLine
	Next    int64 // the cursor to ask from next
	More    bool  // more entries are waiting past Next
}

// Deltas returns up to limit entries (counter entries and escrow totals
// together) whose version is above since, in version order. A key changed
// many times since the cursor is one entry. Entries of skipReplica are left
// out (the peer asking wrote them).
func (db *DB) Deltas(ctx context.Context, since int64, limit int, skipReplica string) (DeltaPage, error) {
	return db.deltas(ctx, since, limit, skipReplica, "")
}

// OwnDeltas is Deltas of this store's own warehouse alone: what an agent
// hands its hub. Other warehouses' entries came from the hub, which has
// them; handing them back would cost every change one pull per agent
// (and a hub transaction each), N² in all.
func (db *DB) OwnDeltas(ctx context.Context, since int64, limit int) (DeltaPage, error) {
	return db.deltas(ctx, since, limit, "", db.warehouse)
}

// deltas is Deltas, of warehouse alone when it is not "".
func (db *DB) deltas(ctx context.Context, since int64, limit int, skipReplica, warehouse string) (DeltaPage, error) {
	// One read transaction: the page and the cursor past skipped rows must
	// come from the same snapshot, or a commit in between would be skipped.
	tx, err := db.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return DeltaPage{}, fmt.Errorf("query deltas: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var counters []Versioned[Entry]
	err = scanVersioned(ctx, tx, &counters, `SELECT warehouse, location, sku, replica, p, n, version FROM counters
		WHERE version > ?1 AND replica != ?2 AND (?3 = '' OR warehouse = ?3) ORDER BY version LIMIT ?4`, []any{since, skipReplica, warehouse, limit + 1},
		func(e *Entry) []any { return []any{&e.Warehouse, &e.Location, &e.SKU, &e.Replica, &e.P, &e.N} })
	if err != nil {
		return DeltaPage{}, fmt.Errorf("query deltas: %w", err)
	}
	var escrow []Versioned[EscrowEntry]
	err = scanVersioned(ctx, tx, &escrow, `SELECT warehouse, sku, replica, kind, holder, to_holder, total, version FROM escrow
		WHERE version > ?1 AND replica != ?2 AND (?3 = '' OR warehouse = ?3) ORDER BY version LIMIT ?4`, []any{since, skipReplica, warehouse, limit + 1},
		func(e *EscrowEntry) []any {
			return []any{&e.Warehouse, &e.SKU, &e.Replica, (*KindScanner)(&e.Kind), &e.Holder, &e.To, &e.Total}
		})
	if err != nil {
		return DeltaPage{}, fmt.Errorf("query deltas: %w", err)
	}
	var lines []Versioned[OrderLine]
	err = scanVersioned(ctx, tx, &lines, `SELECT id, warehouse, sku, channel, qty, cancelled, version FROM lines
		WHERE version > ?1 AND (?2 = '' OR warehouse = ?2) ORDER BY version LIMIT ?3`, []any{since, warehouse, limit + 1},
		func(l *OrderLine) []any { return []any{&l.ID, &l.Warehouse, &l.SKU, &l.Channel, &l.Qty, &l.Cancelled} })
	if err != nil {
		return DeltaPage{}, fmt.Errorf("query deltas: %w", err)
	}
	page := PageOf(since, limit, counters, escrow, lines)
	if !page.More && len(page.Entries)+len(page.Escrow)+len(page.Lines) == 0 {
		// Skipped rows still advance the cursor: nothing below it is news.
		if err := tx.QueryRowContext(ctx, `SELECT MAX(COALESCE((SELECT MAX(version) FROM counters WHERE version > ?1), ?1),
			COALESCE((SELECT MAX(version) FROM escrow WHERE version > ?1), ?1),
			COALESCE((SELECT MAX(version) FROM lines WHERE version > ?1), ?1))`, since).Scan(&page.Next); err != nil {
			return DeltaPage{}, fmt.Errorf("query deltas: %w", err)
		}
	}
	return page, nil
}

// Versioned is a row of a delta query with its version.
type Versioned[T any] struct {
	Entry   T
	Version int64
}

// PageOf merges a store's counter entries, escrow totals and order lines
// past since, each in version order and fetched up to limit+1, into one
// page of at most limit in version order. More says something was left
// over.
func PageOf(since int64, limit int, counters []Versioned[Entry], escrow []Versioned[EscrowEntry], lines []Versioned[OrderLine]) DeltaPage {
	page := DeltaPage{Next: since}
	i, j, k := 0, 0, 0
	// lowest says which list holds the lowest version next (-1: none).
	lowest := func() int {
		which, v := -1, int64(0)
		if i < len(counters) {
			which, v = 0, counters[i].Version
		}
		if j < len(escrow) && (which < 0 || escrow[j].Version < v) {
			which, v = 1, escrow[j].Version
		}
		if k < len(lines) && (which < 0 || lines[k].Version < v) {
			which = 2
		}
		return which
	}
	for n := 0; n < limit; n++ {
		switch lowest() {
		case 0:
			page.Entries, page.Next = append(page.Entries, counters[i].Entry), counters[i].Version
			i++
		case 1:
			page.Escrow, page.Next = append(page.Escrow, escrow[j].Entry), escrow[j].Version
			j++
		case 2:
			page.Lines, page.Next = append(page.Lines, lines[k].Entry), lines[k].Version
			k++
		default:
			return page
		}
	}
	page.More = lowest() >= 0
	return page
}

// scanVersioned runs query and appends each row: the columns dest names,
// then the version.
func scanVersioned[T any](ctx context.Context, tx *sql.Tx, out *[]Versioned[T], query string, args []any, dest func(*T) []any) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var v Versioned[T]
		if err := rows.Scan(append(dest(&v.Entry), &v.Version)...); err != nil {
			return err
		}
		*out = append(*out, v)
	}
	return errors.Join(rows.Err(), rows.Close())
}

// KindScanner reads an escrow kind stored as a one-letter string.
type KindScanner crdt.Kind

func (k *KindScanner) Scan(src any) error {
	var s string
	switch v := src.(type) {
	case string:
		s = v
	case []byte:
		s = string(v)
	}
	if len(s) != 1 {
		return fmt.Errorf("escrow kind %q", s)
	}
	*k = KindScanner(s[0])
	return nil
}

// Fence names a lease and the epoch it was taken at: each taking of a
// lease moves its epoch on, so a write made under an older epoch comes
// from a process that lost the lease (SPEC §11).
type Fence struct {
	Lease string
	Epoch int64
}

// ErrFenced refuses a write made under a lease another process has
// taken since.
var ErrFenced = errors.New("fenced: another hub process took the lease")

// MergeOp merges foreign entries and records the sender's cursor in the
// same transaction, so a crash can never keep one without the other. The
// store sets Changed and NewReplica before the batch's done callback runs.
type MergeOp struct {
	Entries []Entry
	Escrow  []EscrowEntry
	// Lines are order lines for this store's warehouse: each becomes a
	// committed hold awaiting its pick (see mergeLine).
	Lines []OrderLine
	// Cursor is stored under CursorKey (default "hub_cursor": an agent
	// keeps how far it has merged the hub; the hub keeps one per agent).
	Cursor    string
	CursorKey string
	// Fence, when set, is the lease the merge is made under: a store that
	// leases (PostgreSQL) refuses it with ErrFenced once another process
	// has taken the lease since.
	Fence   Fence
	Now     time.Time
	Changed int // entries that raised a stored (P, N)
	// NewReplica is set when the merge showed this database was restored
	// from an older copy of itself (see applyMerge).
	NewReplica string
	// Reincarnate, when set, is why this database is an older copy of
	// itself though no entry shows it: it starts a new incarnation, if it
	// still runs as the replica ReincarnateFrom.
	Reincarnate, ReincarnateFrom string
}

const sqlMergeEntry = `INSERT INTO counters(warehouse, location, sku, replica, p, n, version, updated_at) VALUES (?,?,?,?,?,?,?,?)
	ON CONFLICT (warehouse, sku, location, replica) DO UPDATE SET
		p = max(p, excluded.p), n = max(n, excluded.n), version = excluded.version, updated_at = excluded.updated_at
	WHERE excluded.p > p OR excluded.n > n`

const sqlMergeEscrow = `INSERT INTO escrow(warehouse, sku, replica, kind, holder, to_holder, total, version, updated_at) VALUES (?,?,?,?,?,?,?,?,?)
	ON CONFLICT (warehouse, sku, replica, kind, holder, to_holder) DO UPDATE SET
		total = excluded.total, version = excluded.version, updated_at = excluded.updated_at
	WHERE excluded.total > total`

func (db *DB) applyMerge(ctx context.Context, s *boundStmts, st *txState, op *MergeOp) error {
	op.Changed, op.NewReplica = 0, ""
	if op.Reincarnate != "" {
		if db.replicaID != op.ReincarnateFrom {
			return nil // another request did already: one new incarnation
		}
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
			st.mergedSKUs[stockKey{e.Warehouse, e.SKU, ""}] = true
		}
	}
	if err := db.mergeEscrow(ctx, s, st, op); err != nil {
		return err
	}
	for i := range op.Lines {
		if err := db.mergeLine(ctx, s, st, &op.Lines[i], op.Now); err != nil {
			return err
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

// mergeEscrow merges op's escrow totals: per total the maximum. A peer
// holding a higher total of this database's own replica shows, like a
// counter entry, that the database is an older copy of itself.
func (db *DB) mergeEscrow(ctx context.Context, s *boundStmts, st *txState, op *MergeOp) error {
	merge := s.use(s.src.mergeEscrow)
	for _, e := range op.Escrow {
		if e.Total > MaxTotal {
			return &RangeError{Warehouse: e.Warehouse, SKU: e.SKU, Replica: e.Replica, Side: "escrow " + string(e.Kind), Total: e.Total}
		}
		if e.Replica == db.replicaID {
			var own uint64
			err := s.use(s.src.ownEscrow).QueryRowContext(ctx, e.Warehouse, e.SKU, e.Replica, string(e.Kind), e.Holder, e.To).Scan(&own)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if own < e.Total {
				if err := db.incarnate(ctx, s, st, op, "a peer holds newer rights of this replica (sku "+e.SKU+")"); err != nil {
					return err
				}
			}
		}
		next := db.version + 1
		res, err := merge.ExecContext(ctx, e.Warehouse, e.SKU, e.Replica, string(e.Kind), e.Holder, e.To, int64(e.Total), next, op.Now.UnixMilli())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			db.version = next
			op.Changed++
			st.rights[stockKey{e.Warehouse, e.SKU, ""}] = true
		}
	}
	return nil
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

// Reincarnate starts a new incarnation now, for why (a peer has seen
// replica's versions past any this database reached), unless the database
// no longer runs as replica: concurrent callers make one new ID, not many.
func (db *DB) Reincarnate(ctx context.Context, replica, why string) error {
	_, err := db.Apply(ctx, &Batch{Merges: []*MergeOp{{Reincarnate: why, ReincarnateFrom: replica, Now: time.Now()}}})
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

// MetaPrefix reads every metadata value whose key starts with prefix.
func (db *DB) MetaPrefix(ctx context.Context, prefix string) (map[string]string, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT key, value FROM meta WHERE substr(key, 1, length(?1)) = ?1`, prefix)
	if err != nil {
		return nil, fmt.Errorf("query meta: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("query meta: %w", err)
		}
		out[k] = v
	}
	return out, rows.Err()
}
