package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/internal/testenv"
	"github.com/edgestock/edgestock/sync/hub"
)

type sseEvent = testenv.StreamEvent

func openStream(t *testing.T, url, lastID string) (int, <-chan sseEvent) {
	return testenv.Stream(t, url, lastID)
}

// nextStock waits for a stock event of sku and returns it with the id of
// the page it ended (the last id seen).
func nextStock(t *testing.T, events <-chan sseEvent, sku string) (hub.FeedChange, string) {
	t.Helper()
	var lastID string
	deadline := time.After(15 * time.Second)
	for {
		select {
		case e, ok := <-events:
			require.True(t, ok, "stream closed")
			if e.ID != "" {
				lastID = e.ID
			}
			var c hub.FeedChange
			if e.Type == "stock" && json.Unmarshal(e.Data, &c) == nil && c.SKU == sku {
				return c, lastID
			}
		case <-deadline:
			t.Fatalf("no stock event of %s", sku)
		}
	}
}

// The hub's stream (SPEC §10): stock events from the durable change
// sequence, filtered, resumed by Last-Event-ID with no gap, a reset for a
// cursor it cannot resume, and a client that stops reading holds up
// nobody.
func TestHub_Stream(t *testing.T) {
	a := startAgent(t, "wh1", t.TempDir())
	h := startHub(t, t.TempDir(), map[string]string{"wh1": a.Base})
	base := "http://" + h.HTTPAddr()
	postJSON(t, a.Base+"/v1/events", `[{"id":"r1","type":"receive","sku":"ST-1","qty":5},{"id":"r2","type":"receive","sku":"OTHER","qty":1}]`)

	// A client that connects and never reads.
	stuck, err := http.Get(base + "/v1/stream")
	require.NoError(t, err)
	t.Cleanup(func() { stuck.Body.Close() })

	status, events := openStream(t, base+"/v1/stream?prefix=ST-", "")
	require.Equal(t, http.StatusOK, status)
	c, first := nextStock(t, events, "ST-1")
	require.Equal(t, hub.FeedChange{Warehouse: "wh1", SKU: "ST-1", OnHand: 5, Total: 5}, c)
	require.NotEmpty(t, first)

	for i := range 200 { // pages for the stuck client, which no one waits for
		postJSON(t, a.Base+"/v1/events", fmt.Sprintf(`{"id":"n%d","type":"receive","sku":"ST-1","qty":1}`, i))
	}
	require.Eventually(t, func() bool {
		for {
			select {
			case e := <-events:
				var c hub.FeedChange
				if e.Type == "stock" && json.Unmarshal(e.Data, &c) == nil && c.OnHand == 205 {
					return true
				}
			default:
				return false
			}
		}
	}, 15*time.Second, 20*time.Millisecond, "the reading client gets every change while another reads nothing")

	// Resumed from the first page's id: the level now, nothing missed.
	_, resumed := openStream(t, base+"/v1/stream?sku=ST-1", first)
	c, _ = nextStock(t, resumed, "ST-1")
	require.Equal(t, int64(205), c.OnHand)

	// A cursor of another database: reset, then from the start.
	_, reset := openStream(t, base+"/v1/stream?sku=ST-1", "other.db@7")
	e := <-reset
	require.Equal(t, "reset", e.Type)
	c, _ = nextStock(t, reset, "ST-1")
	require.Equal(t, int64(205), c.OnHand)

	status, _ = openStream(t, base+"/v1/stream?sku=bad%20sku", "")
	require.Equal(t, http.StatusBadRequest, status)
}

// EventSource cannot set headers: the stream takes ?access_token=.
func TestHub_StreamAccessToken(t *testing.T) {
	a := startAgent(t, "wh1", t.TempDir())
	h := startHubAuth(t, "", hub.Agent{Warehouse: "wh1", URL: a.Base})
	tok, _, err := h.IssueToken(t.Context(), "dashboard", []string{auth.ScopeStockRead}, time.Hour)
	require.NoError(t, err)
	base := "http://" + h.HTTPAddr() + "/v1/stream"
	status, _ := openStream(t, base, "")
	require.Equal(t, http.StatusUnauthorized, status)
	status, _ = openStream(t, base+"?access_token="+tok, "")
	require.Equal(t, http.StatusOK, status)
	status, _ = openStream(t, base+"?access_token=es1.nope.nope", "")
	require.Equal(t, http.StatusUnauthorized, status)
}

// A hub stops with streams open: they end at shutdown instead of holding
// it until their clients leave.
func TestHub_StopsWithStreamsOpen(t *testing.T) {
	a := startAgent(t, "wh1", t.TempDir())
	h := hub.NewServer(hub.Config{DataDir: t.TempDir(), HTTP: "127.0.0.1:0", Agents: []hub.Agent{{Warehouse: "wh1", URL: a.Base}}}, logger())
	require.NoError(t, h.Open(t.Context()))
	status, events := openStream(t, "http://"+h.HTTPAddr()+"/v1/stream", "")
	require.Equal(t, http.StatusOK, status)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, h.Close(ctx), "shut down within the deadline, the stream ended")
	for range events { // the stream is closed
	}
}
