package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/testenv"
)

// The agent dials mqtt and mqtts brokers itself (buffered connection);
// WebSocket URLs keep autopaho's own dialler.
func TestDialer_Schemes(t *testing.T) {
	for scheme, own := range map[string]bool{"mqtt": true, "tcp": true, "mqtts": true, "tls": true, "ssl": true, "ws": false, "wss": false} {
		u, err := url.Parse(scheme + "://127.0.0.1:1883")
		require.NoError(t, err)
		require.Equal(t, own, dialer(u) != nil, scheme)
	}
}

// The live levels never lose one while the broker is slow: with mosquitto
// stopped (SIGSTOP), the publish queue fills; the levels that found no room
// wait for the next flush instead of being dropped. After a clean stop the
// retained stock/{sku} topics hold every SKU's committed level.
func TestLive_ExternalLevelsSurviveAFullQueue(t *testing.T) {
	m := testenv.StartMosquitto(t)
	cfg := DefaultConfig()
	cfg.Warehouse, cfg.DataDir = "wh1", t.TempDir()
	cfg.HTTP.Listen, cfg.MQTT.URL = "127.0.0.1:0", m.URL()
	cfg.Normalize()
	require.NoError(t, cfg.Validate())
	a := New(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, a.Open(t.Context()))
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	require.Eventually(t, func() bool { return a.broker.Ready() == nil }, 10*time.Second, 10*time.Millisecond)
	b := a.broker.(*externalBroker)
	live := a.live.Load()

	require.NoError(t, syscall.Kill(m.Pid(), syscall.SIGSTOP))
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			require.NoError(t, syscall.Kill(m.Pid(), syscall.SIGCONT))
		}
	}
	t.Cleanup(resume)
	const skus = publishQueue + 1000
	want := map[string]int64{}
	for start := 0; start < skus; start += 1000 {
		var body bytes.Buffer
		body.WriteString("[")
		for i := start; i < min(start+1000, skus); i++ {
			if i > start {
				body.WriteString(",")
			}
			sku, qty := fmt.Sprintf("Q-%05d", i), int64(i%7+1)
			want["edgestock/wh1/stock/"+sku] = qty
			fmt.Fprintf(&body, `{"id":"e%d","type":"receive","sku":%q,"qty":%d}`, i, sku, qty)
		}
		body.WriteString("]")
		resp, err := http.Post("http://"+a.HTTPAddr()+"/v1/events?device=bulk", "application/json", &body)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	// A worker's queue is full, and a flush has run since: every level has
	// been offered to the broker once at least.
	require.Eventually(t, func() bool {
		for _, q := range b.out {
			if len(q) == cap(q) {
				return true
			}
		}
		return false
	}, 20*time.Second, time.Millisecond)
	flushed := live.flushes.Load()
	require.Eventually(t, func() bool { return live.flushes.Load() >= flushed+2 }, 20*time.Second, time.Millisecond)
	resume()
	require.NoError(t, a.Close(t.Context()))

	sub := testenv.Dial(t, m.Addr, "levels")
	sub.SubscribeQoS1(t, "edgestock/wh1/stock/#")
	got := map[string]int64{}
	require.Eventually(t, func() bool {
		for len(sub.Received) > 0 {
			p := <-sub.Received
			var v StockView
			require.NoError(t, json.Unmarshal(p.Payload, &v))
			got[p.Topic] = v.OnHand
		}
		return len(got) == len(want)
	}, 20*time.Second, 10*time.Millisecond, "retained levels: %d of %d", len(got), len(want))
	require.Equal(t, want, got)
}
