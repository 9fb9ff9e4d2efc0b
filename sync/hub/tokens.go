package hub

import (
	"context"
	"log/slog"
	"time"

	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/internal/store/pgstore"
)

// TokenStore is a hub's token records (SPEC §6), in its SQLite file or in
// the PostgreSQL database every hub process shares: the server's guard and
// `edgestock token --role hub` use it.
type TokenStore interface {
	auth.Recorder
	auth.Lookup
	Tokens(ctx context.Context) ([]store.TokenRecord, error)
	RevokeToken(ctx context.Context, id string, at time.Time) error
	Close() error
}

var (
	_ TokenStore = (*store.DB)(nil)
	_ TokenStore = (*pgstore.DB)(nil)
)

// OpenTokens opens a hub's store for its tokens, with the hub running or
// not: the SQLite store in dataDir (created if missing, so the first token
// can be issued before the hub ever starts), or the PostgreSQL database of
// storeURL that every hub process on it shares. It returns the store and
// the hub's signer.
func OpenTokens(ctx context.Context, dataDir, storeURL string) (TokenStore, auth.Signer, error) {
	var st backend
	var err error
	if storeURL != "" {
		st, err = pgstore.Open(ctx, storeURL, func() {}, slog.New(slog.DiscardHandler))
	} else {
		st, err = store.Open(ctx, dataDir, store.Options{Warehouse: storeWarehouse, Beside: true})
	}
	if err != nil {
		return nil, auth.Signer{}, err
	}
	signer, err := loadSigner(ctx, st, dataDir)
	if err != nil {
		_ = st.Close()
		return nil, auth.Signer{}, err
	}
	return st, signer, nil
}
