package pgstore

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edgestock/edgestock/internal/store"
)

// The hub's tokens live in the shared database, so every hub process on it
// accepts the same tokens and a revocation reaches all of them on their
// next request. The signing key lives there too (meta 'token_key'):
// whoever can read the database can mint tokens, as with an agent's
// token.key file.
var tokenSchema = []string{
	`CREATE TABLE IF NOT EXISTS tokens (
		id TEXT PRIMARY KEY, name TEXT NOT NULL, scopes TEXT NOT NULL, device TEXT NOT NULL,
		issued_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, revoked_at BIGINT NOT NULL DEFAULT 0)`,
	// The warehouse a hub's uplink token binds (SPEC §11).
	`ALTER TABLE tokens ADD COLUMN IF NOT EXISTS warehouse TEXT NOT NULL DEFAULT ''`,
}

// SigningKey returns the database's token signing key, creating it once:
// the first hub process to ask makes it, every other one reads it.
func (db *DB) SigningKey(ctx context.Context, newKey func() []byte) ([]byte, error) {
	var key string
	err := db.write(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO meta(key, value) VALUES ('token_key', $1) ON CONFLICT (key) DO NOTHING`,
			hex.EncodeToString(newKey())); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT value FROM meta WHERE key = 'token_key'`).Scan(&key)
	})
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	b, err := hex.DecodeString(key)
	if err != nil {
		return nil, fmt.Errorf("token key in meta: %w", err)
	}
	return b, nil
}

// AddToken records an issued token.
func (db *DB) AddToken(ctx context.Context, t store.TokenRecord) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO tokens(id, name, scopes, device, warehouse, issued_at, expires_at) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
		t.ID, t.Name, strings.Join(t.Scopes, ","), t.Device, t.Warehouse, t.IssuedAt.UnixMilli(), t.ExpiresAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("add token: %w", err)
	}
	return nil
}

// RevokeToken marks a token revoked; it applies to the next request of
// every hub process.
func (db *DB) RevokeToken(ctx context.Context, id string, at time.Time) error {
	tag, err := db.pool.Exec(ctx, `UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at = 0`, at.UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if tag.RowsAffected() == 0 {
		_, err := db.Token(ctx, id)
		return err
	}
	return nil
}

// Token reads one token's record.
func (db *DB) Token(ctx context.Context, id string) (store.TokenRecord, error) {
	ts, err := db.tokens(ctx, `WHERE id = $1`, id)
	if err != nil {
		return store.TokenRecord{}, err
	}
	if len(ts) == 0 {
		return store.TokenRecord{}, fmt.Errorf("%w: %s", store.ErrTokenNotFound, id)
	}
	return ts[0], nil
}

// Tokens lists every issued token, newest first.
func (db *DB) Tokens(ctx context.Context) ([]store.TokenRecord, error) {
	return db.tokens(ctx, `ORDER BY issued_at DESC`)
}

// HasTokens reports whether any token was ever issued.
func (db *DB) HasTokens(ctx context.Context) (bool, error) {
	var ok bool
	err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tokens)`).Scan(&ok)
	return ok, err
}

func (db *DB) tokens(ctx context.Context, where string, args ...any) ([]store.TokenRecord, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+store.TokenColumns+` FROM tokens `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("query tokens: %w", err)
	}
	defer rows.Close()
	var out []store.TokenRecord
	for rows.Next() {
		t, err := store.ScanToken(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
