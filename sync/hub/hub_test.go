package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/agent/agenttest"
	_ "github.com/edgestock/edgestock/drivers/all"
	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/sync/hub"
)

func logger() *slog.Logger { return agenttest.Logger() }

// proxy forwards TCP to target and can cut the link: Cut closes every
// connection and refuses new ones until Restore.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.Cut() })
	return p
}

func (p *proxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target) // under p.mu
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close(); c.Close() }()
		go func() { _, _ = io.Copy(c, up); up.Close(); c.Close() }()
	}
}

func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

// SetTarget points the proxy at a restarted agent.
func (p *proxy) SetTarget(addr string) {
	p.mu.Lock()
	p.target = addr
	p.mu.Unlock()
}

func (p *proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

type testAgent = agenttest.Agent

// startAgent runs an agent for wh in dir (no live topics: nobody reads them).
func startAgent(t testing.TB, wh, dir string) *testAgent {
	return agenttest.StartNoWait(t, wh, dir, func(c *agent.Config) { c.Live.Enabled = false }, logger().With("warehouse", wh))
}

func postJSON(t testing.TB, url, body string) {
	resp, err := http.Post(url, "application/json", bytes.NewBufferString(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func getJSON(t testing.TB, url string, out any) int {
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && out != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
	}
	return resp.StatusCode
}

func startHub(t testing.TB, dir string, agents map[string]string) *hub.Server {
	cfg := hub.DefaultFileConfig()
	cfg.DataDir, cfg.HTTP, cfg.Agents = dir, "127.0.0.1:0", agents
	sc, err := cfg.Validate()
	require.NoError(t, err)
	// Short polls and backoff keep the tests quick; the loops are the same.
	sc.Timing = hub.Timing{PollWait: 2 * time.Second, RetryMax: time.Second}
	h := hub.NewServer(sc, logger().With("role", "hub"))
	require.NoError(t, h.Open(t.Context()))
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	return h
}

// model is the expected stock: the sum of all applied events per key.
type model struct {
	mu sync.Mutex
	n  map[string]map[string]int64 // sku -> warehouse -> on_hand
}

func (m *model) add(wh, sku string, d int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n[sku] == nil {
		m.n[sku] = map[string]int64{}
	}
	m.n[sku][wh] += d
}

// converged reports whether the hub and every agent's global view match.
func (m *model) converged(t *testing.T, hubURL string, agents map[string]*testAgent) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for sku, byWh := range m.n {
		var total int64
		for _, n := range byWh {
			total += n
		}
		var hv hub.StockView
		if getJSON(t, hubURL+"/v1/stock/"+sku, &hv) != http.StatusOK || hv.OnHand != total {
			return false
		}
		for wh, n := range byWh {
			if hv.Warehouses[wh].OnHand != n {
				return false
			}
		}
		for _, a := range agents {
			var av agent.StockView
			if getJSON(t, a.Base+"/v1/stock/"+sku, &av) != http.StatusOK || av.Global.OnHand != total {
				return false
			}
		}
	}
	return true
}

// Three agents and a hub, a TCP proxy in front of each agent; events flow
// to every agent while links are cut and restored at random; after the
// last heal the hub and every agent's global view equal the model.
func TestHub_PartitionConverges(t *testing.T) {
	whs := []string{"wh1", "wh2", "wh3"}
	agents := map[string]*testAgent{}
	proxies := map[string]*proxy{}
	urls := map[string]string{}
	m := &model{n: map[string]map[string]int64{}}
	const skus = 12
	for _, wh := range whs {
		a := startAgent(t, wh, t.TempDir())
		agents[wh] = a
		proxies[wh] = newProxy(t, a.HTTPAddr())
		urls[wh] = proxies[wh].URL()
		var batch []string
		for s := range skus {
			batch = append(batch, fmt.Sprintf(`{"id":"init-%d","type":"receive","sku":"SKU-%d","qty":100}`, s, s))
			m.add(wh, fmt.Sprint("SKU-", s), 100)
		}
		postJSON(t, a.Base+"/v1/events", "["+join(batch)+"]")
	}
	h := startHub(t, t.TempDir(), urls)
	hubURL := "http://" + h.HTTPAddr()

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	stop := make(chan struct{})
	var chaos sync.WaitGroup
	chaos.Go(func() {
		rng := rand.New(rand.NewPCG(seed, 2))
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(50+rng.IntN(200)) * time.Millisecond):
			}
			p := proxies[whs[rng.IntN(len(whs))]]
			if rng.IntN(2) == 0 {
				p.Cut()
			} else {
				p.Restore()
			}
		}
	})
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		wh := whs[i%len(whs)]
		sku := fmt.Sprint("SKU-", rng.IntN(skus))
		qty := int64(1 + rng.IntN(5))
		typ, d := "receive", qty
		if rng.IntN(2) == 0 {
			typ, d = "sale", -qty
		}
		postJSON(t, agents[wh].Base+"/v1/events", fmt.Sprintf(`{"id":"e-%d","type":%q,"sku":%q,"qty":%d}`, i, typ, sku, qty))
		m.add(wh, sku, d)
		time.Sleep(2 * time.Millisecond)
	}
	close(stop)
	chaos.Wait()
	for _, p := range proxies {
		p.Restore()
	}
	healed := time.Now()
	if !assertEventually(func() bool { return m.converged(t, hubURL, agents) }, 30*time.Second) {
		m.explain(t, hubURL, agents)
		t.FailNow()
	}
	t.Logf("converged %s after the last heal", time.Since(healed).Round(time.Millisecond))
	checkStockList(t, hubURL, skus)

	var ws struct{ Warehouses []hub.WarehouseStatus }
	getJSON(t, hubURL+"/v1/warehouses", &ws)
	require.Len(t, ws.Warehouses, 3)
	for _, w := range ws.Warehouses {
		require.Equal(t, agents[w.Warehouse].ReplicaID(), w.Replica)
		require.NotNil(t, w.LastContact)
		require.NotNil(t, w.LagSeconds)
	}
	resp, err := http.Get(hubURL + "/metrics")
	require.NoError(t, err)
	metrics, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Contains(t, string(metrics), `edgestock_hub_agent_online{warehouse="wh2"} 1`)
	require.Regexp(t, `edgestock_hub_entries_pulled_total\{warehouse="wh1"\} [1-9]`, string(metrics))
}

func join(parts []string) string {
	var b bytes.Buffer
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p)
	}
	return b.String()
}

// checkStockList pages through GET /v1/stock, 5 SKUs a page: every page
// item equals GET /v1/stock/{sku}, and all want SKUs come, in order, once.
func checkStockList(t *testing.T, hubURL string, want int) {
	t.Helper()
	var seen []string
	after := ""
	for {
		var page struct {
			Items []hub.StockView `json:"items"`
			Next  string          `json:"next"`
		}
		require.Equal(t, http.StatusOK, getJSON(t, hubURL+"/v1/stock?limit=5&after="+url.QueryEscape(after), &page))
		for _, item := range page.Items {
			var one hub.StockView
			require.Equal(t, http.StatusOK, getJSON(t, hubURL+"/v1/stock/"+item.SKU, &one))
			require.Equal(t, one, item, item.SKU)
			seen = append(seen, item.SKU)
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	require.Len(t, seen, want)
	require.True(t, slices.IsSorted(seen), "%v", seen)
	require.Len(t, slices.Compact(slices.Clone(seen)), want, "no SKU twice")
}

func assertEventually(cond func() bool, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// explain logs where the views differ from the model.
func (m *model) explain(t *testing.T, hubURL string, agents map[string]*testAgent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for sku, byWh := range m.n {
		var hv hub.StockView
		getJSON(t, hubURL+"/v1/stock/"+sku, &hv)
		for wh, n := range byWh {
			if hv.Warehouses[wh].OnHand != n {
				t.Errorf("hub %s %s: %d, model %d", sku, wh, hv.Warehouses[wh].OnHand, n)
			}
		}
		for wh, a := range agents {
			var av agent.StockView
			getJSON(t, a.Base+"/v1/stock/"+sku, &av)
			for w, n := range byWh {
				if av.Global.Warehouses[w] != n {
					t.Errorf("agent %s sees %s %s: %d, model %d", wh, sku, w, av.Global.Warehouses[w], n)
				}
			}
		}
	}
	var ws struct{ Warehouses []hub.WarehouseStatus }
	getJSON(t, hubURL+"/v1/warehouses", &ws)
	t.Logf("warehouses: %+v", ws.Warehouses)
}

func stockAt(t *testing.T, base, sku string) (onHand, global int64) {
	var v agent.StockView
	require.Equal(t, http.StatusOK, getJSON(t, base+"/v1/stock/"+sku, &v))
	return v.OnHand, v.Global.OnHand
}

func hubStock(t *testing.T, hubURL, sku, wh string) int64 {
	var v hub.StockView
	if getJSON(t, hubURL+"/v1/stock/"+sku, &v) != http.StatusOK {
		return -1
	}
	return v.Warehouses[wh].OnHand
}

func copyFile(t *testing.T, from, to string) {
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, 0o600))
}

// An agent's database is replaced by an older copy of itself: after sync,
// no update from either incarnation is lost. The probe of #21 lost 50
// acknowledged units with the documented procedure (copy the data dir,
// high-water file and all, and copy it back): writes after the restore
// reused the old replica ID and were hidden by what the hub held.
func TestHub_RestoreFromBackup(t *testing.T) {
	for _, tc := range []struct {
		name string
		// restoreInner: the high-water file next to the database is
		// restored with it; restoreOuter: so is the one beside the data dir.
		restoreInner, restoreOuter bool
		// atOpen: the copy is caught at open, so writes before the hub is
		// reachable are safe; otherwise it is caught at the first sync.
		atOpen bool
	}{
		{name: "database only", atOpen: true},
		{name: "the documented procedure: the data dir copied back in place", restoreInner: true, atOpen: true},
		{name: "data dir and the file beside it", restoreInner: true, restoreOuter: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, backup := t.TempDir(), t.TempDir()
			outer := filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".hwm")
			a := startAgent(t, "wh1", dir)
			p := newProxy(t, a.HTTPAddr())
			h := startHub(t, t.TempDir(), map[string]string{"wh1": p.URL()})
			hubURL := "http://" + h.HTTPAddr()
			postJSON(t, a.Base+"/v1/events", `{"id":"e1","type":"receive","sku":"R","qty":10}`)
			require.Eventually(t, func() bool { return hubStock(t, hubURL, "R", "wh1") == 10 }, 10*time.Second, 20*time.Millisecond)
			oldReplica := a.ReplicaID()
			require.NoError(t, a.Close(t.Context()))
			for _, f := range []string{"edgestock.db", "edgestock.db.hwm"} {
				copyFile(t, dir+"/"+f, backup+"/"+f)
			}
			copyFile(t, outer, backup+"/outer.hwm")

			// The lost future: more events, synced to the hub, then the disk dies.
			a = startAgent(t, "wh1", dir)
			p.SetTarget(a.HTTPAddr())
			postJSON(t, a.Base+"/v1/events", `{"id":"e2","type":"receive","sku":"R","qty":5}`)
			require.Eventually(t, func() bool { return hubStock(t, hubURL, "R", "wh1") == 15 }, 10*time.Second, 20*time.Millisecond)
			require.NoError(t, a.Close(t.Context()))

			p.Cut()                                                  // restored while the hub cannot reach it
			copyFile(t, backup+"/edgestock.db", dir+"/edgestock.db") // in place: the same inode
			os.Remove(dir + "/edgestock.db-wal")
			os.Remove(dir + "/edgestock.db-shm")
			if tc.restoreInner {
				copyFile(t, backup+"/edgestock.db.hwm", dir+"/edgestock.db.hwm")
			}
			if tc.restoreOuter {
				copyFile(t, backup+"/outer.hwm", outer)
			}
			a = startAgent(t, "wh1", dir)
			p.SetTarget(a.HTTPAddr())
			onHand, _ := stockAt(t, a.Base, "R")
			require.Equal(t, int64(10), onHand, "the backup's state")
			want := int64(15)
			if tc.atOpen {
				require.NotEqual(t, oldReplica, a.ReplicaID(), "a restored copy is a new incarnation from the start")
				// Written before the hub is reachable: must not be hidden.
				postJSON(t, a.Base+"/v1/events", `{"id":"e3","type":"receive","sku":"R","qty":1}`)
				want = 16
			}
			p.Restore()
			if !assertEventually(func() bool {
				onHand, global := stockAt(t, a.Base, "R")
				return onHand == want && global == want && hubStock(t, hubURL, "R", "wh1") == want
			}, 15*time.Second) {
				onHand, global := stockAt(t, a.Base, "R")
				t.Fatalf("agent on_hand %d global %d, hub %d, want %d", onHand, global, hubStock(t, hubURL, "R", "wh1"), want)
			}
			require.NotEqual(t, oldReplica, a.ReplicaID(), "after sync the agent writes under a new replica ID")
			postJSON(t, a.Base+"/v1/events", `{"id":"e4","type":"receive","sku":"R","qty":1}`)
			require.Eventually(t, func() bool { return hubStock(t, hubURL, "R", "wh1") == want+1 }, 10*time.Second, 20*time.Millisecond)
		})
	}
}

// A hub restart resumes from the stored cursors: nothing is pulled again.
func TestHub_RestartResumes(t *testing.T) {
	a := startAgent(t, "wh1", t.TempDir())
	var batch []string
	for i := range 200 {
		batch = append(batch, fmt.Sprintf(`{"id":"%d","type":"receive","sku":"S-%d","qty":1}`, i, i))
	}
	postJSON(t, a.Base+"/v1/events", "["+join(batch)+"]")
	hubDir := t.TempDir()
	h := startHub(t, hubDir, map[string]string{"wh1": a.Base})
	hubURL := "http://" + h.HTTPAddr()
	require.Eventually(t, func() bool { return hubStock(t, hubURL, "S-199", "wh1") == 1 }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, h.Close(t.Context()))

	postJSON(t, a.Base+"/v1/events", `{"id":"new","type":"receive","sku":"S-0","qty":1}`)
	h = startHub(t, hubDir, map[string]string{"wh1": a.Base})
	hubURL = "http://" + h.HTTPAddr()
	require.Eventually(t, func() bool { return hubStock(t, hubURL, "S-0", "wh1") == 2 }, 10*time.Second, 20*time.Millisecond)
	var ws struct{ Warehouses []hub.WarehouseStatus }
	getJSON(t, hubURL+"/v1/warehouses", &ws)
	require.Equal(t, int64(1), ws.Warehouses[0].Pulled, "only the entry changed since the stored cursor")
}

// A central write is recorded on the hub's replica, shows in the feed and
// reaches the agent at once (not at the next periodic push).
func TestHub_CentralWriteAndFeed(t *testing.T) {
	a, a2 := startAgent(t, "wh1", t.TempDir()), startAgent(t, "wh2", t.TempDir())
	postJSON(t, a.Base+"/v1/events", `{"id":"r1","type":"receive","sku":"C","qty":10}`)
	h := startHub(t, t.TempDir(), map[string]string{"wh1": a.Base, "wh2": a2.Base})
	hubURL := "http://" + h.HTTPAddr()
	require.Eventually(t, func() bool { return hubStock(t, hubURL, "C", "wh1") == 10 }, 10*time.Second, 20*time.Millisecond)
	var feed struct {
		Changes []hub.FeedChange
		Next    string
	}
	getJSON(t, hubURL+"/v1/feed", &feed)
	require.Equal(t, []hub.FeedChange{{Warehouse: "wh1", SKU: "C", OnHand: 10, Total: 10}}, feed.Changes)

	done := make(chan []hub.FeedChange, 1)
	go func() {
		var next struct{ Changes []hub.FeedChange }
		getJSON(t, hubURL+"/v1/feed?wait=10s&since="+feed.Next, &next)
		done <- next.Changes
	}()
	start := time.Now()
	postJSON(t, hubURL+"/v1/events?warehouse=wh1&device=erp", `{"id":"erp-9","type":"adjust","sku":"C","qty":-4}`)
	require.Equal(t, []hub.FeedChange{{Warehouse: "wh1", SKU: "C", OnHand: 6, Total: 6}}, <-done)
	require.Eventually(t, func() bool { on, _ := stockAt(t, a.Base, "C"); return on == 6 }, 3*time.Second, 10*time.Millisecond)
	t.Logf("central write visible at the agent after %s", time.Since(start).Round(time.Millisecond))

	// A page of several SKUs and warehouses: one change per pair, each
	// total over every warehouse of its SKU.
	getJSON(t, hubURL+"/v1/feed", &feed)
	postJSON(t, hubURL+"/v1/events?warehouse=wh1&device=erp", `[{"id":"x1","type":"receive","sku":"D","qty":3},{"id":"x2","type":"receive","sku":"D","qty":1}]`)
	postJSON(t, hubURL+"/v1/events?warehouse=wh2&device=erp", `{"id":"x3","type":"receive","sku":"C","qty":5}`)
	var page struct{ Changes []hub.FeedChange }
	getJSON(t, hubURL+"/v1/feed?since="+feed.Next, &page)
	require.ElementsMatch(t, []hub.FeedChange{{Warehouse: "wh1", SKU: "D", OnHand: 4, Total: 4}, {Warehouse: "wh2", SKU: "C", OnHand: 5, Total: 11}}, page.Changes)
}

// The hub pulls from an agent that requires tokens, with a sync token; a
// token without the sync scope gets nowhere.
func TestHub_AgentToken(t *testing.T) {
	cfg := agent.DefaultConfig()
	cfg.Warehouse, cfg.DataDir = "wh1", t.TempDir()
	cfg.HTTP.Listen, cfg.MQTT.Listen, cfg.HTTP.Auth = "127.0.0.1:0", "127.0.0.1:0", "required"
	cfg.Normalize()
	require.NoError(t, cfg.Validate())
	a := agent.New(cfg, logger())
	require.NoError(t, a.Open(t.Context()))
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	base := "http://" + a.HTTPAddr()
	write, _, err := a.IssueToken(t.Context(), "pos", []string{auth.ScopeEventsWrite}, "", time.Hour)
	require.NoError(t, err)
	syncTok, _, err := a.IssueToken(t.Context(), "hub", []string{auth.ScopeSync}, "", time.Hour)
	require.NoError(t, err)
	req, _ := http.NewRequest("POST", base+"/v1/events", bytes.NewBufferString(`{"id":"1","type":"receive","sku":"T","qty":4}`))
	req.Header.Set("Authorization", "Bearer "+write)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	for _, tc := range []struct {
		token string
		want  int64
	}{{write, -1}, {syncTok, 4}} {
		fc := hub.DefaultFileConfig()
		fc.DataDir, fc.HTTP = t.TempDir(), "127.0.0.1:0"
		fc.Agents, fc.AgentTokens = map[string]string{"wh1": base}, map[string]string{"wh1": tc.token}
		sc, err := fc.Validate()
		require.NoError(t, err)
		sc.Timing = hub.Timing{PollWait: time.Second, RetryMax: time.Second}
		h := hub.NewServer(sc, logger())
		require.NoError(t, h.Open(t.Context()))
		hubURL := "http://" + h.HTTPAddr()
		if tc.want < 0 {
			require.Eventually(t, func() bool { // it tries and is refused
				var ws struct{ Warehouses []hub.WarehouseStatus }
				getJSON(t, hubURL+"/v1/warehouses", &ws)
				return strings.Contains(ws.Warehouses[0].LastError, "unauthorized") && strings.Contains(ws.Warehouses[0].LastError, "403")
			}, 10*time.Second, 20*time.Millisecond)
			require.Equal(t, int64(-1), hubStock(t, hubURL, "T", "wh1"), "no sync scope: nothing pulled")
		} else {
			require.Eventually(t, func() bool { return hubStock(t, hubURL, "T", "wh1") == tc.want }, 10*time.Second, 20*time.Millisecond)
		}
		require.NoError(t, h.Close(t.Context()))
	}
}

// An agent hands the hub its own warehouse's changes alone: what the hub
// pushed to it from others does not come back (that would cost each
// change one pull per agent).
func TestHub_NoEcho(t *testing.T) {
	a1, a2 := startAgent(t, "wh1", t.TempDir()), startAgent(t, "wh2", t.TempDir())
	h := startHub(t, t.TempDir(), map[string]string{"wh1": a1.Base, "wh2": a2.Base})
	base := "http://" + h.HTTPAddr()
	pulled := func(wh string) int64 {
		var w struct{ Warehouses []hub.WarehouseStatus }
		require.Equal(t, http.StatusOK, getJSON(t, base+"/v1/warehouses", &w))
		for _, s := range w.Warehouses {
			if s.Warehouse == wh {
				return s.Pulled
			}
		}
		return -1
	}
	postJSON(t, a1.Base+"/v1/events", `{"id":"r0","type":"receive","sku":"E","qty":1}`)
	postJSON(t, a2.Base+"/v1/events", `{"id":"r0","type":"receive","sku":"E","qty":1}`)
	global := func(n int64) func() bool {
		return func() bool {
			var v agent.StockView
			return a2.Get(t, "/v1/stock/E", &v) == http.StatusOK && v.Global.OnHand == n
		}
	}
	require.Eventually(t, global(2), 10*time.Second, 20*time.Millisecond)
	// The hub has wh2's own receive too: what it pulls from wh2 from here
	// on could only be echoes.
	require.Eventually(t, func() bool {
		var v hub.StockView
		return getJSON(t, base+"/v1/stock/E", &v) == http.StatusOK && v.OnHand == 2
	}, 10*time.Second, 20*time.Millisecond)
	before := pulled("wh2")
	for i := range 5 {
		postJSON(t, a1.Base+"/v1/events", fmt.Sprintf(`{"id":"r%d","type":"receive","sku":"E","qty":1}`, i+1))
	}
	// wh2 receives wh1's changes (its global view)…
	require.Eventually(t, global(7), 10*time.Second, 20*time.Millisecond)
	time.Sleep(500 * time.Millisecond) // …and must not hand them back; it must not need this to pass
	require.Equal(t, before, pulled("wh2"), "nothing of wh1's came back through wh2")
}
