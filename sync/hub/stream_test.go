package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
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
	// A SKU outside the prefix changes, then one inside: only the latter shows.
	postJSON(t, a.Base+"/v1/events", `{"id":"r3","type":"receive","sku":"OTHER","qty":1}`)
	postJSON(t, a.Base+"/v1/events", `{"id":"r4","type":"receive","sku":"ST-2","qty":1}`)
	for seen := false; !seen; {
		select {
		case e, ok := <-events:
			require.True(t, ok, "stream closed")
			var c hub.FeedChange
			if e.Type == "stock" && json.Unmarshal(e.Data, &c) == nil {
				require.True(t, strings.HasPrefix(c.SKU, "ST-"), "?prefix=ST-: a stock event of %s", c.SKU)
				seen = c.SKU == "ST-2"
			}
		case <-time.After(15 * time.Second):
			t.Fatal("no stock event of ST-2")
		}
	}

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
	for e.Type == "warehouse" { // state comes first
		e = <-reset
	}
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

// The stream also carries each agent's link as warehouse events (at the
// start and when it changes), ATS of several channels, and order lines
// booked and cancelled; a channel-bound token gets its channel's alone.
func TestHub_StreamWarehousesOrdersChannels(t *testing.T) {
	a := startAgent(t, "wh1", t.TempDir())
	h := startHubAuth(t, "", hub.Agent{Warehouse: "wh1", URL: a.Base})
	base := "http://" + h.HTTPAddr()
	adm, _, err := h.IssueToken(t.Context(), "ops", []string{auth.ScopeAdmin}, time.Hour)
	require.NoError(t, err)
	status, _ := a.Post(t, "/v1/events", `{"id":"r1","type":"receive","sku":"W-1","qty":10}`)
	require.Equal(t, http.StatusOK, status)
	for _, body := range []string{`{"sku":"W-1","channel":"web","qty":3}`, `{"sku":"W-1","channel":"amazon","qty":4}`} {
		require.Equal(t, http.StatusCreated, send(t, "POST", a.Base+"/v1/allotments", "", body, nil))
	}
	_, events := openStream(t, base+"/v1/stream?channel=web&channel=amazon&access_token="+adm, "")
	// wait reads events until each of matches has matched one, in any
	// order: a page's events come stock, ats, order.
	wait := func(what string, matches ...func(sseEvent) bool) {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for len(matches) > 0 {
			select {
			case e, ok := <-events:
				require.True(t, ok, "stream closed")
				matches = slices.DeleteFunc(matches, func(m func(sseEvent) bool) bool { return m(e) })
			case <-deadline:
				t.Fatal("no event: " + what)
			}
		}
	}
	wait("wh1 online", func(e sseEvent) bool {
		var w hub.WarehouseStatus
		return e.Type == "warehouse" && e.ID == "" && json.Unmarshal(e.Data, &w) == nil && w.Warehouse == "wh1" && w.Online
	})
	atsOf := func(channel string, n int64) func(sseEvent) bool {
		return func(e sseEvent) bool {
			var v hub.ATS
			return e.Type == "ats" && json.Unmarshal(e.Data, &v) == nil && v.Channel == channel && v.ATS == n
		}
	}
	wait("both channels' ATS", atsOf("web", 3), atsOf("amazon", 4))

	require.Equal(t, http.StatusCreated, send(t, "POST", base+"/v1/orders", adm, `{"id":"o-1","channel":"amazon","lines":[{"sku":"W-1","qty":2}]}`, nil))
	line := func(cancelled bool) func(sseEvent) bool {
		return func(e sseEvent) bool {
			var l hub.LineEvent
			return e.Type == "order" && json.Unmarshal(e.Data, &l) == nil && l == hub.LineEvent{
				ID: "o-1.1", Order: "o-1", Warehouse: "wh1", SKU: "W-1", Channel: "amazon", Qty: 2, Cancelled: cancelled}
		}
	}
	wait("the order's line and amazon's ATS after it", line(false), atsOf("amazon", 2))
	require.Equal(t, http.StatusOK, send(t, "POST", base+"/v1/orders/o-1/cancel", adm, "", nil))
	wait("the line cancelled", line(true))

	// A token bound to web: no warehouses, no stock, none of amazon's lines.
	tok, _, err := h.Issue(t.Context(), auth.Request{Name: "web", Scopes: []string{auth.ScopeStockRead}, Channel: "web", TTL: time.Hour})
	require.NoError(t, err)
	_, bound := openStream(t, base+"/v1/stream?access_token="+tok, "")
	require.Equal(t, http.StatusCreated, send(t, "POST", base+"/v1/orders", adm, `{"id":"o-2","channel":"web","lines":[{"sku":"W-1","qty":1}]}`, nil))
	for e := range bound {
		require.Contains(t, []string{"ats", "order"}, e.Type)
		var l hub.LineEvent
		if e.Type == "order" && json.Unmarshal(e.Data, &l) == nil {
			require.Equal(t, "web", l.Channel)
			if l.Order == "o-2" {
				break
			}
		}
	}
}
