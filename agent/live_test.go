package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/internal/ingest"
	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/internal/testenv"
)

// The retained live level a subscriber finds after the agent stopped is
// the level the agent committed last, even when it stopped in the middle
// of a stream: the messages it took before stopping are committed first,
// and their SKUs published after that.
func TestLive_FinalLevelAtShutdown(t *testing.T) {
	m := testenv.StartMosquitto(t)
	dir := t.TempDir()
	a := startAgent(t, dir, func(c *agent.Config) { c.MQTT.URL = m.URL() })

	dev := testenv.Dial(t, m.Addr, "live-dev")
	var stop atomic.Bool
	streamed := make(chan error, 1)
	go func() { // a device streaming receives until told to stop
		for i := 0; !stop.Load(); i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := dev.PublishQoS1(ctx, eventsTopic("live-dev"), receive(fmt.Sprint("l", i), "SKU-LIVE", 1))
			cancel()
			if err != nil {
				streamed <- err
				return
			}
		}
		streamed <- nil
	}()
	require.Eventually(t, func() bool { return a.OnHand(t, "SKU-LIVE") >= 200 }, 10*time.Second, time.Millisecond)
	require.NoError(t, a.Close(t.Context())) // mid-stream
	stop.Store(true)
	require.NoError(t, <-streamed)

	db, err := store.Open(t.Context(), dir, store.Options{Warehouse: wh})
	require.NoError(t, err)
	levels, err := db.SKUsStock(t.Context(), []string{"SKU-LIVE"})
	require.NoError(t, err)
	require.Len(t, levels, 1)
	level := levels[0]
	require.NoError(t, db.Close())

	sub := testenv.Dial(t, m.Addr, "live-sub")
	sub.SubscribeQoS1(t, "edgestock/"+wh+"/stock/SKU-LIVE")
	select {
	case p := <-sub.Received:
		require.True(t, p.Retain)
		var v agent.StockView
		require.NoError(t, json.Unmarshal(p.Payload, &v))
		require.Equal(t, level.OnHand, v.OnHand, "the retained level is the last committed one")
	case <-time.After(10 * time.Second):
		t.Fatal("no retained stock level")
	}
	// SPEC §3: a clean stop leaves the status retained "offline".
	sub.SubscribeQoS1(t, "edgestock/"+wh+"/status")
	select {
	case p := <-sub.Received:
		require.True(t, p.Retain)
		require.JSONEq(t, `{"state":"offline"}`, string(p.Payload))
	case <-time.After(10 * time.Second):
		t.Fatal("no retained status")
	}
}

// A flush reads its SKUs' views together; each is the view GET
// /v1/stock/{sku} reads alone: levels by location, holds, low state.
func TestLive_ViewsMatchStockEndpoint(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil)
	a.Post(t, "/v1/events", `[{"id":"a1","type":"receive","sku":"V-A","qty":10},{"id":"c1","type":"receive","sku":"V-C","qty":7}]`)
	require.Equal(t, http.StatusCreated, a.do(t, "POST", "/v1/reservations", `{"id":"h1","sku":"V-A","qty":2,"ttl":"10m","holder":"c1"}`, nil))
	require.Equal(t, http.StatusCreated, a.do(t, "POST", "/v1/reservations", `{"id":"h2","sku":"V-C","qty":1,"ttl":"10m","holder":"c2"}`, nil))
	sub := testenv.Dial(t, a.MQTTAddr(), "screen")
	sub.SubscribeQoS1(t, "edgestock/"+wh+"/stock/#")
	// One commit, so one flush reads all three.
	a.Post(t, "/v1/events", `[{"id":"a2","type":"receive","sku":"V-A","qty":3,"location":"B-1"},
		{"id":"b1","type":"receive","sku":"V-B","qty":5},{"id":"b2","type":"sale","sku":"V-B","qty":5},
		{"id":"c2","type":"receive","sku":"V-C","qty":1}]`)

	want := map[string]agent.StockView{}
	for _, sku := range []string{"V-A", "V-B", "V-C"} {
		want["edgestock/"+wh+"/stock/"+sku] = a.stock(t, sku)
	}
	require.Equal(t, int64(2), want["edgestock/"+wh+"/stock/V-A"].Reserved)
	require.Equal(t, map[string]int64{"default": 10, "B-1": 3}, want["edgestock/"+wh+"/stock/V-A"].Locations)
	require.True(t, want["edgestock/"+wh+"/stock/V-B"].LowStock)
	got := map[string]agent.StockView{}
	require.Eventually(t, func() bool {
		for len(sub.Received) > 0 {
			m := <-sub.Received
			var v agent.StockView
			require.NoError(t, json.Unmarshal(m.Payload, &v))
			got[m.Topic] = v
		}
		return reflect.DeepEqual(got, want)
	}, 5*time.Second, 10*time.Millisecond, "live views %v, GET /v1/stock views %v", got, want)
}

// Stopping the agent mid-stream on its own broker: every event it
// committed was acknowledged to its device first (the devices still
// connected get their acks written before they are disconnected), and
// every acknowledged event is committed.
func TestEmbedded_CloseAcksWhatItCommitted(t *testing.T) {
	dir := t.TempDir()
	a := startAgent(t, dir, nil)
	const devices = 4
	var acked atomic.Int64
	var wg sync.WaitGroup
	for d := range devices {
		dev := testenv.Dial(t, a.MQTTAddr(), fmt.Sprint("close-dev-", d))
		wg.Go(func() {
			for i := 0; ; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := dev.PublishQoS1(ctx, eventsTopic(fmt.Sprint("close-dev-", d)), receive(fmt.Sprint(d, "-", i), "SKU-CLOSE", 1))
				cancel()
				if err != nil {
					return // disconnected by the stop
				}
				acked.Add(1)
			}
		})
	}
	require.Eventually(t, func() bool { return a.OnHand(t, "SKU-CLOSE") >= 300 }, 10*time.Second, time.Millisecond)
	require.NoError(t, a.Close(t.Context()))
	wg.Wait()

	db, err := store.Open(t.Context(), dir, store.Options{Warehouse: wh})
	require.NoError(t, err)
	levels, err := db.SKUsStock(t.Context(), []string{"SKU-CLOSE"})
	require.NoError(t, err)
	require.NoError(t, db.Close())
	require.Len(t, levels, 1)
	require.Equal(t, acked.Load(), levels[0].OnHand, "committed = acknowledged")
}

// Through an external broker a device message with RETAIN=1 is rejected
// (quarantined raw, a result to the device, acknowledged) and never
// applied; restarts do not bring it back (Retain Handling 2), however
// often the agent subscribes again.
func TestExternal_RetainedDeviceMessageRejectedOnce(t *testing.T) {
	m := testenv.StartMosquitto(t)
	dir := t.TempDir()
	external := func(c *agent.Config) { c.MQTT.URL = m.URL() }
	a := startAgent(t, dir, external)
	watcher := testenv.Dial(t, m.Addr, "watcher")
	watcher.SubscribeQoS1(t, "edgestock/"+wh+"/devices/devR/results")
	dev := testenv.Dial(t, m.Addr, "devR")
	_, err := dev.Publish(t.Context(), &paho.Publish{Topic: eventsTopic("devR"), QoS: 1, Retain: true, Payload: receive("r1", "RET", 5)})
	require.NoError(t, err)
	select {
	case p := <-watcher.Received:
		var res ingest.Result
		require.NoError(t, json.Unmarshal(p.Payload, &res))
		require.Equal(t, ingest.StatusRejected, res.Status)
		require.Equal(t, "unauthorized", string(res.Reason))
		require.Contains(t, res.Message, "never retained")
	case <-time.After(10 * time.Second):
		t.Fatal("no result for the device")
	}
	for restart := range 3 {
		require.NoError(t, a.Close(t.Context()))
		a = startAgent(t, dir, external)
		// A marker published after the (re)subscription is applied after
		// anything the subscription brought.
		marker := fmt.Sprint("m", restart)
		require.NoError(t, dev.PublishQoS1(t.Context(), eventsTopic("devR"), receive(marker, "MARK", 1)))
		require.Eventually(t, func() bool { return a.OnHand(t, "MARK") == int64(restart+1) }, 10*time.Second, 10*time.Millisecond)
		require.Equal(t, int64(0), a.OnHand(t, "RET"), "restart %d: the retained event is never applied", restart)
		q := a.Quarantine(t)
		require.Len(t, q, 1, "restart %d: quarantined once", restart)
		require.Equal(t, "unauthorized", q[0].Reason)
		require.Equal(t, string(receive("r1", "RET", 5)), *q[0].Payload)
	}
}
