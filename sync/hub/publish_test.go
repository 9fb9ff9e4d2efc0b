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
