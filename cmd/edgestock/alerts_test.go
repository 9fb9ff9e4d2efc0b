package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/testenv"
)

// Threshold crossings raised just before a SIGKILL, while the webhook is
// down, are delivered after the restart once it is back: every alert
// exactly once.
func TestCrash_AlertsSurviveKill(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	var mu sync.Mutex
	got := map[string]int{}
	var kinds []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var a struct{ ID, Kind, SKU string }
		require.NoError(t, json.NewDecoder(r.Body).Decode(&a))
		mu.Lock()
		if got[a.ID] == 0 {
			kinds = append(kinds, a.Kind+":"+a.SKU)
		}
		got[a.ID]++
		mu.Unlock()
	}))
	defer hook.Close()

	dir := t.TempDir()
	config := filepath.Join(t.TempDir(), "agent.yaml")
	require.NoError(t, os.WriteFile(config, fmt.Appendf(nil, "stock:\n  low-stock-threshold: 3\n  restock-margin: 2\nalerts:\n  webhooks: [%q]\nreplenishment:\n  enabled: false # its stockout_risk alerts come at their own pace\n", hook.URL), 0o600))
	args := []string{"agent", "--config", config, "--warehouse", "wh1", "--data-dir", dir,
		"--http", testenv.FreeAddr(t), "--mqtt-listen", testenv.FreeAddr(t)}
	c := startChild(t, args...)
	post := func(body string) {
		resp, err := http.Post(c.base+"/v1/events?device=pos1", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	// A-1 crosses down, then up; A-2 crosses down: three alerts, committed
	// with the events (HTTP 200), none delivered yet.
	post(`[{"id":"1","type":"receive","sku":"A-1","qty":10},{"id":"2","type":"receive","sku":"A-2","qty":10}]`)
	post(`{"id":"3","type":"sale","sku":"A-1","qty":8}`)
	post(`{"id":"4","type":"receive","sku":"A-1","qty":4}`)
	post(`{"id":"5","type":"sale","sku":"A-2","qty":9}`)
	c.kill(t)

	down.Store(false)
	startChild(t, args...)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(kinds) == 3 }, 20*time.Second, 20*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // nothing more arrives
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"low_stock:A-1", "restocked:A-1", "low_stock:A-2"}, kinds)
	for id, n := range got {
		require.Equal(t, 1, n, "alert %s delivered once", id)
	}
}
