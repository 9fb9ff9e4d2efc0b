package pgstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// leaseRecheck is how long a lease held is trusted without asking the
// database again: a process whose lease connection died learns it within
// this long, and the lock was released when it died, so another process
// may already hold it (SPEC §11).
const leaseRecheck = time.Second

// leaseSchema numbers each taking of a lease: the epoch fences the writes
// of a process that lost its lease without knowing yet.
var leaseSchema = []string{
	`CREATE TABLE IF NOT EXISTS leases (
		name TEXT PRIMARY KEY, epoch BIGINT NOT NULL, holder TEXT NOT NULL, taken_at BIGINT NOT NULL)`,
}

// leases are this process's leases on agents the hub dials: session
// advisory locks on one connection of its own. They last while the
// connection does: a process that dies or loses the database lets them
// go at once, and one that only stalls keeps them, so no two processes
// serve an agent at the same time. A process learns it lost a lease only
// at its next check (leaseRecheck), so each taking moves the lease's
// epoch on, and a merge made under an older epoch is refused
// (store.Fence): a page pulled by the process that lost the lease is not
// merged after the new holder went on.
type leases struct {
	db      *DB
	mu      sync.Mutex
	conn    *pgx.Conn
	held    map[string]int64 // name → epoch taken at; 0: not held
	checked time.Time
}

// Lease returns the epoch at which this process holds the lease named
// name, taking it when it is free; 0 when another process holds it.
func (db *DB) Lease(ctx context.Context, name string) (int64, error) {
	db.leaseOnce.Do(func() { db.leases = &leases{db: db, held: map[string]int64{}} })
	return db.leases.hold(ctx, name)
}

func (l *leases) hold(ctx context.Context, name string) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil && time.Since(l.checked) > leaseRecheck {
		if err := l.conn.Ping(ctx); err != nil { // the locks went with the session
			l.drop()
		} else {
			l.checked = time.Now()
		}
	}
	if l.conn == nil {
		pooled, err := l.db.pool.Acquire(ctx)
		if err != nil {
			return 0, fmt.Errorf("postgres lease: %w", err)
		}
		l.conn, l.checked = pooled.Hijack(), time.Now()
	}
	if epoch := l.held[name]; epoch > 0 {
		return epoch, nil
	}
	var ok bool
	if err := l.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+lockKey+`)`, "lease:"+name).Scan(&ok); err != nil {
		l.drop()
		return 0, fmt.Errorf("postgres lease: %w", err)
	}
	if !ok {
		return 0, nil
	}
	// Taken: a new epoch, on the lease's own connection, so that it is
	// written only while the lock is held.
	var epoch int64
	if err := l.conn.QueryRow(ctx, `INSERT INTO leases(name, epoch, holder, taken_at) VALUES ($1, 1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET epoch = leases.epoch + 1, holder = excluded.holder, taken_at = excluded.taken_at
		RETURNING epoch`, name, l.db.replica, time.Now().UnixMilli()).Scan(&epoch); err != nil {
		l.drop()
		return 0, fmt.Errorf("postgres lease %s: %w", name, err)
	}
	l.held[name] = epoch
	return epoch, nil
}

// drop closes the lease connection: every lease goes with it.
func (l *leases) drop() {
	_ = l.conn.Close(context.Background())
	l.conn, l.held = nil, map[string]int64{}
}

// closeLeases lets every lease go.
func (l *leases) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		l.drop()
	}
}
