package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// readPool is the read connections with a statement cache. modernc.org/sqlite
// compiles every ad-hoc query anew; a statement prepared once on the pool is
// prepared once per connection and reused (database/sql keeps one per
// connection). The queries are the store's own constants, so the cache
// stays small.
type readPool struct {
	*sql.DB
	stmts sync.Map // query text → *sql.Stmt
}

// stmt returns the cached statement for query, preparing it on first use;
// nil if it cannot be prepared (the caller then runs the query unprepared,
// which reports the same error).
func (p *readPool) stmt(ctx context.Context, query string) *sql.Stmt {
	if st, ok := p.stmts.Load(query); ok {
		return st.(*sql.Stmt)
	}
	st, err := p.DB.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	if prev, loaded := p.stmts.LoadOrStore(query, st); loaded {
		_ = st.Close()
		return prev.(*sql.Stmt)
	}
	return st
}

// QueryContext is sql.DB's, through the statement cache.
func (p *readPool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return p.DB.QueryContext(ctx, query, args...)
}

// QueryRowContext is sql.DB's, through the statement cache.
func (p *readPool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return p.DB.QueryRowContext(ctx, query, args...)
}

// Close closes the cached statements, then the connections.
func (p *readPool) Close() error {
	var errs []error
	p.stmts.Range(func(_, st any) bool {
		errs = append(errs, st.(*sql.Stmt).Close())
		return true
	})
	return errors.Join(append(errs, p.DB.Close())...)
}
