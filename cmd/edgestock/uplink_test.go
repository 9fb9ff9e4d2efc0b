package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/testenv"
)

// Issue #17's acceptance: ten agents that dial (--hub H1,H2) and that no
// hub could reach, two hub processes on one PostgreSQL. Totals are exact
// at both; after kill -9 of H1 all ten are online at H2 within 15 s,
// events sent meanwhile arrive, and nothing is counted twice.
func TestCrash_UplinkFailover(t *testing.T) {
	const sites = 10
	dsn := testenv.PostgresDSN(t)
	var hubArgs []string
	for i := range sites {
		hubArgs = append(hubArgs, "--agent", fmt.Sprintf("wh%d=uplink", i))
	}
	h1 := startChild(t, append([]string{"hub", "--store", dsn, "--name", "h1", "--http", testenv.FreeAddr(t)}, hubArgs...)...)
	h2 := startChild(t, append([]string{"hub", "--store", dsn, "--name", "h2", "--http", testenv.FreeAddr(t)}, hubArgs...)...)

	tokens := t.TempDir()
	var agents []*child
	for i := range sites {
		wh := fmt.Sprintf("wh%d", i)
		code, token, stderr := run(t, "token", "issue", "--store", dsn, "--name", wh+" uplink", "--scope", "uplink", "--warehouse", wh)
		require.Equal(t, exitOK, code, stderr)
		file := filepath.Join(tokens, wh)
		require.NoError(t, os.WriteFile(file, []byte(token), 0o600))
		agents = append(agents, startChild(t, "agent", "--warehouse", wh, "--data-dir", t.TempDir(),
			"--http", testenv.FreeAddr(t), "--mqtt-listen", testenv.FreeAddr(t),
			"--hub", h1.base+","+h2.base, "--hub-token", "@"+file))
	}
	receive := func(id string, qty int) {
		for _, a := range agents {
			resp, err := http.Post(a.base+"/v1/events", "application/json",
				strings.NewReader(fmt.Sprintf(`{"id":%q,"type":"receive","sku":"UP-1","qty":%d}`, id, qty)))
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
		}
	}
	total := func(h *child) int64 {
		var v struct {
			OnHand int64 `json:"on_hand"`
		}
		resp, err := http.Get(h.base + "/v1/stock/UP-1")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		_ = json.NewDecoder(resp.Body).Decode(&v)
		return v.OnHand
	}
	onlineAt := func(h *child) int {
		var w struct {
			Warehouses []struct {
				Online bool `json:"online"`
			} `json:"warehouses"`
		}
		resp, err := http.Get(h.base + "/v1/warehouses")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		_ = json.NewDecoder(resp.Body).Decode(&w)
		n := 0
		for _, s := range w.Warehouses {
			if s.Online {
				n++
			}
		}
		return n
	}

	receive("r1", 5)
	for _, h := range []*child{h1, h2} {
		require.Eventually(t, func() bool { return total(h) == 5*sites }, 30*time.Second, 50*time.Millisecond, "totals at %s", h.base)
	}
	require.Equal(t, sites, onlineAt(h1), "every agent dialled the first URL")

	h1.kill(t)
	killed := time.Now()
	receive("r2", 1) // sent while they move
	require.Eventually(t, func() bool { return onlineAt(h2) == sites }, 15*time.Second, 50*time.Millisecond,
		"all online at the other process within 15 s")
	t.Logf("all %d agents online at h2 %v after kill -9 of h1", sites, time.Since(killed).Round(time.Millisecond))
	require.Eventually(t, func() bool { return total(h2) == 6*sites }, 15*time.Second, 50*time.Millisecond, "events sent meanwhile arrive")
	time.Sleep(time.Second) // a double count would show by now; the test must not need this to pass
	require.Equal(t, int64(6*sites), total(h2), "nothing counted twice")
}

// simulate sites: light agents dial the hub with tokens the command
// issues in the hub's store, and every receive they acknowledged reaches
// the hub.
func TestMain_SimulateSites(t *testing.T) {
	hubDir := t.TempDir()
	var args []string
	for i := range 5 {
		args = append(args, "--agent", fmt.Sprintf("sim%03d=uplink", i))
	}
	h := startChild(t, append([]string{"hub", "--data-dir", hubDir, "--http", testenv.FreeAddr(t)}, args...)...)
	code, stdout, stderr := run(t, "simulate", "sites", "--count", "5", "--prefix", "sim", "--hub", h.base, "--data-dir", hubDir,
		"--rate", "20", "--duration", "2s")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stderr, "5 sites up")
	var acked, failed int
	for _, line := range strings.Split(stdout, "\n") {
		_, _ = fmt.Sscanf(line, "acked: %d", &acked)
		_, _ = fmt.Sscanf(line, "failed: %d", &failed)
	}
	require.Positive(t, acked, stdout)
	require.Zero(t, failed, stdout)
	require.Contains(t, stdout, "not pulled by the hub within a minute: 0 sites")
	// Every receive a site acknowledged reached the hub, once.
	var page struct {
		Items []struct {
			OnHand int64 `json:"on_hand"`
		} `json:"items"`
	}
	resp, err := http.Get(h.base + "/v1/stock?prefix=S-sim&limit=100")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
	resp.Body.Close()
	var total int64
	for _, it := range page.Items {
		total += it.OnHand
	}
	require.Equal(t, int64(acked), total)
}
