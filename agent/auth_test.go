package agent_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/internal/auth"
)

// Every endpoint × {no token, wrong scope, expired, revoked, valid}.
func TestAuth_EveryEndpoint(t *testing.T) {
	a := startAgentAuth(t)
	ctx := t.Context()
	issue := func(scopes ...string) (string, auth.Claims) {
		device := ""
		if scopes[0] == auth.ScopeDevice {
			device = "d1"
		}
		tok, c, err := a.IssueToken(ctx, "t", scopes, device, time.Hour)
		require.NoError(t, err)
		return tok, c
	}
	for _, ep := range []struct {
		method, path, body, scope string
		want                      int // with a valid token
	}{
		{"GET", "/readyz", "", "", 200},
		{"GET", "/metrics", "", "", 200},
		{"GET", "/v1/status", "", auth.ScopeStockRead, 200},
		{"GET", "/v1/stock/NEVER", "", auth.ScopeStockRead, 404},
		{"GET", "/v1/stock", "", auth.ScopeStockRead, 200},
		{"POST", "/v1/events", `{"id":"x","type":"receive","sku":"S","qty":1}`, auth.ScopeEventsWrite, 200},
		{"GET", "/v1/events", "", auth.ScopeStockRead, 200},
		{"GET", "/v1/quarantine", "", auth.ScopeAdmin, 200},
		{"GET", "/v1/alerts", "", auth.ScopeStockRead, 200},
		{"GET", "/v1/sync/deltas", "", auth.ScopeSync, 200},
		{"POST", "/v1/sync/merge", `{"entries":[]}`, auth.ScopeSync, 200},
		{"GET", "/v1/sync/state", "", auth.ScopeSync, 200},
		{"POST", "/v1/reservations", `{"sku":"S","qty":1}`, auth.ScopeReservationsWrite, 0}, // 201 or 409, never 401/403
		{"GET", "/v1/reservations/none", "", auth.ScopeStockRead, 404},
		{"POST", "/v1/reservations/none/renew", `{"ttl":"1m"}`, auth.ScopeReservationsWrite, 404},
		{"POST", "/v1/reservations/none/commit", ``, auth.ScopeReservationsWrite, 404},
		{"DELETE", "/v1/reservations/none", "", auth.ScopeReservationsWrite, 404},
		{"GET", "/debug/pprof/heap?debug=1", "", auth.ScopeAdmin, 200},
		{"GET", "/debug/pprof/profile?seconds=1", "", auth.ScopeAdmin, 200},
	} {
		t.Run(ep.method+" "+ep.path, func(t *testing.T) {
			scope := ep.scope
			if scope == "" {
				scope = auth.ScopeStockRead
			}
			valid, _ := issue(scope)
			admin, _ := issue(auth.ScopeAdmin)
			device, _ := issue(auth.ScopeDevice)
			revoked, rc := issue(scope)
			require.NoError(t, a.RevokeToken(ctx, rc.ID))
			expired, _ := issueExpired(t, a, scope)
			cases := []struct {
				name, token string
				want        int
			}{
				{"no token", "", http.StatusUnauthorized},
				{"garbage", "es1.nope.nope", http.StatusUnauthorized},
				{"expired", expired, http.StatusUnauthorized},
				{"revoked", revoked, http.StatusUnauthorized},
				{"valid", valid, ep.want},
				{"admin", admin, ep.want},
				{"lowercase scheme", "bearer " + valid, ep.want},
				// A device token opens MQTT only, not even /readyz or /metrics.
				{"device token", device, http.StatusForbidden},
			}
			for _, c := range cases {
				req, err := http.NewRequest(ep.method, a.Base+ep.path, strings.NewReader(ep.body))
				require.NoError(t, err)
				switch {
				case strings.Contains(c.token, " "):
					req.Header.Set("Authorization", c.token)
				case c.token != "":
					req.Header.Set("Authorization", "Bearer "+c.token)
				}
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				resp.Body.Close()
				switch {
				case c.want != 0:
					require.Equal(t, c.want, resp.StatusCode, c.name)
				default:
					require.NotContains(t, []int{401, 403}, resp.StatusCode, c.name)
				}
			}
		})
	}
	// Profiles are an operator's: a reader's token opens none.
	reader, _ := issue(auth.ScopeStockRead)
	req, err := http.NewRequest("GET", a.Base+"/debug/pprof/heap", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+reader)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	resp, err = http.Get(a.Base + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "/healthz needs no token")
}

func startAgentAuth(t *testing.T) *testAgent {
	t.Helper()
	return startAgentNoWait(t, t.TempDir(), func(c *agent.Config) { c.HTTP.Auth = "required" })
}

// issueExpired issues a token that expired a second ago.
func issueExpired(t *testing.T, a *testAgent, scope string) (string, auth.Claims) {
	tok, c, err := a.IssueToken(t.Context(), "old", []string{scope}, "", time.Millisecond)
	require.NoError(t, err)
	// Expiry has second resolution: wait until the token's second is over.
	time.Sleep(time.Until(time.Unix(c.Expires, 0)) + 10*time.Millisecond)
	return tok, c
}

func TestAuth_NonLoopbackNeedsTokens(t *testing.T) {
	cfg := agent.DefaultConfig()
	cfg.Warehouse, cfg.DataDir = "wh1", t.TempDir()
	cfg.HTTP.Listen, cfg.MQTT.Listen = "0.0.0.0:0", "127.0.0.1:0"
	cfg.Normalize()
	require.NoError(t, cfg.Validate())
	err := agent.New(cfg, testLogger(t)).Open(t.Context())
	require.ErrorContains(t, err, "no token has been issued")
	require.ErrorContains(t, err, "edgestock token issue")
}
