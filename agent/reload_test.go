package agent_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/agent/agenttest"
	"github.com/edgestock/edgestock/internal/testenv"
)

func TestReload_LiveInvalidAndRestartOnly(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "barcodes.csv"), []byte("gtin,sku\n4006381333931,SKU-S\n"), 0o644))
	path := filepath.Join(t.TempDir(), "agent.yaml")
	write := func(body string) {
		tmp := path + ".tmp"
		require.NoError(t, os.WriteFile(tmp, []byte(body), 0o644))
		require.NoError(t, os.Rename(tmp, path)) // as editors do
	}
	write("devices:\n  rate-limit: 0\n")
	cfg, err := agent.LoadConfig(path)
	require.NoError(t, err)
	cfg.Warehouse, cfg.DataDir, cfg.HTTP.Listen, cfg.MQTT.Listen = "wh1", dir, "127.0.0.1:0", "127.0.0.1:0"
	cfg.MQTT.Anonymous = "allow" // the test's device dials without a login
	cfg.Normalize()
	require.NoError(t, cfg.Validate())
	a := agent.New(cfg, testLogger(t))
	// The test's "flags": they must win over the file at every reload.
	a.Reload = agent.Reload{Path: path, Overrides: func(c *agent.Config) {
		c.Warehouse, c.DataDir, c.HTTP.Listen, c.MQTT.Listen = "wh1", dir, "127.0.0.1:0", "127.0.0.1:0"
		c.MQTT.Anonymous = "allow"
	}}
	require.NoError(t, a.Open(t.Context()))
	t.Cleanup(func() { _ = a.Close(t.Context()) })
	ta := &testAgent{&agenttest.Agent{Agent: a, Config: cfg, Base: "http://" + a.HTTPAddr()}}
	status := func() agent.Status {
		var st agent.Status
		require.Equal(t, http.StatusOK, ta.Get(t, "/v1/status", &st))
		return st
	}
	require.Equal(t, 1, status().ConfigGeneration)

	// Under load: a reload that gives the scanner a mode drops nothing.
	c := testenv.Dial(t, a.MQTTAddr(), "scan1")
	var wg sync.WaitGroup
	const n = 400
	wg.Go(func() {
		for i := range n {
			status, _ := ta.Post(t, "/v1/events?device=pos", fmt.Sprintf(`{"id":"%d","type":"receive","sku":"LOAD","qty":1}`, i))
			require.Equal(t, http.StatusOK, status)
		}
	})
	write("devices:\n  rate-limit: 0\n  modes: {scan1: receive}\n")
	require.Eventually(t, func() bool { return status().ConfigGeneration == 2 }, 10*time.Second, 20*time.Millisecond)
	wg.Wait()
	require.Equal(t, int64(n), ta.OnHand(t, "LOAD"), "not a single event dropped")
	_, err = c.Publish(t.Context(), &paho.Publish{Topic: "edgestock/wh1/devices/scan1/scan", QoS: 1, Payload: []byte("4006381333931"),
		Properties: &paho.PublishProperties{User: paho.UserProperties{{Key: "id", Value: "s1"}}}})
	require.NoError(t, err)
	require.Equal(t, int64(1), ta.OnHand(t, "SKU-S"), "the new mode applies without a restart")

	// An invalid file is refused and reported; the running config stays.
	write("devices:\n  results: sometimes\n")
	require.Eventually(t, func() bool { return status().ConfigError != "" }, 10*time.Second, 20*time.Millisecond)
	st := status()
	require.Contains(t, st.ConfigError, "devices.results")
	require.Equal(t, 2, st.ConfigGeneration)

	// A restart-only change is reported as such.
	write("devices:\n  rate-limit: 0\n  modes: {scan1: receive}\nmqtt:\n  topic-prefix: other\n")
	require.Eventually(t, func() bool { return len(status().RestartRequired) > 0 }, 10*time.Second, 20*time.Millisecond)
	st = status()
	require.Equal(t, []string{"mqtt"}, st.RestartRequired)
	require.Empty(t, st.ConfigError)
}
