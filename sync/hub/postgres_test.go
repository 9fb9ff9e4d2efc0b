package hub_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/testenv"
	"github.com/edgestock/edgestock/sync/hub"
)

func startPGHub(t *testing.T, dsn string, agents []hub.Agent) *hub.Server {
	cfg := hub.Config{Store: dsn, DataDir: t.TempDir(), HTTP: "127.0.0.1:0", Agents: agents,
		Timing: hub.Timing{PollWait: 2 * time.Second, RetryMax: time.Second}}
	h := hub.NewServer(cfg, logger().With("role", "hub"))
	require.NoError(t, h.Open(t.Context()))
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	return h
}

// Two hub processes on one PostgreSQL pull the same agents at the same time
// and converge to the right totals, as do the agents' global views.
func TestHub_TwoHubsOnePostgres(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	whs := []string{"wh1", "wh2", "wh3"}
	agents := map[string]*testAgent{}
	var list []hub.Agent
	for _, wh := range whs {
		a := startAgent(t, wh, t.TempDir())
		agents[wh] = a
		list = append(list, hub.Agent{Warehouse: wh, URL: a.Base})
	}
	h1 := startPGHub(t, dsn, list)
	h2 := startPGHub(t, dsn, list)
	m := &model{n: map[string]map[string]int64{}}
	var wg sync.WaitGroup
	for w, wh := range whs {
		wg.Go(func() {
			for i := range 60 {
				sku := fmt.Sprint("P-", i%6)
				qty := int64(i%4 + 1)
				postJSON(t, agents[wh].Base+"/v1/events", fmt.Sprintf(`{"id":"%d","type":"receive","sku":%q,"qty":%d}`, i, sku, qty))
				m.add(wh, sku, qty)
			}
			_ = w
		})
	}
	// Central writes on both hubs at once, for the same warehouse.
	for i, h := range []*hub.Server{h1, h2} {
		wg.Go(func() {
			for j := range 10 {
				postJSON(t, "http://"+h.HTTPAddr()+"/v1/events?warehouse=wh1&device=erp", fmt.Sprintf(`{"id":"c%d-%d","type":"adjust","sku":"P-0","qty":-1}`, i, j))
				m.add("wh1", "P-0", -1)
			}
		})
	}
	wg.Wait()
	for _, h := range []*hub.Server{h1, h2} {
		hubURL := "http://" + h.HTTPAddr()
		if !assertEventually(func() bool { return m.converged(t, hubURL, agents) }, 30*time.Second) {
			m.explain(t, hubURL, agents)
			t.FailNow()
		}
	}
	checkStockList(t, "http://"+h1.HTTPAddr(), 6)
	var ws struct{ Warehouses []hub.WarehouseStatus }
	require.Equal(t, http.StatusOK, getJSON(t, "http://"+h1.HTTPAddr()+"/v1/warehouses", &ws))
	require.Len(t, ws.Warehouses, 3)
}

// On PostgreSQL each agent the hub dials is leased to one hub process,
// which alone pulls and pushes it; when that process goes, another takes
// the lease within seconds and goes on from the same cursors.
func TestHub_PostgresLeases(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	a := startAgent(t, "wh1", t.TempDir())
	list := []hub.Agent{{Warehouse: "wh1", URL: a.Base}}
	h1 := startPGHub(t, dsn, list)
	h2 := startPGHub(t, dsn, list)
	status := func(h *hub.Server) hub.WarehouseStatus {
		var w struct{ Warehouses []hub.WarehouseStatus }
		require.Equal(t, http.StatusOK, getJSON(t, "http://"+h.HTTPAddr()+"/v1/warehouses", &w))
		return w.Warehouses[0]
	}
	total := func(h *hub.Server) int64 {
		var v hub.StockView
		if getJSON(t, "http://"+h.HTTPAddr()+"/v1/stock/L-1", &v) != http.StatusOK {
			return -1
		}
		return v.OnHand
	}
	postJSON(t, a.Base+"/v1/events", `{"id":"r1","type":"receive","sku":"L-1","qty":4}`)
	require.Eventually(t, func() bool { return total(h1) == 4 && total(h2) == 4 }, 15*time.Second, 20*time.Millisecond)
	s1, s2 := status(h1), status(h2)
	require.NotEqual(t, s1.Elsewhere, s2.Elsewhere, "one process serves the agent: %+v %+v", s1, s2)
	holder, other := h1, h2
	if s1.Elsewhere {
		holder, other = h2, h1
	}
	require.Zero(t, status(other).Pulled, "the other pulled nothing")
	require.True(t, status(holder).Online)

	require.NoError(t, holder.Close(context.Background()))
	gone := time.Now()
	postJSON(t, a.Base+"/v1/events", `{"id":"r2","type":"receive","sku":"L-1","qty":3}`)
	require.Eventually(t, func() bool { s := status(other); return !s.Elsewhere && s.Online }, 15*time.Second, 20*time.Millisecond,
		"the other process takes the lease")
	t.Logf("lease taken over %v after the holder closed", time.Since(gone).Round(time.Millisecond))
	require.Eventually(t, func() bool { return total(other) == 7 }, 15*time.Second, 20*time.Millisecond)
}
