package agent

import (
	"context"
	"net/http"
	"time"

	"github.com/edgestock/edgestock/internal/auth"
)

// authRequired says whether requests need a token: always on a non-loopback
// listener (SPEC §6), and on loopback when http.auth is "required".
func (a *Agent) authRequired() bool {
	return a.cfg.HTTP.Auth == "required" || !auth.IsLoopback(a.cfg.HTTP.Listen)
}

// newGuard checks the agent's own tokens: issued for its warehouse by its
// key, recorded and not revoked in its store.
func (a *Agent) newGuard() *auth.Guard {
	return &auth.Guard{Required: a.authRequired, Signer: a.signer, Tokens: a.store, Bound: auth.BoundToWarehouse(a.cfg.Warehouse), Now: now}
}

// requireScope wraps h with the agent's guard (see auth.Guard.Require).
func (a *Agent) requireScope(scope string, h http.HandlerFunc) http.HandlerFunc {
	return a.guard.Require(scope, h)
}

// IssueToken issues a token from a running agent (the CLI does the same
// on the data dir with the agent stopped or running).
func (a *Agent) IssueToken(ctx context.Context, name string, scopes []string, device string, ttl time.Duration) (string, auth.Claims, error) {
	return auth.Issue(ctx, a.store, a.signer, auth.Request{Name: name, Scopes: scopes, Device: device, Warehouse: a.cfg.Warehouse, TTL: ttl}, now())
}

// RevokeToken revokes a token; it applies to the next request.
func (a *Agent) RevokeToken(ctx context.Context, id string) error {
	return a.store.RevokeToken(ctx, id, now())
}
