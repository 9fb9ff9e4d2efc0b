// Package agenttest starts a real agent inside a test (free ports, a data
// dir of the test's, the embedded broker) and reads it back over HTTP: the
// one harness the agent's, the hub's and the command's tests share.
package agenttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent"
	_ "github.com/edgestock/edgestock/drivers/all" // every driver, as in the binary
	"github.com/edgestock/edgestock/internal/ingest"
)

// Logger is the tests' logger: info and up on stderr with -v, else nothing.
func Logger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// Agent is a running agent and its HTTP base URL.
type Agent struct {
	*agent.Agent
	Config agent.Config
	Base   string // http://host:port
}

// Start runs an agent for warehouse on free ports with dataDir, mutate
// changing the config first (nil: none), and waits until /readyz says ready.
// Test devices dial the embedded broker anonymously unless mutate says deny.
// It stops with the test.
func Start(tb testing.TB, warehouse, dataDir string, mutate func(*agent.Config)) *Agent {
	tb.Helper()
	a := StartNoWait(tb, warehouse, dataDir, mutate, Logger())
	// With an external broker, ready means subscribed: publishing earlier
	// would race the subscription.
	require.Eventually(tb, func() bool { return a.Get(tb, "/readyz", nil) == http.StatusOK }, 10*time.Second, 10*time.Millisecond)
	return a
}

// StartNoWait is Start logging to logger, without waiting for /readyz
// (which needs a token when auth is required).
func StartNoWait(tb testing.TB, warehouse, dataDir string, mutate func(*agent.Config), logger *slog.Logger) *Agent {
	tb.Helper()
	cfg := agent.DefaultConfig()
	cfg.Warehouse, cfg.DataDir = warehouse, dataDir
	cfg.HTTP.Listen, cfg.MQTT.Listen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.MQTT.Anonymous = "allow"
	if mutate != nil {
		mutate(&cfg)
	}
	cfg.Normalize()
	require.NoError(tb, cfg.Validate())
	a := agent.New(cfg, logger)
	require.NoError(tb, a.Open(tb.Context()))
	tb.Cleanup(func() { _ = a.Close(context.Background()) })
	return &Agent{Agent: a, Config: cfg, Base: "http://" + a.HTTPAddr()}
}

// Get GETs path and decodes the body into out (nil: not read); it returns
// the status.
func (a *Agent) Get(tb testing.TB, path string, out any) int {
	tb.Helper()
	resp, err := http.Get(a.Base + path)
	require.NoError(tb, err)
	defer resp.Body.Close()
	if out != nil {
		require.NoError(tb, json.NewDecoder(resp.Body).Decode(out))
	}
	return resp.StatusCode
}

// Post POSTs body to path and decodes the events response.
func (a *Agent) Post(tb testing.TB, path, body string) (int, ingest.EventsResponse) {
	tb.Helper()
	resp, err := http.Post(a.Base+path, "application/json", bytes.NewBufferString(body))
	require.NoError(tb, err)
	defer resp.Body.Close()
	var out ingest.EventsResponse
	b, _ := io.ReadAll(resp.Body)
	require.NoError(tb, json.Unmarshal(b, &out), string(b))
	return resp.StatusCode, out
}

// Quarantine reads the whole quarantine, page by page.
func (a *Agent) Quarantine(tb testing.TB) []agent.QuarantineView {
	tb.Helper()
	var all []agent.QuarantineView
	for since := int64(0); ; {
		var q struct {
			Items []agent.QuarantineView
			Next  int64
		}
		a.Get(tb, fmt.Sprintf("/v1/quarantine?since=%d&limit=1000", since), &q)
		if len(q.Items) == 0 {
			return all
		}
		all, since = append(all, q.Items...), q.Next
	}
}

// OnHand is sku's on_hand at this agent (0 if never seen).
func (a *Agent) OnHand(tb testing.TB, sku string) int64 {
	tb.Helper()
	var v agent.StockView
	if a.Get(tb, "/v1/stock/"+sku, &v) == http.StatusNotFound {
		return 0
	}
	return v.OnHand
}
