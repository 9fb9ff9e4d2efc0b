package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/agent/store"
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
	require.Eventually(t, func() bool { return a.onHand(t, "SKU-LIVE") >= 200 }, 10*time.Second, time.Millisecond)
	require.NoError(t, a.Close(t.Context())) // mid-stream
	stop.Store(true)
	require.NoError(t, <-streamed)

	db, err := store.Open(t.Context(), dir, store.Options{Warehouse: wh})
	require.NoError(t, err)
	level, ok, err := db.Stock(t.Context(), wh, "SKU-LIVE")
	require.NoError(t, err)
	require.True(t, ok)
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
}
