package auth_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/internal/store"
)

func openStore(t *testing.T, warehouse string) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), t.TempDir(), store.Options{Warehouse: warehouse})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestIssue_Refuses(t *testing.T) {
	db := openStore(t, "wh1")
	signer, err := auth.LoadSigner(t.TempDir())
	require.NoError(t, err)
	at := time.Now()
	for _, tc := range []struct {
		name string
		req  auth.Request
		want string
	}{
		{"no name", auth.Request{Scopes: []string{auth.ScopeAdmin}, TTL: time.Hour}, "name: required"},
		{"no scope", auth.Request{Name: "n", TTL: time.Hour}, "at least one"},
		{"unknown scope", auth.Request{Name: "n", Scopes: []string{"root"}, TTL: time.Hour}, `scope "root"`},
		{"wildcard device", auth.Request{Name: "n", Scopes: []string{auth.ScopeDevice}, Device: "d+", TTL: time.Hour}, `device "d+"`},
		{"multi-level device", auth.Request{Name: "n", Scopes: []string{auth.ScopeDevice}, Device: "#", TTL: time.Hour}, `device "#"`},
		{"device with a space", auth.Request{Name: "n", Scopes: []string{auth.ScopeDevice}, Device: "d 1", TTL: time.Hour}, `device "d 1"`},
		{"device scope, no device", auth.Request{Name: "n", Scopes: []string{auth.ScopeDevice}, TTL: time.Hour}, "--device"},
		{"no ttl", auth.Request{Name: "n", Scopes: []string{auth.ScopeAdmin}}, "ttl"},
		{"channel on an agent", auth.Request{Name: "n", Scopes: []string{auth.ScopeStockRead}, Channel: "amazon", TTL: time.Hour}, "--role hub"},
		{"channel local", auth.Request{Name: "n", Scopes: []string{auth.ScopeStockRead}, Channel: "local", Audience: auth.AudienceHub, TTL: time.Hour}, `channel "local"`},
		{"channel with admin", auth.Request{Name: "n", Scopes: []string{auth.ScopeAdmin}, Channel: "amazon", Audience: auth.AudienceHub, TTL: time.Hour}, `scope "admin"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := auth.Issue(t.Context(), db, signer, tc.req, at)
			require.ErrorContains(t, err, tc.want)
		})
	}
	tokens, err := db.Tokens(t.Context())
	require.NoError(t, err)
	require.Empty(t, tokens, "a refused request records nothing")
}

func TestClaims_Has(t *testing.T) {
	admin := auth.Claims{Scopes: []string{auth.ScopeAdmin}}
	require.True(t, admin.Has(auth.ScopeOrdersWrite))
	require.False(t, admin.Has(auth.ScopeDevice), "admin is not a device")
	require.True(t, admin.HasAPIScope())
	device := auth.Claims{Scopes: []string{auth.ScopeDevice}, Device: "d1"}
	require.True(t, device.Has(auth.ScopeDevice))
	require.False(t, device.HasAPIScope())
}

// A guarded handler answers by the token's binding, scope and state.
func TestGuard_Require(t *testing.T) {
	hubDB, agentDB := openStore(t, "hub"), openStore(t, "wh1")
	hubSigner, err := auth.LoadSigner(t.TempDir())
	require.NoError(t, err)
	agentSigner, err := auth.LoadSigner(t.TempDir())
	require.NoError(t, err)
	guard := &auth.Guard{Signer: hubSigner, Tokens: hubDB, Bound: auth.BoundToHub}
	issue := func(db *store.DB, s auth.Signer, req auth.Request) string {
		if req.TTL == 0 {
			req.TTL = time.Hour
		}
		tok, _, err := auth.Issue(t.Context(), db, s, req, time.Now())
		require.NoError(t, err)
		return tok
	}
	reader := issue(hubDB, hubSigner, auth.Request{Name: "oms", Scopes: []string{auth.ScopeStockRead}, Audience: auth.AudienceHub})
	// Signed with the hub's key but for a warehouse: not a hub token.
	forWarehouse := issue(hubDB, hubSigner, auth.Request{Name: "x", Scopes: []string{auth.ScopeAdmin}, Warehouse: "wh1"})
	agentToken := issue(agentDB, agentSigner, auth.Request{Name: "x", Scopes: []string{auth.ScopeAdmin}, Warehouse: "wh1"})
	h := guard.Require(auth.ScopeStockRead, func(w http.ResponseWriter, r *http.Request) {
		c, ok := auth.ClaimsOf(r)
		require.True(t, ok)
		require.Equal(t, "oms", c.Name)
		w.WriteHeader(http.StatusNoContent)
	})
	write := guard.Require(auth.ScopeOrdersWrite, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for _, tc := range []struct {
		name, header string
		handler      http.HandlerFunc
		want         int
	}{
		{"none", "", h, http.StatusUnauthorized},
		{"basic scheme", "Basic " + reader, h, http.StatusUnauthorized},
		{"valid", "Bearer " + reader, h, http.StatusNoContent},
		{"scheme in any case", "BEARER " + reader, h, http.StatusNoContent},
		{"lacks scope", "Bearer " + reader, write, http.StatusForbidden},
		{"warehouse token", "Bearer " + forWarehouse, h, http.StatusForbidden},
		{"another issuer's key", "Bearer " + agentToken, h, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/v1/stock", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			rec := httptest.NewRecorder()
			tc.handler(rec, req)
			require.Equal(t, tc.want, rec.Code, rec.Body.String())
		})
	}
}
