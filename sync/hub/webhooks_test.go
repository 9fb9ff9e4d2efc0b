package hub_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/testenv"
	"github.com/edgestock/edgestock/sync/hub"
)

const hookSecret = "0123456789abcdef0123"

// receiver is a webhook endpoint: it checks each delivery's signature,
// answers fail's status while fail is set, and keeps what it took.
type receiver struct {
	mu         stdsync.Mutex
	deliveries []hub.WebhookPayload
	fail       atomic.Int32
	attempts   atomic.Int32
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.attempts.Add(1)
	body, _ := io.ReadAll(r.Body)
	mac := hmac.New(sha256.New, []byte(hookSecret))
	mac.Write(body)
	if r.Header.Get(hub.SignatureHeader) != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if code := rc.fail.Load(); code != 0 {
		http.Error(w, "down", int(code))
		return
	}
	var p hub.WebhookPayload
	if json.Unmarshal(body, &p) != nil || p.Delivery != r.Header.Get(hub.DeliveryHeader) {
		http.Error(w, "bad payload", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.deliveries = append(rc.deliveries, p)
	rc.mu.Unlock()
}

// levels is the last on_hand each SKU was delivered with.
func (rc *receiver) levels() map[string]int64 {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string]int64{}
	for _, p := range rc.deliveries {
		for _, e := range p.Events {
			b, _ := json.Marshal(e.Data)
			var c hub.FeedChange
			if e.Type == "stock" && json.Unmarshal(b, &c) == nil {
				out[c.SKU] = c.OnHand
			}
		}
	}
	return out
}

func startHubHooks(t *testing.T, dsn, dir string, agents []hub.Agent, hooks ...hub.Webhook) *hub.Server {
	t.Helper()
	h := hub.NewServer(hub.Config{Store: dsn, DataDir: dir, HTTP: "127.0.0.1:0", Agents: agents, Webhooks: hooks,
		Timing: hub.Timing{PollWait: time.Second, RetryMax: 200 * time.Millisecond}}, logger())
	require.NoError(t, h.Open(t.Context()))
	return h
}

type deliveries struct {
	Webhooks    []hub.WebhookStatus
	DeadLetters []hub.DeadLetter `json:"dead_letters"`
}

// Webhooks (SPEC §10): signed pages of changes, retried, given up on into
// the dead letters after max-attempts, with a durable cursor: a restarted
// hub goes on after the last page delivered.
func TestHub_Webhooks(t *testing.T) {
	a := startAgent(t, "wh1", t.TempDir())
	ok, down := &receiver{}, &receiver{}
	down.fail.Store(http.StatusServiceUnavailable)
	okSrv, downSrv := httptest.NewServer(ok), httptest.NewServer(down)
	defer okSrv.Close()
	defer downSrv.Close()
	hooks := []hub.Webhook{{Name: "oms", URL: okSrv.URL, Secret: hookSecret, MaxAttempts: 10},
		{Name: "flaky", URL: downSrv.URL, Secret: hookSecret, MaxAttempts: 2}}
	dir := t.TempDir()
	h := startHubHooks(t, "", dir, []hub.Agent{{Warehouse: "wh1", URL: a.Base}}, hooks...)
	postJSON(t, a.Base+"/v1/events", `[{"id":"r1","type":"receive","sku":"W-1","qty":3},{"id":"r2","type":"receive","sku":"W-2","qty":4}]`)
	require.Eventually(t, func() bool {
		l := ok.levels()
		return l["W-1"] == 3 && l["W-2"] == 4
	}, 10*time.Second, 20*time.Millisecond, "both changes delivered, signed")

	var d deliveries
	require.Eventually(t, func() bool {
		getJSON(t, "http://"+h.HTTPAddr()+"/v1/webhooks/deliveries", &d)
		return len(d.DeadLetters) > 0
	}, 10*time.Second, 20*time.Millisecond, "the flaky endpoint's page is given up on after 2 attempts")
	require.Equal(t, "flaky", d.DeadLetters[0].Webhook)
	require.Equal(t, 2, d.DeadLetters[0].Attempts)
	require.Contains(t, d.DeadLetters[0].Error, "503")
	require.GreaterOrEqual(t, down.attempts.Load(), int32(2))
	resp, err := http.Get("http://" + h.HTTPAddr() + "/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(metrics), `edgestock_hub_webhook_deliveries_total{result="dead",webhook="flaky"}`)

	// Restarted, the hub goes on from its saved cursor: the next page has
	// the new change alone.
	require.NoError(t, h.Close(context.Background()))
	ok.mu.Lock()
	before := len(ok.deliveries)
	ok.mu.Unlock()
	down.fail.Store(0)
	h = startHubHooks(t, "", dir, []hub.Agent{{Warehouse: "wh1", URL: a.Base}}, hooks...)
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	postJSON(t, a.Base+"/v1/events", `{"id":"r3","type":"receive","sku":"W-1","qty":1}`)
	require.Eventually(t, func() bool { return ok.levels()["W-1"] == 4 }, 10*time.Second, 20*time.Millisecond)
	ok.mu.Lock()
	defer ok.mu.Unlock()
	for _, p := range ok.deliveries[before:] {
		for _, e := range p.Events {
			b, _ := json.Marshal(e.Data)
			require.Contains(t, string(b), `"sku":"W-1"`, "nothing delivered before the restart comes again")
		}
	}
}

// On PostgreSQL one hub process delivers each webhook; every delivery id
// comes once.
func TestHub_WebhookOneProcess(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	a := startAgent(t, "wh1", t.TempDir())
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	hook := hub.Webhook{Name: "oms", URL: srv.URL, Secret: hookSecret, MaxAttempts: 5}
	var hubs []*hub.Server
	for range 2 {
		h := startHubHooks(t, dsn, t.TempDir(), []hub.Agent{{Warehouse: "wh1", URL: a.Base}}, hook)
		t.Cleanup(func() { _ = h.Close(context.Background()) })
		hubs = append(hubs, h)
	}
	for i := range 20 {
		postJSON(t, a.Base+"/v1/events", fmt.Sprintf(`{"id":"p%d","type":"receive","sku":"P-%d","qty":1}`, i, i%5))
	}
	require.Eventually(t, func() bool {
		l := rc.levels()
		return len(l) == 5 && l["P-0"] == 4 && l["P-4"] == 4
	}, 15*time.Second, 20*time.Millisecond)
	rc.mu.Lock()
	ids := map[string]bool{}
	for _, p := range rc.deliveries {
		require.False(t, ids[p.Delivery], "delivery %s came twice", p.Delivery)
		ids[p.Delivery] = true
	}
	rc.mu.Unlock()
	active := 0
	for _, h := range hubs {
		var d deliveries
		getJSON(t, "http://"+h.HTTPAddr()+"/v1/webhooks/deliveries", &d)
		require.Len(t, d.Webhooks, 1)
		if d.Webhooks[0].Active {
			active++
		}
	}
	require.Equal(t, 1, active, "one process delivers")
}

// Webhook deliveries are in order per SKU (SPEC §10) even when the
// endpoint fails now and then: a failed page is retried before any later
// one, so the levels one SKU is delivered with only rise while receives
// raise it, and end at its total.
func TestHub_WebhookOrderPerSKU(t *testing.T) {
	a := startAgent(t, "wh1", t.TempDir())
	rc := &receiver{}
	var n atomic.Int32
	flaky := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 == 0 { // every third attempt fails
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		rc.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(flaky)
	defer srv.Close()
	h := startHubHooks(t, "", t.TempDir(), []hub.Agent{{Warehouse: "wh1", URL: a.Base}},
		hub.Webhook{Name: "oms", URL: srv.URL, Secret: hookSecret, MaxAttempts: 10})
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	const receives = 40
	for i := range receives {
		postJSON(t, a.Base+"/v1/events", fmt.Sprintf(`{"id":"o%d","type":"receive","sku":"W-O","qty":1}`, i))
		time.Sleep(5 * time.Millisecond) // spread over several pages
	}
	require.Eventually(t, func() bool { return rc.levels()["W-O"] == receives }, 15*time.Second, 20*time.Millisecond)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var seen []int64
	for _, p := range rc.deliveries {
		for _, e := range p.Events {
			b, _ := json.Marshal(e.Data)
			var c hub.FeedChange
			if e.Type == "stock" && json.Unmarshal(b, &c) == nil && c.SKU == "W-O" {
				seen = append(seen, c.OnHand)
			}
		}
	}
	require.Greater(t, len(seen), 1, "several deliveries of W-O")
	require.True(t, slices.IsSorted(seen), "W-O's levels in delivery order: %v", seen)
	require.GreaterOrEqual(t, n.Load(), int32(3), "the endpoint failed some attempts")
}

// A webhook gets the events its events list names (SPEC §10): here stock
// and alerts, not orders; and a page is retried until delivered when no
// max-attempts is set.
func TestHub_WebhookEvents(t *testing.T) {
	a := startAgent(t, "wh1", t.TempDir())
	rc := &receiver{}
	rc.fail.Store(http.StatusServiceUnavailable)
	srv := httptest.NewServer(rc)
	defer srv.Close()
	cfg := hub.DefaultFileConfig()
	cfg.DataDir, cfg.HTTP = t.TempDir(), "127.0.0.1:0"
	cfg.Agents = map[string]string{"wh1": a.Base}
	cfg.Webhooks = []hub.WebhookConfig{{Name: "ops", URL: srv.URL, Secret: hookSecret, Events: []string{"stock", "alert"}}}
	sc, err := cfg.Validate()
	require.NoError(t, err)
	sc.Timing = hub.Timing{PollWait: time.Second, RetryMax: 100 * time.Millisecond}
	h := hub.NewServer(sc, logger())
	require.NoError(t, h.Open(t.Context()))
	t.Cleanup(func() { _ = h.Close(context.Background()) })

	postJSON(t, a.Base+"/v1/events", `{"id":"r1","type":"receive","sku":"WE-1","qty":3}`)
	require.Eventually(t, func() bool { return rc.attempts.Load() >= 12 }, 15*time.Second, 10*time.Millisecond,
		"past the old default of 10 attempts, still retrying")
	rc.fail.Store(0)
	require.Eventually(t, func() bool { return rc.levels()["WE-1"] == 3 }, 15*time.Second, 20*time.Millisecond, "delivered in the end")
	var d deliveries
	getJSON(t, "http://"+h.HTTPAddr()+"/v1/webhooks/deliveries", &d)
	require.Empty(t, d.DeadLetters, "nothing given up on")

	// The agent goes away: the hub's warehouse_offline alert comes as an
	// alert event.
	require.NoError(t, a.Close(context.Background()))
	require.Eventually(t, func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		for _, p := range rc.deliveries {
			for _, e := range p.Events {
				b, _ := json.Marshal(e.Data)
				if e.Type == "alert" && strings.Contains(string(b), "warehouse_offline") {
					return true
				}
			}
		}
		return false
	}, 20*time.Second, 50*time.Millisecond)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, p := range rc.deliveries {
		for _, e := range p.Events {
			require.Contains(t, []string{"stock", "alert"}, e.Type)
		}
	}
}

// A webhook's events are checked: unknown ones, and ats without a channel.
func TestHub_WebhookEventsChecked(t *testing.T) {
	cfg := hub.DefaultFileConfig()
	cfg.Webhooks = []hub.WebhookConfig{{Name: "a", URL: "https://x.example", Secret: hookSecret, Events: []string{"stok"}},
		{Name: "b", URL: "https://x.example", Secret: hookSecret, Events: []string{"ats"}}}
	_, err := cfg.Validate()
	require.ErrorContains(t, err, `webhooks.a.events: "stok" is not one of stock, ats, order, alert`)
	require.ErrorContains(t, err, "webhooks.b.events: ats events are a channel's: set channel")
}
