package hub_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/internal/ingest"
	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/internal/testenv"
	"github.com/edgestock/edgestock/sync/hub"
)

// startHubAuth runs a hub that requires tokens on loopback too, over one
// agent, on SQLite or (dsn set) PostgreSQL.
func startHubAuth(t *testing.T, dsn string, agents ...hub.Agent) *hub.Server {
	t.Helper()
	cfg := hub.Config{Store: dsn, DataDir: t.TempDir(), HTTP: "127.0.0.1:0", Auth: "required", Agents: agents,
		Timing: hub.Timing{PollWait: time.Second, RetryMax: time.Second}}
	h := hub.NewServer(cfg, logger())
	require.NoError(t, h.Open(t.Context()))
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	return h
}

func do(t *testing.T, method, url, token, body string) int {
	t.Helper()
	return send(t, method, url, token, body, nil)
}

// Every route of the hub but /healthz refuses a request without a valid
// hub token of its scope: the probe's unauthenticated -1,000,000 adjust
// is refused, and so are reads of stock, feed, warehouses and metrics.
func TestHub_AuthEveryRoute(t *testing.T) {
	a := startAgent(t, "wh1", t.TempDir())
	h := startHubAuth(t, "", hub.Agent{Warehouse: "wh1", URL: a.Base})
	base := "http://" + h.HTTPAddr()
	ctx := t.Context()
	issue := func(scopes ...string) (string, auth.Claims) {
		tok, c, err := h.IssueToken(ctx, "t", scopes, time.Hour)
		require.NoError(t, err)
		return tok, c
	}
	agentAdmin, _, err := a.IssueToken(ctx, "agent admin", []string{auth.ScopeAdmin}, "", time.Hour)
	require.NoError(t, err)
	for _, ep := range []struct {
		method, path, body, scope string
		want                      int // with a valid token
	}{
		{"GET", "/readyz", "", "", 200},
		{"GET", "/metrics", "", "", 200},
		{"GET", "/v1/stock/NEVER", "", auth.ScopeStockRead, 404},
		{"GET", "/v1/stock", "", auth.ScopeStockRead, 200},
		{"GET", "/v1/warehouses", "", auth.ScopeStockRead, 200},
		{"GET", "/v1/feed", "", auth.ScopeStockRead, 200},
		{"POST", "/v1/events?warehouse=wh1", `{"id":"adj","type":"adjust","sku":"S","qty":-1000000}`, auth.ScopeEventsWrite, 200},
		{"GET", "/v1/ats/S?channel=amazon", "", auth.ScopeStockRead, 200},
		{"GET", "/v1/ats?channel=amazon", "", auth.ScopeStockRead, 200},
		{"POST", "/v1/orders", `{"id":"o","channel":"amazon","lines":[{"sku":"S","qty":1}]}`, auth.ScopeOrdersWrite, 409},
		{"GET", "/v1/orders/o", "", auth.ScopeStockRead, 404},
		{"POST", "/v1/orders/o/cancel", "", auth.ScopeOrdersWrite, 404},
		{"POST", "/v1/allotments", `{"id":"a","warehouse":"wh1","sku":"S","channel":"web","qty":1}`, auth.ScopeAdmin, 409},
		{"POST", "/v1/holds", `{"id":"h","sku":"S","channel":"web","qty":1}`, auth.ScopeOrdersWrite, 409},
		{"GET", "/v1/holds/h", "", auth.ScopeStockRead, 404},
		{"POST", "/v1/holds/h/renew", "", auth.ScopeOrdersWrite, 404},
		{"POST", "/v1/holds/h/commit", "", auth.ScopeOrdersWrite, 404},
		{"DELETE", "/v1/holds/h", "", auth.ScopeOrdersWrite, 404},
		{"POST", "/v1/releases", `{"id":"r","warehouse":"wh1","sku":"S","channel":"amazon","qty":1}`, auth.ScopeOrdersWrite, 409},
	} {
		t.Run(ep.method+" "+ep.path, func(t *testing.T) {
			scope := ep.scope
			if scope == "" {
				scope = auth.ScopeStockRead
			}
			valid, _ := issue(scope)
			admin, _ := issue(auth.ScopeAdmin)
			orders, _ := issue(auth.ScopeOrdersWrite)
			revoked, rc := issue(scope)
			require.NoError(t, h.RevokeToken(ctx, rc.ID))
			cases := []struct {
				name, token string
				want        int
			}{
				{"no token", "", http.StatusUnauthorized},
				{"garbage", "es1.nope.nope", http.StatusUnauthorized},
				{"revoked", revoked, http.StatusUnauthorized},
				{"an agent's token", agentAdmin, http.StatusUnauthorized},
				{"valid", valid, ep.want},
				{"admin", admin, ep.want},
			}
			if ep.scope != "" && ep.scope != auth.ScopeOrdersWrite {
				cases = append(cases, struct {
					name, token string
					want        int
				}{"wrong scope", orders, http.StatusForbidden})
			}
			for _, c := range cases {
				require.Equal(t, c.want, do(t, ep.method, base+ep.path, c.token, ep.body), c.name)
			}
		})
	}
	require.Equal(t, http.StatusOK, do(t, "GET", base+"/healthz", "", ""), "/healthz needs no token")
}

// Beyond loopback the hub refuses to start before a token exists, and
// says how to issue one; it listens on nothing meanwhile.
func TestHub_NonLoopbackNeedsTokens(t *testing.T) {
	cfg := hub.Config{DataDir: t.TempDir(), HTTP: "0.0.0.0:0", Auth: "auto"}
	err := hub.NewServer(cfg, logger()).Open(t.Context())
	require.ErrorIs(t, err, auth.ErrNoToken)
	require.ErrorContains(t, err, "edgestock token issue --role hub")
}

// On PostgreSQL the tokens live in the shared database: a token issued
// through one hub process opens every other, and a revocation on one is
// refused by the others from their next request.
func TestHub_TokensSharedOnPostgres(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	h1, h2 := startHubAuth(t, dsn), startHubAuth(t, dsn)
	tok, c, err := h1.IssueToken(t.Context(), "oms", []string{auth.ScopeStockRead}, time.Hour)
	require.NoError(t, err)
	url2 := "http://" + h2.HTTPAddr() + "/v1/stock"
	require.Equal(t, http.StatusOK, do(t, "GET", url2, tok, ""))
	require.NoError(t, h1.RevokeToken(t.Context(), c.ID))
	require.Equal(t, http.StatusUnauthorized, do(t, "GET", url2, tok, ""))
}

// A central write names one of the hub's agents: a write for a warehouse
// nobody runs would appear in the global view as stock that is nowhere.
func TestHub_UnknownWarehouseRefused(t *testing.T) {
	a := startAgent(t, "wh1", t.TempDir())
	h := startHub(t, t.TempDir(), map[string]string{"wh1": a.Base})
	base := "http://" + h.HTTPAddr()
	require.Equal(t, http.StatusNotFound, do(t, "POST", base+"/v1/events?warehouse=wh7", "", `{"id":"x","type":"receive","sku":"U","qty":5}`))
	require.Equal(t, int64(-1), hubStock(t, base, "U", "wh7"), "nothing written for wh7")
}

// A configured, idle agent is online from the first exchange, not after
// the first long poll ends (20 s by default).
func TestHub_OnlineAtFirstExchange(t *testing.T) {
	a := startAgent(t, "wh1", t.TempDir())
	cfg := hub.Config{DataDir: t.TempDir(), HTTP: "127.0.0.1:0", Agents: []hub.Agent{{Warehouse: "wh1", URL: a.Base}},
		Timing: hub.Timing{PollWait: time.Minute, RetryMax: time.Second}}
	h := hub.NewServer(cfg, logger())
	require.NoError(t, h.Open(t.Context()))
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	require.Eventually(t, func() bool {
		var ws struct{ Warehouses []hub.WarehouseStatus }
		getJSON(t, "http://"+h.HTTPAddr()+"/v1/warehouses", &ws)
		return ws.Warehouses[0].Online
	}, 10*time.Second, 20*time.Millisecond)
}

// One hub per SQLite data dir: a second would write under the same replica.
func TestHub_DataDirLocked(t *testing.T) {
	dir := t.TempDir()
	startHub(t, dir, nil)
	err := hub.NewServer(hub.Config{DataDir: dir, HTTP: "127.0.0.1:0"}, logger()).Open(t.Context())
	require.ErrorContains(t, err, "locked")
}

// The hub's POST /v1/events is the agent's (internal/ingest): a body that
// is not JSON is 400 bad_json, one over 1 MiB is 413 too_large, each with
// the rejection as its result.
func TestHub_CentralWriteRejections(t *testing.T) {
	a := startAgent(t, "wh1", t.TempDir())
	h := startHub(t, t.TempDir(), map[string]string{"wh1": a.Base})
	url := "http://" + h.HTTPAddr() + "/v1/events?warehouse=wh1"
	for _, tc := range []struct {
		name, body string
		status     int
		reason     string
	}{
		{"not json", "{nope", http.StatusBadRequest, "bad_json"},
		{"too large", `{"pad":"` + strings.Repeat("x", 2<<20) + `"}`, http.StatusRequestEntityTooLarge, "too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(url, "application/json", strings.NewReader(tc.body))
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, tc.status, resp.StatusCode)
			var got ingest.EventsResponse
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
			require.Len(t, got.Results, 1)
			require.Equal(t, tc.reason, string(got.Results[0].Reason))
		})
	}
}

// A store that does not open (here an agent's data dir, of another
// warehouse) is an error naming it, not a panic closing a nil store.
func TestHub_StoreOpenFails(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(t.Context(), dir, store.Options{Warehouse: "wh1"})
	require.NoError(t, err)
	require.NoError(t, db.Close())
	err = hub.NewServer(hub.Config{DataDir: dir, HTTP: "127.0.0.1:0"}, logger()).Open(t.Context())
	require.ErrorIs(t, err, store.ErrWrongWarehouse)
}
