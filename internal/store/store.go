package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// FileName is the database file inside the data dir.
const FileName = "edgestock.db"

// readPoolSize bounds concurrent readers; further readers wait for a
// connection, which only delays HTTP queries, never ingest.
const readPoolSize = 4

// ErrClosed is returned for work submitted after Close.
var ErrClosed = errors.New("store: closed")

// ErrWrongWarehouse is returned by Open when the data dir belongs to another
// warehouse.
var ErrWrongWarehouse = errors.New("store: data dir belongs to another warehouse")

// ErrUnwritable is returned by Open when the database cannot be written
// (permissions, a read-only file system): an agent on it would never
// acknowledge anything.
var ErrUnwritable = errors.New("store: database not writable")

// Options configure Open.
type Options struct {
	// Warehouse is the warehouse this agent serves. A new database records
	// it; an existing one must match.
	Warehouse string
	Logger    *slog.Logger
	// LowStock decides low_stock/restocked alerts; nil raises none.
	LowStock LowStockRule
	// Notify is called from the commit loop after each durable commit that
	// changed stock, holds or alerts. It must not block.
	Notify func(Committed)
	// Observe is called from the commit loop after each transaction attempt
	// with its item count and duration. It must not block.
	Observe func(items int, took time.Duration, err error)
	// CommitDelay, when set, is how long the commit loop waits for more
	// work when a busy queue (commitSiblings items or more) is ready to
	// commit, as PostgreSQL's commit_delay: fewer, larger transactions
	// under load, no wait at low load. Only for producers that do not wait
	// for each commit before sending more (an external broker's window):
	// a closed loop, like devices on the embedded broker, only slows down.
	CommitDelay time.Duration
	// Quarantine bounds the rejected payloads kept (zero: no bounds).
	Quarantine QuarantineLimits
	// Beside opens the database beside the process that owns it (the token
	// CLI beside a running agent or hub, without its data dir's lock): it
	// decides nothing about the replica (no incarnation, no high-water
	// files) and runs no checkpoints or retention, so all it writes is
	// what its caller writes.
	Beside bool
}

// DB is the agent's SQLite store. It is safe for concurrent use.
type DB struct {
	path   string
	writer *sql.DB
	reader *readPool
	ckpt   *sql.DB // one connection for WAL checkpoints
	// replicaID is the commit loop's; replicaPub publishes it to readers
	// (it changes when a restored database starts a new incarnation).
	replicaID  string
	replicaPub atomic.Pointer[string]
	warehouse  string
	logger     *slog.Logger

	stmts writerStmts

	// version numbers counter changes; only the commit loop touches it.
	version int64
	// committedVersion publishes version after each commit; the checkpoint
	// loop records it in the high-water file (savedVersion/savedReplica are
	// that loop's own).
	committedVersion atomic.Int64
	savedVersion     int64
	savedReplica     string
	outerFailed      bool // the high-water file beside the data dir could not be written (logged once)
	beside           bool // Options.Beside
	// walTried is the WAL's size at the commit loop's last checkpoint that
	// left it past walCheckpointBytes (0: none); commit loop only.
	walTried int64
	// reserved is the committed quantity held by active holds per key;
	// only the commit loop touches it.
	reserved map[stockKey]int64
	// reservedBySKU sums reserved over locations for this warehouse's SKUs.
	reservedBySKU map[string]int64
	// reservedBound is, per SKU in reservedBySKU, a time (unix ms) none of
	// its active holds expires before; commit loop only.
	reservedBound map[string]int64
	// reservedPub publishes reservedBySKU and reservedBound to readers:
	// sku → reservedView (ReservedOf).
	reservedPub sync.Map
	// rightsSKUs are this warehouse's SKUs with rights totals (allotted
	// some time): only their sales can fall short of an allotment.
	rightsSKUs map[string]bool
	// low is the set of SKUs in the low-stock state; commit loop only.
	low map[string]bool
	// totals caches Σp and Σn of SKUs the commit loop has checked against
	// MaxTotal (checkTotals); commit loop only.
	totals map[string]skuTotal
	// levels caches this warehouse's SKUs' committed levels (levels.go);
	// commit loop only.
	levelCache map[string]*skuLevel
	lowRule    LowStockRule
	notify     func(Committed)
	observe    func(items int, took time.Duration, err error)
	// commitDelay is Options.CommitDelay.
	commitDelay time.Duration
	// qLimits is Options.Quarantine; qUsage what the quarantine holds.
	qLimits QuarantineLimits
	qUsage  quarantineUsage

	requests chan *request
	stop     chan struct{} // closed by Close: abandon retries of a failing store
	stopOnce sync.Once
	mu       sync.RWMutex // guards closed against sends on requests
	closed   bool
	wg       sync.WaitGroup

	errMu   sync.Mutex
	lastErr error // the last commit failure, nil once a commit succeeds
}

// Open opens (creating if needed) the database in dataDir, migrates it and
// starts the group-commit loop.
func Open(ctx context.Context, dataDir string, opts Options) (*DB, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	path := filepath.Join(dataDir, FileName)
	writer, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	db := &DB{path: path, writer: writer, logger: opts.Logger, lowRule: opts.LowStock, notify: opts.Notify, observe: opts.Observe, commitDelay: opts.CommitDelay, requests: make(chan *request, requestQueue), stop: make(chan struct{}), totals: map[string]skuTotal{}, levelCache: map[string]*skuLevel{}, qLimits: opts.Quarantine, beside: opts.Beside}
	if err := db.init(ctx, opts.Warehouse); err != nil {
		_ = db.closeConns()
		return nil, unwritable(path, err)
	}
	if err := db.loadQuarantineUsage(ctx); err != nil {
		_ = db.closeConns()
		return nil, err
	}
	// SQLite opens a file it may not write read-only, and reads work: only
	// a write tells. Refuse now rather than run without ever committing.
	if err := db.probe(); err != nil {
		_ = db.closeConns()
		return nil, unwritable(path, fmt.Errorf("open store: %w", err))
	}
	reader, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		_ = db.closeConns()
		return nil, fmt.Errorf("open store: %w", err)
	}
	db.reader = &readPool{DB: reader}
	db.reader.SetMaxOpenConns(readPoolSize)
	if db.ckpt, err = sql.Open("sqlite", dsn(path, false)); err != nil {
		_ = db.closeConns()
		return nil, fmt.Errorf("open store: %w", err)
	}
	db.ckpt.SetMaxOpenConns(1)
	db.wg.Add(1)
	go db.commitLoop()
	if !opts.Beside {
		db.wg.Add(2)
		go db.checkpointLoop()
		go db.retentionLoop()
	}
	return db, nil
}

// unwritable names path in err when SQLite says it cannot write the
// database (ErrUnwritable); other errors are returned as they are.
func unwritable(path string, err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM:
		return fmt.Errorf("%w: %s (%v): let the agent's user write the database, its -wal and -shm files and their directory, "+
			"or point --data-dir at a writable directory", ErrUnwritable, path, err)
	}
	return err
}

// dsn builds a modernc DSN. The file: form keeps the query string; busy_timeout
// must come before journal_mode so the WAL switch waits instead of failing.
func dsn(path string, writer bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	if writer {
		q.Add("_txlock", "immediate")
		// Checkpoints run on their own connection (checkpointLoop), and
		// between commits (checkpointBetweenCommits), never inside a commit
		// where they would delay acknowledgements.
		q.Add("_pragma", "wal_autocheckpoint(0)")
		// When the WAL starts over, the file is cut back to this size.
		q.Add("_pragma", fmt.Sprintf("journal_size_limit(%d)", walCheckpointBytes))
		// Statement journals (an upsert's undo copy of the pages it
		// touches) stay in memory instead of spilling to a temporary file.
		q.Add("_pragma", "temp_store(MEMORY)")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	return "file:" + uriPath.Replace(path) + "?" + q.Encode()
}

// uriPath escapes what a file: URI would read otherwise: '?' starts the
// parameters, '#' a fragment (a data dir named "wh#2" opened another
// file), and '%' an escape.
var uriPath = strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23")

func (db *DB) init(ctx context.Context, warehouse string) error {
	if err := migrate(ctx, db.writer); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	meta := map[string]string{}
	rows, err := tx.QueryContext(ctx, `SELECT key, value FROM meta`)
	if err != nil {
		return fmt.Errorf("open store: read meta: %w", err)
	}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return fmt.Errorf("open store: read meta: %w", err)
		}
		meta[k] = v
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("open store: read meta: %w", err)
	}
	if meta["replica_id"] == "" {
		// A new database is a new replica incarnation: never reuse an ID,
		// or max-merge would hide this incarnation's writes.
		meta = map[string]string{
			"replica_id": newReplicaID(warehouse),
			"warehouse":  warehouse,
			"created_at": time.Now().UTC().Format(time.RFC3339),
		}
		for k, v := range meta {
			if _, err := tx.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES (?, ?)`, k, v); err != nil {
				return fmt.Errorf("open store: write meta: %w", err)
			}
		}
	}
	if warehouse != "" && meta["warehouse"] != warehouse {
		return fmt.Errorf("%w: %s holds warehouse %q, not %q: to serve %[3]q set warehouse: %[3]s (or --warehouse %[3]s), or give %[4]q a data dir of its own", ErrWrongWarehouse, db.path, meta["warehouse"], warehouse)
	}
	if err := tx.QueryRowContext(ctx, `SELECT MAX(COALESCE((SELECT MAX(version) FROM counters), 0), COALESCE((SELECT MAX(version) FROM escrow), 0),
		COALESCE((SELECT MAX(version) FROM lines), 0), COALESCE((SELECT MAX(version) FROM hub_holds), 0),
		COALESCE((SELECT MAX(version) FROM holds), 0))`).Scan(&db.version); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	if why := db.copyOfItself(meta["replica_id"], db.version); why != "" && !db.beside {
		old := meta["replica_id"]
		id, err := newIncarnation(ctx, tx, old, meta["warehouse"], time.Now())
		if err != nil {
			return fmt.Errorf("open store: %w", err)
		}
		meta["replica_id"] = id
		db.logger.Warn("database restored from a backup or copied: starting a new incarnation, so nothing it writes is hidden by what the original published",
			"why", why, "old_replica", old, "new_replica", id)
	}
	db.committedVersion.Store(db.version)
	db.warehouse = meta["warehouse"] // loadLow needs it
	if err := db.loadReserved(ctx, tx); err != nil {
		return fmt.Errorf("open store: load holds: %w", err)
	}
	if err := db.loadLow(ctx, tx); err != nil {
		return fmt.Errorf("open store: load low-stock state: %w", err)
	}
	if err := db.loadRightsSKUs(ctx, tx); err != nil {
		return fmt.Errorf("open store: load rights: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	db.replicaID, db.warehouse = meta["replica_id"], meta["warehouse"]
	id := db.replicaID
	db.replicaPub.Store(&id)
	// At once, not a second later: the next open compares against it.
	if !db.beside {
		db.saveHighWater()
	}
	return db.stmts.prepare(ctx, db.writer)
}

// newReplicaID returns "<warehouse>.<16 hex>": readable in logs and unique
// per database incarnation.
func newReplicaID(warehouse string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	if len(warehouse) > 47 {
		warehouse = warehouse[:47]
	}
	return warehouse + "." + hex.EncodeToString(b[:])
}

// ReplicaID is this database incarnation's CRDT replica ID.
func (db *DB) ReplicaID() string { return *db.replicaPub.Load() }

// Warehouse is the warehouse recorded when the database was created.
func (db *DB) Warehouse() string { return db.warehouse }

// Err returns the last commit failure, or nil when the last commit succeeded.
func (db *DB) Err() error {
	db.errMu.Lock()
	defer db.errMu.Unlock()
	return db.lastErr
}

func (db *DB) setErr(err error) {
	db.errMu.Lock()
	db.lastErr = err
	db.errMu.Unlock()
}

// Close stops accepting batches, commits every batch already submitted and
// closes the database.
func (db *DB) Close() error {
	// First wake whatever waits: a Submit blocked on a full queue holds the
	// read lock below, and a commit loop retrying a failing store waits too.
	db.stopOnce.Do(func() { close(db.stop) })
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	close(db.requests)
	db.mu.Unlock()
	db.wg.Wait()
	return db.closeConns()
}

func (db *DB) closeConns() error {
	db.stmts.close()
	var errs []error
	if db.ckpt != nil {
		errs = append(errs, db.ckpt.Close())
	}
	if db.reader != nil {
		errs = append(errs, db.reader.Close())
	}
	errs = append(errs, db.writer.Close())
	return errors.Join(errs...)
}

// IntegrityCheck runs PRAGMA integrity_check and returns its verdict ("ok"
// when the file is sound).
func (db *DB) IntegrityCheck(ctx context.Context) (string, error) {
	var verdict string
	err := db.reader.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&verdict)
	return verdict, err
}

// Checkpoint policy. The checkpoint loop copies committed WAL frames into
// the database file every checkpointInterval (PASSIVE: it never blocks the
// writer). Under steady load that never lets the WAL start over: SQLite
// reuses the WAL from its start only when a write begins with every frame
// copied, and the writer keeps adding frames while the loop copies. So the
// commit loop itself, between transactions, runs a PASSIVE checkpoint
// once the WAL passes walCheckpointBytes (see checkpointBetweenCommits):
// with no writer beside it, it copies every frame no reader still needs,
// and the next commit restarts the WAL and truncates the file to
// walCheckpointBytes (journal_size_limit). An agent thus needs about
// walCheckpointBytes plus one transaction of free space to keep acking.
const (
	checkpointInterval = time.Second
	walCheckpointBytes = 4 << 20
)

func (db *DB) checkpointLoop() {
	defer db.wg.Done()
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			// Leave a small WAL behind for the next start.
			db.checkpoint(db.ckpt, "TRUNCATE")
			db.saveHighWater()
			return
		case <-t.C:
			db.saveHighWater()
			db.checkpoint(db.ckpt, "PASSIVE")
		}
	}
}

// checkpointBetweenCommits runs on the commit loop after a commit: once the
// WAL file is past walCheckpointBytes, a PASSIVE checkpoint on the writer
// connection, which nothing else writes meanwhile. Frames a reader still
// needs stay; then the WAL cannot restart yet, and the next try waits until
// it grew by another quarter of the limit instead of running every commit.
func (db *DB) checkpointBetweenCommits() {
	fi, err := os.Stat(db.path + "-wal")
	if err != nil {
		return
	}
	size := fi.Size()
	if size <= walCheckpointBytes {
		db.walTried = 0
		return
	}
	if db.walTried != 0 && size < db.walTried+walCheckpointBytes/4 {
		return
	}
	db.walTried = size
	db.checkpoint(db.writer, "PASSIVE")
}

func (db *DB) checkpoint(conn *sql.DB, mode string) {
	var busy, logFrames, checkpointed int
	start := time.Now()
	err := conn.QueryRow("PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &logFrames, &checkpointed)
	if err != nil {
		db.logger.Warn("wal checkpoint failed", "mode", mode, "err", err)
	}
	db.logger.Debug("wal checkpoint", "mode", mode, "took", time.Since(start), "frames", logFrames, "checkpointed", checkpointed)
}
