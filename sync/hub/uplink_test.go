package hub_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/agent/agenttest"
	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/internal/testenv"
	"github.com/edgestock/edgestock/sync/hub"
)

// startUplinkAgent runs an agent that dials hubs (no inbound address is
// given to any hub).
func startUplinkAgent(t *testing.T, wh, dir, token string, hubs ...string) *testAgent {
	return agenttest.StartNoWait(t, wh, dir, func(c *agent.Config) {
		c.Live.Enabled = false
		c.Hub = agent.HubUplink{URL: strings.Join(hubs, ","), Token: token}
	}, logger().With("warehouse", wh))
}

func uplinkToken(t *testing.T, h *hub.Server, wh string) (string, auth.Claims) {
	tok, c, err := h.Issue(t.Context(), auth.Request{Name: wh + " uplink", Scopes: []string{auth.ScopeUplink}, Warehouse: wh, TTL: time.Hour})
	require.NoError(t, err)
	return tok, c
}

func hubOnHand(t *testing.T, h *hub.Server, token, sku string) int64 {
	var v hub.StockView
	if send(t, "GET", "http://"+h.HTTPAddr()+"/v1/stock/"+sku, token, "", &struct{}{}) != http.StatusOK {
		return -1
	}
	send(t, "GET", "http://"+h.HTTPAddr()+"/v1/stock/"+sku, token, "", &v)
	return v.OnHand
}

func online(t *testing.T, h *hub.Server, token, wh string) bool {
	var w struct{ Warehouses []hub.WarehouseStatus }
	send(t, "GET", "http://"+h.HTTPAddr()+"/v1/warehouses", token, "", &w)
	for _, s := range w.Warehouses {
		if s.Warehouse == wh {
			return s.Online
		}
	}
	return false
}

// An agent the hub cannot reach dials it: the hub pulls and pushes over
// that connection as it would over its own; a token for another
// warehouse is refused, and a revoked one is cut off within a second.
func TestUplink_SyncRefuseRevoke(t *testing.T) {
	h := startHubAuth(t, "", hub.Agent{Warehouse: "wh1", URL: hub.UplinkURL}, hub.Agent{Warehouse: "wh2", URL: hub.UplinkURL})
	base := "http://" + h.HTTPAddr()
	ops, _, err := h.IssueToken(t.Context(), "ops", []string{auth.ScopeAdmin}, time.Hour)
	require.NoError(t, err)
	tok1, c1 := uplinkToken(t, h, "wh1")
	a := startUplinkAgent(t, "wh1", t.TempDir(), tok1, base)
	postJSON(t, a.Base+"/v1/events", `{"id":"r1","type":"receive","sku":"U-1","qty":7}`)
	require.Eventually(t, func() bool { return hubOnHand(t, h, ops, "U-1") == 7 }, 15*time.Second, 20*time.Millisecond)
	require.True(t, online(t, h, ops, "wh1"))
	var w struct{ Warehouses []hub.WarehouseStatus }
	send(t, "GET", base+"/v1/warehouses", ops, "", &w)
	require.Equal(t, hub.UplinkURL, w.Warehouses[0].URL)

	// The hub's writes reach the agent over the uplink too (a push).
	require.Equal(t, http.StatusOK, send(t, "POST", base+"/v1/events?warehouse=wh1", ops, `{"id":"c1","type":"adjust","sku":"U-1","qty":-2}`, nil))
	require.Eventually(t, func() bool { return a.OnHand(t, "U-1") == 5 }, 15*time.Second, 20*time.Millisecond)
	// And a relayed allotment.
	require.Equal(t, http.StatusCreated, send(t, "POST", base+"/v1/allotments", ops, `{"id":"al-1","warehouse":"wh1","sku":"U-1","channel":"web","qty":2}`, nil))

	// An uplink token opens the uplink alone.
	for _, path := range []string{"/v1/stock", "/metrics", "/readyz", "/v1/openapi.yaml"} {
		require.Equal(t, http.StatusForbidden, send(t, "GET", base+path, tok1, "", nil), path)
	}

	// wh1's token cannot sync as wh2.
	thief := startUplinkAgent(t, "wh2", t.TempDir(), tok1, base)
	postJSON(t, thief.Base+"/v1/events", `{"id":"r1","type":"receive","sku":"U-2","qty":1}`)
	time.Sleep(time.Second) // a refused uplink must not need this to stay refused
	require.False(t, online(t, h, ops, "wh2"))
	require.Equal(t, int64(-1), hubOnHand(t, h, ops, "U-2"), "nothing of wh2 reached the hub")

	// Revoked: cut off within a second, and not let back in.
	require.NoError(t, h.RevokeToken(t.Context(), c1.ID))
	revoked := time.Now()
	require.Eventually(t, func() bool { return !online(t, h, ops, "wh1") }, 15*time.Second, 20*time.Millisecond)
	t.Logf("offline %v after the revocation", time.Since(revoked))
	postJSON(t, a.Base+"/v1/events", `{"id":"r2","type":"receive","sku":"U-1","qty":100}`)
	time.Sleep(2 * time.Second) // it must not arrive, however long one waits
	require.Equal(t, int64(5), hubOnHand(t, h, ops, "U-1"), "nothing after the revocation reached the hub")
}

// Two hub processes on one PostgreSQL; agents dial H1, and H2 when H1
// goes: totals exact at both, events sent meanwhile arrive, nothing
// counted twice.
func TestUplink_Failover(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	agents := []hub.Agent{{Warehouse: "wh1", URL: hub.UplinkURL}, {Warehouse: "wh2", URL: hub.UplinkURL}}
	h1, h2 := startHubAuth(t, dsn, agents...), startHubAuth(t, dsn, agents...)
	ops, _, err := h1.IssueToken(t.Context(), "ops", []string{auth.ScopeAdmin}, time.Hour)
	require.NoError(t, err)
	urls := []string{"http://" + h1.HTTPAddr(), "http://" + h2.HTTPAddr()}
	var as []*testAgent
	for i, wh := range []string{"wh1", "wh2"} {
		tok, _ := uplinkToken(t, h1, wh)
		as = append(as, startUplinkAgent(t, wh, t.TempDir(), tok, urls...))
		postJSON(t, as[i].Base+"/v1/events", fmt.Sprintf(`{"id":"r1","type":"receive","sku":"F-1","qty":%d}`, 10*(i+1)))
	}
	for _, h := range []*hub.Server{h1, h2} {
		require.Eventually(t, func() bool { return hubOnHand(t, h, ops, "F-1") == 30 }, 15*time.Second, 20*time.Millisecond)
	}

	require.NoError(t, h1.Close(context.Background())) // the agents lose it
	for i, a := range as {
		postJSON(t, a.Base+"/v1/events", fmt.Sprintf(`{"id":"r2","type":"receive","sku":"F-1","qty":%d}`, i+1))
	}
	require.Eventually(t, func() bool { return online(t, h2, ops, "wh1") && online(t, h2, ops, "wh2") }, 15*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool { return hubOnHand(t, h2, ops, "F-1") == 33 }, 15*time.Second, 20*time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, int64(33), hubOnHand(t, h2, ops, "F-1"), "nothing counted twice")
}

// The hub needs no --agent entry for an agent that dials it (SPEC §11):
// the uplink token it issued for a warehouse makes the warehouse one of
// its agents, at once for orders and views, and again after a restart
// before the agent has dialled.
func TestUplink_NoAgentEntry(t *testing.T) {
	dir := t.TempDir()
	open := func() *hub.Server {
		h := hub.NewServer(hub.Config{DataDir: dir, HTTP: "127.0.0.1:0", Auth: "required",
			Timing: hub.Timing{PollWait: time.Second, RetryMax: time.Second}}, logger())
		require.NoError(t, h.Open(t.Context()))
		t.Cleanup(func() { _ = h.Close(context.Background()) })
		return h
	}
	h := open()
	ops, _, err := h.IssueToken(t.Context(), "ops", []string{auth.ScopeAdmin}, time.Hour)
	require.NoError(t, err)
	warehouses := func(h *hub.Server) []string {
		var w struct{ Warehouses []hub.WarehouseStatus }
		require.Equal(t, http.StatusOK, send(t, "GET", "http://"+h.HTTPAddr()+"/v1/warehouses", ops, "", &w))
		var ids []string
		for _, s := range w.Warehouses {
			require.Equal(t, hub.UplinkURL, s.URL)
			ids = append(ids, s.Warehouse)
		}
		return ids
	}
	require.Empty(t, warehouses(h))

	tok, _ := uplinkToken(t, h, "wh1")
	_, c3 := uplinkToken(t, h, "wh3")
	require.Eventually(t, func() bool { return len(warehouses(h)) == 2 }, 10*time.Second, 50*time.Millisecond,
		"a warehouse is the hub's once it issued its uplink token")
	require.Equal(t, []string{"wh1", "wh3"}, warehouses(h))
	a := startUplinkAgent(t, "wh1", t.TempDir(), tok, "http://"+h.HTTPAddr())
	postJSON(t, a.Base+"/v1/events", `{"id":"r1","type":"receive","sku":"N-1","qty":4}`)
	require.Eventually(t, func() bool { return hubOnHand(t, h, ops, "N-1") == 4 }, 15*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return online(t, h, ops, "wh1") }, 15*time.Second, 20*time.Millisecond)
	// The hub's writes for it are taken and reach it.
	require.Equal(t, http.StatusOK, send(t, "POST", "http://"+h.HTTPAddr()+"/v1/events?warehouse=wh1", ops, `{"id":"c1","type":"adjust","sku":"N-1","qty":-1}`, nil))
	require.Eventually(t, func() bool { return a.OnHand(t, "N-1") == 3 }, 15*time.Second, 20*time.Millisecond)
	require.Equal(t, http.StatusNotFound, send(t, "POST", "http://"+h.HTTPAddr()+"/v1/events?warehouse=wh2", ops, `{"id":"c2","type":"adjust","sku":"N-1","qty":-1}`, nil),
		"wh2 has no uplink token: not the hub's")

	// A revoked token's warehouse is not found again after a restart; a
	// valid one's is, before its agent dials.
	require.NoError(t, a.Close(context.Background()))
	require.NoError(t, h.RevokeToken(t.Context(), c3.ID))
	require.NoError(t, h.Close(context.Background()))
	h = open()
	require.Equal(t, []string{"wh1"}, warehouses(h))
	require.False(t, online(t, h, ops, "wh1"))
	require.Equal(t, int64(3), hubOnHand(t, h, ops, "N-1"))
}

// An agent whose first hub URL answers nothing moves to the next (SPEC
// §11), here with one hub on SQLite.
func TestUplink_NextURL(t *testing.T) {
	h := startHubAuth(t, "")
	ops, _, err := h.IssueToken(t.Context(), "ops", []string{auth.ScopeAdmin}, time.Hour)
	require.NoError(t, err)
	tok, _ := uplinkToken(t, h, "wh1")
	dead := "http://" + testenv.FreeAddr(t) // nothing listens there
	a := startUplinkAgent(t, "wh1", t.TempDir(), tok, dead, "http://"+h.HTTPAddr())
	postJSON(t, a.Base+"/v1/events", `{"id":"r1","type":"receive","sku":"NX-1","qty":2}`)
	require.Eventually(t, func() bool { return hubOnHand(t, h, ops, "NX-1") == 2 }, 15*time.Second, 20*time.Millisecond)
	require.True(t, online(t, h, ops, "wh1"))
}
