package agent_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/internal/testenv"
)

type streamEvent = testenv.StreamEvent

func stream(t *testing.T, url, lastID string) (int, <-chan streamEvent) {
	return testenv.Stream(t, url, lastID)
}

// until reads events until match says yes, and returns the last id seen.
func until(t *testing.T, events <-chan streamEvent, match func(streamEvent) bool) string {
	t.Helper()
	var id string
	deadline := time.After(15 * time.Second)
	for {
		select {
		case e, ok := <-events:
			require.True(t, ok, "stream closed")
			if e.ID != "" {
				id = e.ID
			}
			if match(e) {
				return id
			}
		case <-deadline:
			t.Fatal("no such event")
		}
	}
}

// onlyPrefix is match, failing the test at a stock event of a SKU
// without prefix.
func onlyPrefix(t *testing.T, prefix string, match func(streamEvent) bool) func(streamEvent) bool {
	return func(e streamEvent) bool {
		var v agent.StockView
		if e.Type == "stock" && json.Unmarshal(e.Data, &v) == nil && !strings.HasPrefix(v.SKU, prefix) {
			t.Errorf("?prefix=%s: a stock event of %s", prefix, v.SKU)
		}
		return match(e)
	}
}

func stockIs(sku string, check func(agent.StockView) bool) func(streamEvent) bool {
	return func(e streamEvent) bool {
		var v agent.StockView
		return e.Type == "stock" && json.Unmarshal(e.Data, &v) == nil && v.SKU == sku && check(v)
	}
}

// The agent's stream (SPEC §10): stock views when stock or holds change,
// alerts from the outbox, resumed by Last-Event-ID with no gap, a reset
// for a cursor of another database.
func TestStream_StockAndAlerts(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil)
	status, _ := a.Post(t, "/v1/events", `[{"id":"r1","type":"receive","sku":"SS-1","qty":3},{"id":"r2","type":"receive","sku":"XX","qty":1}]`)
	require.Equal(t, http.StatusOK, status)
	code, events := stream(t, a.Base+"/v1/stream?prefix=SS-", "")
	require.Equal(t, http.StatusOK, code)
	first := until(t, events, onlyPrefix(t, "SS-", stockIs("SS-1", func(v agent.StockView) bool { return v.OnHand == 3 })))
	require.NotEmpty(t, first)
	// A SKU outside the prefix changes, then one inside: only the latter shows.
	status, _ = a.Post(t, "/v1/events", `{"id":"r9","type":"receive","sku":"XX","qty":1}`)
	require.Equal(t, http.StatusOK, status)
	status, _ = a.Post(t, "/v1/events", `{"id":"r10","type":"receive","sku":"SS-2","qty":1}`)
	require.Equal(t, http.StatusOK, status)
	until(t, events, onlyPrefix(t, "SS-", stockIs("SS-2", func(v agent.StockView) bool { return v.OnHand == 1 })))

	require.Equal(t, http.StatusCreated, a.do(t, "POST", "/v1/reservations", `{"id":"c1","sku":"SS-1","qty":2}`, nil))
	until(t, events, stockIs("SS-1", func(v agent.StockView) bool { return v.Reserved == 2 && v.Available == 1 }))
	status, _ = a.Post(t, "/v1/events", `{"id":"s1","type":"sale","sku":"SS-1","qty":5}`)
	require.Equal(t, http.StatusOK, status)
	last := until(t, events, func(e streamEvent) bool {
		var al agent.AlertView
		return e.Type == "alert" && json.Unmarshal(e.Data, &al) == nil && al.Kind == "negative_stock" && al.SKU == "SS-1"
	})

	// Resumed from the first page: the levels now and the alert, nothing missed.
	_, resumed := stream(t, a.Base+"/v1/stream?sku=SS-1", first)
	until(t, resumed, stockIs("SS-1", func(v agent.StockView) bool { return v.OnHand == -2 }))
	until(t, resumed, func(e streamEvent) bool { return e.Type == "alert" })
	// Resumed from further on, it goes on with the next change.
	_, after := stream(t, a.Base+"/v1/stream?sku=SS-1", last)
	status, _ = a.Post(t, "/v1/events", `{"id":"r3","type":"receive","sku":"SS-1","qty":10}`)
	require.Equal(t, http.StatusOK, status)
	until(t, after, stockIs("SS-1", func(v agent.StockView) bool { return v.OnHand == 8 }))

	_, reset := stream(t, a.Base+"/v1/stream", "wh9.0000@1~0")
	require.Equal(t, "reset", (<-reset).Type)
	code, _ = stream(t, a.Base+"/v1/stream?sku=a%20b", "")
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = stream(t, a.Base+"/v1/stream?channel=web", "")
	require.Equal(t, http.StatusBadRequest, code, "a hub's filter, said so rather than ignored")
}

// EventSource cannot set headers: the stream takes ?access_token=.
func TestStream_AccessToken(t *testing.T) {
	a := startAgentAuth(t)
	tok, _, err := a.IssueToken(t.Context(), "dashboard", []string{auth.ScopeStockRead}, "", time.Hour)
	require.NoError(t, err)
	code, _ := stream(t, a.Base+"/v1/stream", "")
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = stream(t, a.Base+"/v1/stream?access_token="+tok, "")
	require.Equal(t, http.StatusOK, code)
}

// An agent stops with streams open: they end at shutdown.
func TestStream_EndsAtShutdown(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil)
	code, events := stream(t, a.Base+"/v1/stream", "")
	require.Equal(t, http.StatusOK, code)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, a.Close(ctx), "shut down within the deadline, the stream ended")
	for range events { // the stream is closed
	}
}
