// Package pgstore is the hub's PostgreSQL store: the same counters, merges,
// cursors and central writes as the SQLite store, for several hub processes
// sharing one database. Every write transaction takes one advisory lock, so
// counter versions (from a sequence) become visible in order and a cursor
// never passes a version that commits later. Merges are GREATEST() in SQL,
// so concurrent hubs merging the same entries converge.
package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edgestock/edgestock/internal/backoff"
	"github.com/edgestock/edgestock/internal/store"
)

// Advisory locks are the database's, not a schema's: the keys of leases
// and exclusive work are made of the schema's name and theirs, so that
// stores in other schemas of the database take other locks.
const lockKey = `hashtext(current_schema() || ':edgestock:' || $1)`

// globalLockKey is the database-wide key earlier releases took for every
// lock: still the key of a hub name's replica (OpenAs), so that two
// processes of two releases never write as the same replica.
const globalLockKey = `hashtext('edgestock:' || $1)`

// writeLock is the advisory lock every write transaction holds: the same
// in every schema (as in every release: processes of two releases on one
// database still take turns), so stores in two schemas of a database
// write in turn too.
const writeLock = 0x65647374 // "edst"

// Other hub processes' commits are announced by NOTIFY on the database's
// channel (commitChannel). pollInterval is how long a listener waits for
// one before it looks at the database anyway: a notification sent while
// nobody listened (a reconnect) is lost. A variable for tests.
var pollInterval = 5 * time.Second

var schema = []string{
	`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
	`CREATE SEQUENCE IF NOT EXISTS counter_version`,
	`CREATE TABLE IF NOT EXISTS counters (
		warehouse TEXT NOT NULL, location TEXT NOT NULL, sku TEXT NOT NULL, replica TEXT NOT NULL,
		p BIGINT NOT NULL, n BIGINT NOT NULL, version BIGINT NOT NULL, updated_at BIGINT NOT NULL,
		PRIMARY KEY (warehouse, sku, location, replica))`,
	`CREATE INDEX IF NOT EXISTS counters_version ON counters(version)`,
	`CREATE INDEX IF NOT EXISTS counters_sku ON counters(sku)`, // SKUsStock, SKUPage
	// Escrow rights (crdt.Escrow, SPEC §9): versions from the counters'
	// sequence, so one cursor covers both tables.
	`CREATE TABLE IF NOT EXISTS escrow (
		warehouse TEXT NOT NULL, sku TEXT NOT NULL, replica TEXT NOT NULL, kind TEXT NOT NULL,
		holder TEXT NOT NULL, to_holder TEXT NOT NULL, total BIGINT NOT NULL, version BIGINT NOT NULL, updated_at BIGINT NOT NULL,
		PRIMARY KEY (warehouse, sku, replica, kind, holder, to_holder))`,
	`CREATE INDEX IF NOT EXISTS escrow_version ON escrow(version)`,
	`CREATE INDEX IF NOT EXISTS escrow_sku ON escrow(sku)`, // RightsBySKU
	// Promises on rights (orders, releases), once per id, with the answer.
	`CREATE TABLE IF NOT EXISTS promises (
		id TEXT PRIMARY KEY, body_hash BYTEA NOT NULL, body BYTEA NOT NULL, created_at BIGINT NOT NULL)`,
	// Order lines on their way to the warehouses, versioned with the counters.
	`CREATE TABLE IF NOT EXISTS lines (
		id TEXT PRIMARY KEY, warehouse TEXT NOT NULL, sku TEXT NOT NULL, channel TEXT NOT NULL, qty BIGINT NOT NULL,
		cancelled BOOLEAN NOT NULL, version BIGINT NOT NULL, updated_at BIGINT NOT NULL)`,
	`CREATE INDEX IF NOT EXISTS lines_version ON lines(version)`,
	// The hub's cart holds on channels' rights (store.HubHold).
	`CREATE TABLE IF NOT EXISTS hub_holds (
		id TEXT PRIMARY KEY, warehouse TEXT NOT NULL, sku TEXT NOT NULL, channel TEXT NOT NULL, qty BIGINT NOT NULL,
		state TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, order_id TEXT NOT NULL, body_hash BYTEA NOT NULL,
		version BIGINT NOT NULL)`,
	`CREATE INDEX IF NOT EXISTS hub_holds_sku ON hub_holds(sku, channel) WHERE state = 'active'`,
	`CREATE INDEX IF NOT EXISTS hub_holds_version ON hub_holds(channel, version)`,
	`CREATE TABLE IF NOT EXISTS events (
		seq BIGSERIAL PRIMARY KEY, device TEXT NOT NULL, event_id TEXT NOT NULL, body_hash BYTEA NOT NULL,
		type TEXT NOT NULL, warehouse TEXT NOT NULL, location TEXT NOT NULL, sku TEXT NOT NULL,
		qty BIGINT NOT NULL, delta BIGINT NOT NULL, channel TEXT NOT NULL, source TEXT NOT NULL,
		received_at BIGINT NOT NULL, UNIQUE (device, event_id))`,
	// The hub's alert outbox (its agents' links going down and coming back).
	`CREATE TABLE IF NOT EXISTS alerts (
		seq BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL, warehouse TEXT NOT NULL, created_at BIGINT NOT NULL)`,
}

// DB is a PostgreSQL hub store. It is safe for concurrent use.
type DB struct {
	pool    *pgxpool.Pool
	replica string // this process's replica for central writes
	dbID    string // names the database in cursors, shared by every hub on it
	logger  *slog.Logger
	notify  func()
	lastErr atomic.Pointer[error]

	cancel context.CancelFunc
	wg     sync.WaitGroup
	// releaseName gives up the process's name (OpenAs), if it has one.
	releaseName func()
	leaseOnce   sync.Once
	leases      *leases // Lease's, made at its first call
}

// Open connects, creates the schema if needed and starts watching for
// other processes' commits (notify is called then, and after own commits).
// The process writes under a replica of its own for this run.
func Open(ctx context.Context, dsn string, notify func(), logger *slog.Logger) (*DB, error) {
	return OpenAs(ctx, dsn, "", notify, logger)
}

// ErrNameInUse is returned by OpenAs for a name another running hub
// process holds.
var ErrNameInUse = errors.New("another hub process on this database runs under this name")

// OpenAs is Open for a hub process named name (an ID; "" for none): it
// writes under replica "hub.{name}" in every run, so a restart adds no
// replica, and holds the name while it runs: a second process of the same
// name is refused, since two writers of one replica would hide each
// other's totals.
func OpenAs(ctx context.Context, dsn, name string, notify func(), logger *slog.Logger) (*DB, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	db := &DB{pool: pool, replica: "hub." + randomHex(8), logger: logger, notify: notify}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if name != "" {
		// The key every release has taken: a process of an older release
		// with the same name, still running in a rolling upgrade, holds it.
		release, held, err := db.exclusive(ctx, globalLockKey, "replica:"+name)
		if err == nil && !held {
			err = fmt.Errorf("%w: %q", ErrNameInUse, name)
		}
		if err != nil {
			pool.Close()
			return nil, err
		}
		db.replica, db.releaseName = "hub."+name, release
	}
	pctx, cancel := context.WithCancel(context.Background())
	db.cancel = cancel
	db.wg.Add(1)
	go db.watch(pctx)
	return db, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (db *DB) migrate(ctx context.Context) error {
	return db.write(ctx, func(tx pgx.Tx) error {
		for _, s := range slices.Concat(schema, tokenSchema, leaseSchema) {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("postgres schema: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO meta(key, value) VALUES ('db_id', $1) ON CONFLICT (key) DO NOTHING`, "pg."+randomHex(8)); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT value FROM meta WHERE key = 'db_id'`).Scan(&db.dbID)
	})
}

// write runs fn in a transaction holding the write lock.
func (db *DB) write(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, writeLock); err != nil {
			return err
		}
		return fn(tx)
	})
}

// commitChannel is the NOTIFY channel of this database's commits: one per
// database (its db_id), so hubs of other databases on the same server, or
// in other schemas, do not hear them.
func (db *DB) commitChannel() string {
	return "edgestock_commits_" + strings.ReplaceAll(db.dbID, ".", "_")
}

// listenerName is the application_name of this process's listening
// connection: unique per process, as its replica is.
func (db *DB) listenerName() string { return "edgestock listener " + db.replica }

// quoteLiteral quotes s as an SQL string literal.
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// watch notices commits of other processes on the same database: it
// listens for their notifications, again after any failure.
func (db *DB) watch(ctx context.Context) {
	defer db.wg.Done()
	w := &watcher{db: db, last: -1}
	wait := backoff.New(100*time.Millisecond, 30*time.Second)
	for {
		err := w.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		if !w.failing { // it was listening, or this was the first try
			db.logger.Warn("postgres: listening for other hub processes' commits failed; retrying with backoff", "err", err)
			w.failing = true
			wait.Reset()
		}
		if !wait.Sleep(ctx) {
			return
		}
	}
}

// watcher is watch's state across reconnections.
type watcher struct {
	db      *DB
	last    int64 // the counters' highest version seen
	failing bool  // the outage is logged: once, not once a second
}

// listen holds a connection of its own listening on commitChannel. It
// looks at the counters' highest version when it starts, after each other
// process's notification and after pollInterval without one, and calls
// notify when it moved.
func (w *watcher) listen(ctx context.Context) error {
	db := w.db
	pooled, err := db.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := pooled.Hijack() // a listening connection never goes back to the pool
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // a dead server must not hold Close
		defer cancel()
		_ = conn.Close(cctx)
	}()
	// Named, so an operator (and a test) can tell it in pg_stat_activity.
	if _, err := conn.Exec(ctx, "SET application_name = "+quoteLiteral(db.listenerName())); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{db.commitChannel()}.Sanitize()); err != nil {
		return err
	}
	if w.failing {
		db.logger.Info("postgres: listening for other hub processes' commits again")
		w.failing = false
	}
	for {
		var v int64
		if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM counters`).Scan(&v); err != nil {
			return err
		}
		if v != w.last {
			w.last = v
			db.notify()
		}
		for { // until another process's notification, or pollInterval
			wctx, cancel := context.WithTimeout(ctx, pollInterval)
			n, err := conn.WaitForNotification(wctx)
			cancel()
			if err != nil && (ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded)) {
				return err
			}
			if err != nil || n.Payload != db.replica { // timed out, or not our own commit
				break
			}
		}
	}
}

// Close stops watching and closes the pool.
func (db *DB) Close() error {
	db.cancel()
	db.wg.Wait()
	if db.releaseName != nil {
		db.releaseName()
	}
	if db.leases != nil {
		db.leases.close()
	}
	db.pool.Close()
	return nil
}

// ReplicaID is this process's replica (central writes).
func (db *DB) ReplicaID() string { return db.replica }

// CursorID names the database's version sequence in cursors.
func (db *DB) CursorID() string { return db.dbID }

// Ping checks the connection.
func (db *DB) Ping(ctx context.Context) error { return db.pool.Ping(ctx) }

// Err is the last write failure, nil after a success.
func (db *DB) Err() error {
	if p := db.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Submit applies b and calls done (synchronously: PostgreSQL takes
// concurrent transactions, so there is no commit loop to queue for).
func (db *DB) Submit(b *store.Batch, done func([]store.Outcome, error)) {
	out, err := db.Apply(context.Background(), b)
	done(out, err)
}

// Apply applies events (central writes on this process's replica) and
// merges in one transaction.
func (db *DB) Apply(ctx context.Context, b *store.Batch) ([]store.Outcome, error) {
	if len(b.Holds) > 0 || len(b.Safety) > 0 || b.Demand != nil {
		return nil, errors.New("postgres store: reservations, safety stock and demand live on agents")
	}
	var out []store.Outcome
	var changed bool // a counter moved: the watchers have something to see
	err := db.write(ctx, func(tx pgx.Tx) error {
		out = make([]store.Outcome, len(b.Events))
		for i := range b.Events {
			o, err := db.applyEventBounded(ctx, tx, &b.Events[i])
			if err != nil {
				return err
			}
			out[i] = o
			changed = changed || o.Status == store.Applied
		}
		for _, m := range b.Merges {
			if err := db.applyMerge(ctx, tx, m); err != nil {
				return err
			}
			changed = changed || m.Changed > 0
		}
		for _, p := range b.Promises {
			if err := db.applyPromise(ctx, tx, p); err != nil {
				return err
			}
			changed = changed || p.Result.Status == store.PromiseOK
		}
		for _, op := range b.HubHolds {
			if err := store.ApplyHubHold(pgHubHolds{db: db, ctx: ctx, tx: tx}, op); err != nil {
				return err
			}
			changed = changed || op.Result.Status == store.HoldOK && (op.Kind != store.HoldExpire || op.Result.Expired > 0)
		}
		if len(b.Links) > 0 {
			alerts, err := db.applyLinks(ctx, tx, b.Links)
			if err != nil {
				return err
			}
			changed = changed || alerts > 0
		}
		if !changed {
			return nil
		}
		// Delivered to the other hub processes at commit, not before.
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, db.commitChannel(), db.replica)
		return err
	})
	if err != nil {
		err = fmt.Errorf("postgres store: %w", err)
		db.lastErr.Store(&err)
		return nil, err
	}
	db.lastErr.Store(nil)
	if changed {
		db.notify()
	}
	return out, nil
}

// applyEventBounded applies e in a savepoint, undone when it would take
// its SKU's totals past store.MaxTotal (outcome OutOfRange).
func (db *DB) applyEventBounded(ctx context.Context, tx pgx.Tx, e *store.Event) (store.Outcome, error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return store.Outcome{}, err
	}
	defer func() { _ = sp.Rollback(ctx) }() // a no-op once committed
	o, err := db.applyEvent(ctx, sp, e)
	if err == nil && o.Status == store.Applied {
		err = checkSKU(ctx, sp, e.SKU)
	}
	if errors.Is(err, store.ErrOutOfRange) {
		return store.Outcome{Status: store.OutOfRange}, sp.Rollback(ctx)
	}
	if err != nil {
		return store.Outcome{}, err
	}
	return o, sp.Commit(ctx)
}

// checkSKU holds sku's totals (Σp, Σn over every entry) to store.MaxTotal.
// PostgreSQL sums bigint as numeric: the sums themselves never overflow.
func checkSKU(ctx context.Context, tx pgx.Tx, sku string) error {
	var p, n int64 // capped just past the bound
	if err := tx.QueryRow(ctx, `SELECT LEAST(COALESCE(SUM(p), 0), $2::numeric + 1)::bigint, LEAST(COALESCE(SUM(n), 0), $2::numeric + 1)::bigint
		FROM counters WHERE sku = $1`, sku, int64(store.MaxTotal)).Scan(&p, &n); err != nil {
		return err
	}
	switch {
	case p > store.MaxTotal:
		return &store.RangeError{SKU: sku, Side: "p", Total: uint64(p)}
	case n > store.MaxTotal:
		return &store.RangeError{SKU: sku, Side: "n", Total: uint64(n)}
	}
	return nil
}

func (db *DB) applyEvent(ctx context.Context, tx pgx.Tx, e *store.Event) (store.Outcome, error) {
	if e.Reverses != "" {
		return store.Outcome{Status: store.UnknownTicket}, nil // POS voids are resolved on the agent that has the ticket
	}
	var seq int64
	var hash []byte
	err := tx.QueryRow(ctx, `SELECT seq, body_hash FROM events WHERE device = $1 AND event_id = $2`, e.Device, e.ID).Scan(&seq, &hash)
	switch {
	case err == nil:
		if string(hash) == string(e.BodyHash) {
			return store.Outcome{Status: store.Duplicate, Seq: seq}, nil
		}
		return store.Outcome{Status: store.IDReused, Seq: seq}, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return store.Outcome{}, err
	}
	delta := e.Delta
	if e.Absolute {
		var onHand int64
		if err := tx.QueryRow(ctx, `SELECT COALESCE(SUM(p) - SUM(n), 0) FROM counters WHERE warehouse = $1 AND sku = $2 AND location = $3`,
			e.Warehouse, e.SKU, e.Location).Scan(&onHand); err != nil {
			return store.Outcome{}, err
		}
		delta = e.Qty - onHand
	}
	if err := tx.QueryRow(ctx, `INSERT INTO events(device, event_id, body_hash, type, warehouse, location, sku, qty, delta, channel, source, received_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) RETURNING seq`, e.Device, e.ID, e.BodyHash, e.Type, e.Warehouse, e.Location, e.SKU,
		e.Qty, delta, e.Channel, e.Source, e.ReceivedAt.UnixMilli()).Scan(&seq); err != nil {
		return store.Outcome{}, err
	}
	add := func(location string, d int64) error {
		if d == 0 {
			return nil
		}
		p, n := max(d, 0), max(-d, 0)
		_, err := tx.Exec(ctx, `INSERT INTO counters(warehouse, location, sku, replica, p, n, version, updated_at)
			VALUES ($1,$2,$3,$4,$5,$6,nextval('counter_version'),$7)
			ON CONFLICT (warehouse, sku, location, replica) DO UPDATE SET
				p = counters.p + excluded.p, n = counters.n + excluded.n, version = excluded.version, updated_at = excluded.updated_at`,
			e.Warehouse, location, e.SKU, db.replica, p, n, time.Now().UnixMilli())
		return err
	}
	if err := add(e.Location, delta); err != nil {
		return store.Outcome{}, err
	}
	if e.ToLocation != "" {
		if err := add(e.ToLocation, -delta); err != nil {
			return store.Outcome{}, err
		}
	}
	return store.Outcome{Status: store.Applied, Seq: seq, Delta: delta}, nil
}

func (db *DB) applyMerge(ctx context.Context, tx pgx.Tx, m *store.MergeOp) error {
	m.Changed = 0
	if m.Fence.Lease != "" {
		// Taking a lease needs no write lock: one taken while this
		// transaction runs fences the merges after it. Merges are
		// idempotent, so one in between costs at most a page sent again.
		var epoch int64
		err := tx.QueryRow(ctx, `SELECT epoch FROM leases WHERE name = $1`, m.Fence.Lease).Scan(&epoch)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if epoch != m.Fence.Epoch {
			return fmt.Errorf("%w: lease %s is at epoch %d, this merge was pulled at %d", store.ErrFenced, m.Fence.Lease, epoch, m.Fence.Epoch)
		}
	}
	now := m.Now.UnixMilli()
	raised := map[string]bool{} // SKUs to hold to store.MaxTotal
	for _, e := range m.Entries {
		if e.P > store.MaxTotal || e.N > store.MaxTotal {
			side, v := "p", e.P
			if e.P <= store.MaxTotal {
				side, v = "n", e.N
			}
			return &store.RangeError{Warehouse: e.Warehouse, Location: e.Location, SKU: e.SKU, Replica: e.Replica, Side: side, Total: v}
		}
		tag, err := tx.Exec(ctx, `INSERT INTO counters(warehouse, location, sku, replica, p, n, version, updated_at)
			VALUES ($1,$2,$3,$4,$5,$6,nextval('counter_version'),$7)
			ON CONFLICT (warehouse, sku, location, replica) DO UPDATE SET
				p = GREATEST(counters.p, excluded.p), n = GREATEST(counters.n, excluded.n), version = excluded.version, updated_at = excluded.updated_at
			WHERE excluded.p > counters.p OR excluded.n > counters.n`,
			e.Warehouse, e.Location, e.SKU, e.Replica, int64(e.P), int64(e.N), now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() > 0 {
			m.Changed++
			raised[e.SKU] = true
		}
	}
	for sku := range raised {
		if err := checkSKU(ctx, tx, sku); err != nil {
			return err
		}
	}
	for _, e := range m.Escrow {
		changed, err := mergeEscrow(ctx, tx, e, now)
		if err != nil {
			return err
		}
		if changed {
			m.Changed++
		}
	}
	if m.Cursor != "" && m.CursorKey != "" {
		if _, err := tx.Exec(ctx, `INSERT INTO meta(key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
			m.CursorKey, m.Cursor); err != nil {
			return err
		}
	}
	return nil
}

// Deltas returns entries with a version above since, in version order,
// from one snapshot (see store.DB.Deltas).
func (db *DB) Deltas(ctx context.Context, since int64, limit int, skipReplica string) (store.DeltaPage, error) {
	var page store.DeltaPage
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var counters []store.Versioned[store.Entry]
		rows, err := tx.Query(ctx, `SELECT warehouse, location, sku, replica, p, n, version FROM counters
			WHERE version > $1 AND replica <> $2 ORDER BY version LIMIT $3`, since, skipReplica, limit+1)
		if err != nil {
			return err
		}
		for rows.Next() {
			var v store.Versioned[store.Entry]
			var p, n int64
			if err := rows.Scan(&v.Entry.Warehouse, &v.Entry.Location, &v.Entry.SKU, &v.Entry.Replica, &p, &n, &v.Version); err != nil {
				rows.Close()
				return err
			}
			v.Entry.P, v.Entry.N = uint64(p), uint64(n)
			counters = append(counters, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		var escrow []store.Versioned[store.EscrowEntry]
		rows, err = tx.Query(ctx, `SELECT warehouse, sku, replica, kind, holder, to_holder, total, version FROM escrow
			WHERE version > $1 AND replica <> $2 ORDER BY version LIMIT $3`, since, skipReplica, limit+1)
		if err != nil {
			return err
		}
		for rows.Next() {
			var v store.Versioned[store.EscrowEntry]
			var kind string
			var total int64
			e := &v.Entry
			if err := rows.Scan(&e.Warehouse, &e.SKU, &e.Replica, &kind, &e.Holder, &e.To, &total, &v.Version); err != nil {
				rows.Close()
				return err
			}
			if err := (*store.KindScanner)(&e.Kind).Scan(kind); err != nil {
				rows.Close()
				return err
			}
			e.Total = uint64(total)
			escrow = append(escrow, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		var lines []store.Versioned[store.OrderLine]
		rows, err = tx.Query(ctx, `SELECT id, warehouse, sku, channel, qty, cancelled, version FROM lines
			WHERE version > $1 ORDER BY version LIMIT $2`, since, limit+1)
		if err != nil {
			return err
		}
		for rows.Next() {
			var v store.Versioned[store.OrderLine]
			l := &v.Entry
			if err := rows.Scan(&l.ID, &l.Warehouse, &l.SKU, &l.Channel, &l.Qty, &l.Cancelled, &v.Version); err != nil {
				rows.Close()
				return err
			}
			lines = append(lines, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		page = store.PageOf(since, limit, counters, escrow, lines)
		if !page.More && len(page.Entries)+len(page.Escrow)+len(page.Lines) == 0 {
			return tx.QueryRow(ctx, `SELECT GREATEST(COALESCE((SELECT MAX(version) FROM counters WHERE version > $1), $1),
				COALESCE((SELECT MAX(version) FROM escrow WHERE version > $1), $1))`, since).Scan(&page.Next)
		}
		return nil
	})
	if err != nil {
		return store.DeltaPage{}, fmt.Errorf("postgres deltas: %w", err)
	}
	return page, nil
}

// Meta reads a metadata value ("" when unset).
func (db *DB) Meta(ctx context.Context, key string) (string, error) {
	var v string
	err := db.pool.QueryRow(ctx, `SELECT value FROM meta WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return v, err
}

// SKUsStock returns the level of each of skus per warehouse, sorted by SKU,
// then warehouse; a SKU never seen has none.
func (db *DB) SKUsStock(ctx context.Context, skus []string) ([]store.StockLevel, error) {
	// Clamped to bigint: within store.MaxTotal it is exact; a database
	// filled before the bound was kept still reads.
	rows, err := db.pool.Query(ctx, `SELECT sku, warehouse, location,
			LEAST(GREATEST(SUM(p) - SUM(n), -9223372036854775808), 9223372036854775807)::bigint, MAX(updated_at) FROM counters
		WHERE sku = ANY($1) GROUP BY sku, warehouse, location ORDER BY sku, warehouse, location`, skus)
	if err != nil {
		return nil, fmt.Errorf("postgres stock: %w", err)
	}
	defer rows.Close()
	var out []store.StockLevel
	for rows.Next() {
		var sku, wh, loc string
		var n, updated int64
		if err := rows.Scan(&sku, &wh, &loc, &n, &updated); err != nil {
			return nil, fmt.Errorf("postgres stock: %w", err)
		}
		out = store.AppendLocation(out, sku, wh, loc, n, updated)
	}
	return out, rows.Err()
}

// SKUPage lists SKUs after `after` that start with prefix.
func (db *DB) SKUPage(ctx context.Context, prefix, after string, limit int) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT DISTINCT sku FROM counters WHERE sku > $1 AND left(sku, length($2)) = $2 ORDER BY sku LIMIT $3`,
		after, prefix, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres skus: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
