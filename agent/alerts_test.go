package agent_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/internal/testenv"
)

// webhook records alerts; it answers 503 while down.
type webhook struct {
	down    atomic.Bool
	refused atomic.Int64 // requests answered 503 while down
	mu      sync.Mutex
	got     map[string]int // alert id -> deliveries
	kind    []string
}

func newWebhook(t *testing.T) (*webhook, string) {
	w := &webhook{got: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if w.down.Load() {
			w.refused.Add(1)
			rw.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var a agent.AlertView
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
			rw.WriteHeader(http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		if w.got[a.ID] == 0 {
			w.kind = append(w.kind, a.Kind+":"+a.SKU)
		}
		w.got[a.ID]++
		w.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return w, srv.URL
}

func (w *webhook) kinds() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.kind...)
}

// Each threshold crossing produces one alert, on MQTT and on a webhook that
// was down for a while; a level that wobbles inside the hysteresis is quiet.
func TestAlerts_LowStockOnceEach(t *testing.T) {
	hook, url := newWebhook(t)
	hook.down.Store(true)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "thresholds.csv"), []byte("sku,low,restock\nSKU-T,2,6\n"), 0o644))
	a := startAgent(t, dir, func(c *agent.Config) {
		c.Alerts.Webhooks = []string{url}
		c.Replenishment.Enabled = false // its stockout_risk alerts come at their own pace
	})
	sub := testenv.Dial(t, a.MQTTAddr(), "ops")
	sub.SubscribeQoS1(t, "edgestock/wh1/alerts")

	for i, ev := range []string{
		`{"type":"receive","qty":10}`, `{"type":"sale","qty":8}`, // 2: low
		`{"type":"sale","qty":1}`, `{"type":"receive","qty":3}`, // 1, 4: still low (restock at 6)
		`{"type":"receive","qty":2}`, `{"type":"sale","qty":1}`, // 6: restocked; 5: quiet
	} {
		status, _ := a.Post(t, "/v1/events?device=pos1", fmt.Sprintf(`{"id":"e%d","sku":"SKU-T",%s`, i, ev[1:]))
		require.Equal(t, http.StatusOK, status)
	}
	var mqtt []string
	require.Eventually(t, func() bool {
		for len(sub.Received) > 0 {
			var v agent.AlertView
			require.NoError(t, json.Unmarshal((<-sub.Received).Payload, &v))
			mqtt = append(mqtt, v.Kind+":"+v.SKU)
		}
		return len(mqtt) >= 2
	}, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{"low_stock:SKU-T", "restocked:SKU-T"}, mqtt)

	// The webhook refuses a few deliveries, retried with backoff.
	require.Eventually(t, func() bool { return hook.refused.Load() >= 3 }, 10*time.Second, 10*time.Millisecond)
	require.Empty(t, hook.kinds())
	hook.down.Store(false)
	require.Eventually(t, func() bool { return len(hook.kinds()) == 2 }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, []string{"low_stock:SKU-T", "restocked:SKU-T"}, hook.kinds())
	for id, n := range hook.got {
		require.Equal(t, 1, n, "alert %s delivered once", id)
	}
	var v agent.StockView
	a.Get(t, "/v1/stock/SKU-T", &v)
	require.False(t, v.LowStock)
}

func TestAlerts_NegativeStockAndDeviceGap(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil)
	a.Post(t, "/v1/events?device=scn1", `[{"id":"1","type":"receive","sku":"N","qty":1,"seq":1},
		{"id":"2","type":"sale","sku":"N","qty":3,"seq":2},{"id":"5","type":"sale","sku":"N","qty":1,"seq":5}]`)
	var page struct{ Alerts []agent.AlertView }
	require.Eventually(t, func() bool { a.Get(t, "/v1/alerts", &page); return len(page.Alerts) == 3 }, 5*time.Second, 10*time.Millisecond)
	byKind := map[string]agent.AlertView{}
	for _, al := range page.Alerts {
		byKind[al.Kind] = al
	}
	require.Equal(t, int64(-3), *byKind["negative_stock"].OnHand, "on_hand as of the commit that crossed zero")
	require.Equal(t, "default", byKind["negative_stock"].Location)
	require.Equal(t, "scn1", byKind["device_gap"].Device)
	require.Equal(t, [2]int64{3, 5}, [2]int64{byKind["device_gap"].Expected, byKind["device_gap"].Got})
	require.Contains(t, byKind, "low_stock", "default threshold 0: out of stock is low")
}

// A subscriber that connects late gets the current retained level of every
// SKU; bursts are coalesced.
func TestLive_RetainedStock(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil)
	early := testenv.Dial(t, a.MQTTAddr(), "screen-1")
	early.SubscribeQoS1(t, "edgestock/wh1/stock/#")
	for i := range 100 {
		a.Post(t, "/v1/events", fmt.Sprintf(`{"id":"r%d","type":"receive","sku":"L-1","qty":1}`, i))
	}
	a.Post(t, "/v1/events", `[{"id":"x2","type":"receive","sku":"L-2","qty":7},{"id":"x3","type":"receive","sku":"L-3","qty":9}]`)
	want := map[string]int64{"edgestock/wh1/stock/L-1": 100, "edgestock/wh1/stock/L-2": 7, "edgestock/wh1/stock/L-3": 9}

	levels := func(c *testenv.Client) map[string]int64 {
		got := map[string]int64{}
		require.Eventually(t, func() bool {
			for len(c.Received) > 0 {
				m := <-c.Received
				var v agent.StockView
				require.NoError(t, json.Unmarshal(m.Payload, &v))
				got[m.Topic] = v.OnHand
			}
			return fmt.Sprint(got) == fmt.Sprint(want)
		}, 5*time.Second, 10*time.Millisecond)
		return got
	}
	levels(early)
	late := testenv.Dial(t, a.MQTTAddr(), "screen-2")
	late.SubscribeQoS1(t, "edgestock/wh1/stock/#")
	require.Equal(t, want, levels(late))

	// The embedded broker forgets retained messages when it stops; a
	// restarted agent publishes every SKU again.
	dir := a.Config.DataDir
	require.NoError(t, a.Close(t.Context()))
	a = startAgent(t, dir, nil)
	again := testenv.Dial(t, a.MQTTAddr(), "screen-3")
	again.SubscribeQoS1(t, "edgestock/wh1/stock/#")
	require.Equal(t, want, levels(again))
}

// {prefix}/{wh}/status is retained "online" while the agent runs.
func TestLive_StatusRetained(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil)
	c := testenv.Dial(t, a.MQTTAddr(), "late")
	c.SubscribeQoS1(t, "edgestock/wh1/status")
	select {
	case m := <-c.Received:
		require.JSONEq(t, `{"state":"online"}`, string(m.Payload))
		require.True(t, m.Retain, "retained for late subscribers")
	case <-time.After(5 * time.Second):
		t.Fatal("no retained status")
	}
}
