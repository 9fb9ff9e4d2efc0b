package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// TokenRecord is an issued token's claims and state.
type TokenRecord struct {
	ID     string
	Name   string
	Scopes []string
	Device string
	// Warehouse is the warehouse a hub's uplink token binds ("" for
	// other tokens, and for tokens issued before it was recorded).
	Warehouse string
	IssuedAt  time.Time
	ExpiresAt time.Time
	RevokedAt time.Time // zero while valid
}

// ErrTokenNotFound is returned for an unknown token id.
var ErrTokenNotFound = errors.New("no such token")

// AddToken records an issued token.
func (db *DB) AddToken(ctx context.Context, t TokenRecord) error {
	_, err := db.writer.ExecContext(ctx, `INSERT INTO tokens(id, name, scopes, device, warehouse, issued_at, expires_at) VALUES (?,?,?,?,?,?,?)`,
		t.ID, t.Name, strings.Join(t.Scopes, ","), t.Device, t.Warehouse, t.IssuedAt.UnixMilli(), t.ExpiresAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("add token: %w", err)
	}
	return nil
}

// RevokeToken marks a token revoked; it applies to the next request.
func (db *DB) RevokeToken(ctx context.Context, id string, at time.Time) error {
	res, err := db.writer.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, at.UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := db.Token(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// Token reads one token's record.
func (db *DB) Token(ctx context.Context, id string) (TokenRecord, error) {
	ts, err := db.tokens(ctx, `WHERE id = ?`, id)
	if err != nil {
		return TokenRecord{}, err
	}
	if len(ts) == 0 {
		return TokenRecord{}, fmt.Errorf("%w: %s", ErrTokenNotFound, id)
	}
	return ts[0], nil
}

// Tokens lists every issued token, newest first.
func (db *DB) Tokens(ctx context.Context) ([]TokenRecord, error) {
	return db.tokens(ctx, `ORDER BY issued_at DESC`)
}

// HasTokens reports whether any token was ever issued.
func (db *DB) HasTokens(ctx context.Context) (bool, error) {
	var n int
	err := db.reader.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens`).Scan(&n)
	return n > 0, err
}

func (db *DB) tokens(ctx context.Context, where string, args ...any) ([]TokenRecord, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT `+TokenColumns+` FROM tokens `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("query tokens: %w", err)
	}
	defer rows.Close()
	var out []TokenRecord
	for rows.Next() {
		t, err := ScanToken(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// TokenColumns are the columns ScanToken reads, in its order.
const TokenColumns = `id, name, scopes, device, warehouse, issued_at, expires_at, revoked_at`

// ScanToken reads a row of TokenColumns with scan: the tokens table is the
// same in every store.
func ScanToken(scan func(dest ...any) error) (TokenRecord, error) {
	var t TokenRecord
	var scopes string
	var issued, expires, revoked int64
	if err := scan(&t.ID, &t.Name, &scopes, &t.Device, &t.Warehouse, &issued, &expires, &revoked); err != nil {
		return TokenRecord{}, fmt.Errorf("query tokens: %w", err)
	}
	t.Scopes = strings.Split(scopes, ",")
	t.IssuedAt, t.ExpiresAt = time.UnixMilli(issued).UTC(), time.UnixMilli(expires).UTC()
	if revoked != 0 {
		t.RevokedAt = time.UnixMilli(revoked).UTC()
	}
	return t, nil
}
