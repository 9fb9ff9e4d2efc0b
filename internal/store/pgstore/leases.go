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

// leases are this process's leases on agents the hub dials: session
// advisory locks on one connection of its own. They last while the
// connection does: a process that dies or loses the database lets them
// go at once, and one that only stalls keeps them, so no two processes
// serve an agent at the same time.
type leases struct {
	db      *DB
	mu      sync.Mutex
	conn    *pgx.Conn
	held    map[string]bool
	checked time.Time
}

// Lease reports whether this process holds the lease named name, taking
// it when it is free.
func (db *DB) Lease(ctx context.Context, name string) (bool, error) {
	db.leaseOnce.Do(func() { db.leases = &leases{db: db, held: map[string]bool{}} })
	return db.leases.hold(ctx, name)
}

func (l *leases) hold(ctx context.Context, name string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil && time.Since(l.checked) > leaseRecheck {
		if err := l.conn.Ping(ctx); err != nil { // the locks went with the session
			_ = l.conn.Close(context.Background())
			l.conn, l.held = nil, map[string]bool{}
		} else {
			l.checked = time.Now()
		}
	}
	if l.conn == nil {
		pooled, err := l.db.pool.Acquire(ctx)
		if err != nil {
			return false, fmt.Errorf("postgres lease: %w", err)
		}
		l.conn, l.checked = pooled.Hijack(), time.Now()
	}
	if l.held[name] {
		return true, nil
	}
	var ok bool
	if err := l.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext($1))`, "edgestock:lease:"+name).Scan(&ok); err != nil {
		_ = l.conn.Close(context.Background())
		l.conn, l.held = nil, map[string]bool{}
		return false, fmt.Errorf("postgres lease: %w", err)
	}
	l.held[name] = ok
	return ok, nil
}

// closeLeases lets every lease go.
func (l *leases) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		_ = l.conn.Close(context.Background())
		l.conn, l.held = nil, map[string]bool{}
	}
}
