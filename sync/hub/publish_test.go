package hub_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/testenv"
	"github.com/edgestock/edgestock/sync/hub"
)

// The hub publishes retained stock views and a channel's ATS to an
// external broker (SPEC §10): a subscriber that comes later still gets
// every SKU's latest.
func TestHub_PublishesToBroker(t *testing.T) {
	m := testenv.StartMosquitto(t)
	a := startAgent(t, "wh1", t.TempDir())
	h := hub.NewServer(hub.Config{DataDir: t.TempDir(), HTTP: "127.0.0.1:0", Agents: []hub.Agent{{Warehouse: "wh1", URL: a.Base}},
		Publish: &hub.Publish{URL: m.URL(), TopicPrefix: "es", Channels: []string{"web"}},
		Timing:  hub.Timing{PollWait: time.Second, RetryMax: 200 * time.Millisecond}}, logger())
	require.NoError(t, h.Open(t.Context()))
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	postJSON(t, a.Base+"/v1/events", `{"id":"r1","type":"receive","sku":"PB-1","qty":6}`)
	require.Equal(t, http.StatusCreated, send(t, "POST", a.Base+"/v1/allotments", "", `{"sku":"PB-1","channel":"web","qty":2}`, nil))

	// A subscriber that comes later: retained messages bring it up to date.
	var stock hub.StockView
	var web hub.ATS
	require.Eventually(t, func() bool {
		sub := testenv.Dial(t, m.Addr, "late-"+time.Now().Format("150405.000000"))
		defer sub.Close()
		sub.SubscribeQoS1(t, "es/hub/#")
		for {
			select {
			case msg := <-sub.Received:
				switch msg.Topic {
				case "es/hub/stock/PB-1":
					_ = json.Unmarshal(msg.Payload, &stock)
				case "es/hub/ats/web/PB-1":
					_ = json.Unmarshal(msg.Payload, &web)
				}
			case <-time.After(200 * time.Millisecond):
				return stock.OnHand == 6 && web.ATS == 2
			}
		}
	}, 15*time.Second, 50*time.Millisecond)
	require.Equal(t, int64(6), stock.Warehouses["wh1"].OnHand)
	late := testenv.Dial(t, m.Addr, "later")
	late.SubscribeQoS1(t, "es/hub/stock/PB-1")
	select {
	case msg := <-late.Received:
		require.True(t, msg.Retain, "kept by the broker for later subscribers")
	case <-time.After(5 * time.Second):
		t.Fatal("no retained stock view")
	}
}

// An agent's link going down and coming back: one warehouse_offline and
// one warehouse_online, on the hub's stream (alert events) and on
// {prefix}/hub/alerts (QoS 1, not retained).
func TestHub_LinkAlerts(t *testing.T) {
	m := testenv.StartMosquitto(t)
	a := startAgent(t, "wh1", t.TempDir())
	link := newProxy(t, a.HTTPAddr())
	h := hub.NewServer(hub.Config{DataDir: t.TempDir(), HTTP: "127.0.0.1:0", Agents: []hub.Agent{{Warehouse: "wh1", URL: link.URL()}},
		Publish: &hub.Publish{URL: m.URL(), TopicPrefix: "es"},
		Timing:  hub.Timing{PollWait: time.Second, RetryMax: 200 * time.Millisecond}}, logger())
	require.NoError(t, h.Open(t.Context()))
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	sub := testenv.Dial(t, m.Addr, "ops")
	sub.SubscribeQoS1(t, "es/hub/alerts")
	base := "http://" + h.HTTPAddr()
	require.Eventually(t, func() bool {
		var w struct{ Warehouses []hub.WarehouseStatus }
		return getJSON(t, base+"/v1/warehouses", &w) == http.StatusOK && w.Warehouses[0].Online
	}, 15*time.Second, 20*time.Millisecond)
	_, events := openStream(t, base+"/v1/stream", "")

	link.Cut()
	alert := func(kind string) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case e := <-events:
				var al hub.AlertView
				if e.Type == "alert" && json.Unmarshal(e.Data, &al) == nil && al.Kind == kind {
					require.Equal(t, "wh1", al.Warehouse)
					require.NotEmpty(t, e.ID, "alerts resume by Last-Event-ID")
					return
				}
			case <-deadline:
				t.Fatal("no alert on the stream: " + kind)
			}
		}
	}
	alert("warehouse_offline")
	link.Restore()
	alert("warehouse_online")

	var kinds []string
	deadline := time.After(20 * time.Second)
	for len(kinds) < 2 {
		select {
		case msg := <-sub.Received:
			var al hub.AlertView
			require.NoError(t, json.Unmarshal(msg.Payload, &al))
			require.False(t, msg.Retain)
			require.Equal(t, byte(1), msg.QoS, "alerts at QoS 1 (SPEC §10)")
			kinds = append(kinds, al.Kind+":"+al.Warehouse)
		case <-deadline:
			t.Fatalf("alerts on MQTT: %v", kinds)
		}
	}
	require.Equal(t, []string{"warehouse_offline:wh1", "warehouse_online:wh1"}, kinds)
}
