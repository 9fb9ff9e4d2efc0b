package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent/agenttest"
	"github.com/edgestock/edgestock/sync/hub"
)

// metricsOf reads the metric families a role's /metrics exports.
func metricsOf(t *testing.T, url string) map[string]bool {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (\S+) `).FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = true
	}
	return out
}

// The packaged Grafana dashboard names only metrics an agent or a hub
// exports, and every panel has a query.
func TestGrafana_DashboardMetricsExist(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "packaging/grafana/edgestock.json"))
	require.NoError(t, err)
	var d struct {
		UID    string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	require.NoError(t, json.Unmarshal(b, &d))
	require.NotEmpty(t, d.UID)
	require.NotEmpty(t, d.Panels)

	a := agenttest.Start(t, "wh1", t.TempDir(), nil)
	resp, err := http.Post(a.Base+"/v1/events", "application/json",
		strings.NewReader(`[{"id":"g1","type":"receive","sku":"G","qty":1},{"id":"g2","type":"steal","sku":"G","qty":1}]`))
	require.NoError(t, err)
	resp.Body.Close()
	h := hub.NewServer(hub.Config{DataDir: t.TempDir(), HTTP: "127.0.0.1:0", Agents: []hub.Agent{{Warehouse: "wh1", URL: a.Base}},
		Timing: hub.Timing{PollWait: time.Second, RetryMax: time.Second}}, agenttest.Logger())
	require.NoError(t, h.Open(t.Context()))
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	exported := metricsOf(t, a.Base)
	for name := range metricsOf(t, "http://"+h.HTTPAddr()) {
		exported[name] = true
	}

	metric := regexp.MustCompile(`edgestock_[a-z_]+`)
	for _, p := range d.Panels {
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		for _, target := range p.Targets {
			names := metric.FindAllString(target.Expr, -1)
			require.NotEmpty(t, names, "panel %q: %s", p.Title, target.Expr)
			for _, n := range names {
				family := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
				require.True(t, exported[family], "panel %q names %s, which neither role exports", p.Title, n)
			}
		}
	}
}
