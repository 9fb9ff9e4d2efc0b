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

// A 100,000-line CSV is dropped; the agent is SIGKILLed while reading it
// and restarted: every line is applied exactly once, and every bad line
// (one in a thousand) is quarantined: once, or, for those read before the
// kill, again when the file is read again (every delivery of a bad payload
// is kept).
func TestCrash_FiledropMidFile(t *testing.T) {
	const lines, skus, badEvery = 100_000, 10, 1000
	const bad = lines / badEvery
	const good = lines - bad
	dir, drop := t.TempDir(), t.TempDir()
	config := filepath.Join(t.TempDir(), "agent.yaml")
	require.NoError(t, os.WriteFile(config, fmt.Appendf(nil, "filedrop:\n  dir: %s\n  settle: 50ms\n", drop), 0o600))
	args := []string{"agent", "--config", config, "--warehouse", "wh1", "--data-dir", dir,
		"--http", testenv.FreeAddr(t), "--mqtt-listen", testenv.FreeAddr(t)}

	var csv strings.Builder
	want := map[string]int64{}
	csv.WriteString("type,sku,qty\n")
	for i := range lines {
		sku := fmt.Sprintf("SKU-%d", i%skus)
		if i%badEvery == badEvery-1 {
			fmt.Fprintf(&csv, "receive,%s,lots\n", sku)
			continue
		}
		if i%4 == 3 {
			fmt.Fprintf(&csv, "sale,%s,1\n", sku)
			want[sku]--
		} else {
			fmt.Fprintf(&csv, "receive,%s,%d\n", sku, i%3+1)
			want[sku] += int64(i%3 + 1)
		}
	}
	c := startChild(t, args...)
	tmp := filepath.Join(drop, ".export.csv.part")
	require.NoError(t, os.WriteFile(tmp, []byte(csv.String()), 0o644))
	require.NoError(t, os.Rename(tmp, filepath.Join(drop, "export.csv")))

	// Kill it once a good part of the file, but not all, is durable.
	require.Eventually(t, func() bool { return c.eventAt(t, lines/5) }, 120*time.Second, 5*time.Millisecond)
	c.kill(t)
	_, err := os.Stat(filepath.Join(drop, "export.csv"))
	require.NoError(t, err, "killed mid-file: the file is still waiting")
	require.False(t, c.eventAt(t, good), "killed before the end of the file")

	c = startChild(t, args...)
	done := filepath.Join(drop, "done", "export.csv")
	require.Eventually(t, func() bool { _, err := os.Stat(done); return err == nil }, 180*time.Second, 50*time.Millisecond)
	for sku, n := range want {
		require.Equal(t, n, c.onHand(t, sku), sku)
	}
	require.True(t, c.eventAt(t, good), "every good line is in the log")
	require.False(t, c.eventAt(t, good+1), "and none twice")
	var quarantined struct {
		Items []struct {
			EventID string `json:"event_id"`
		}
	}
	resp, err := http.Get(c.base + "/v1/quarantine?limit=500")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&quarantined))
	resp.Body.Close()
	perLine := map[string]int{}
	for _, q := range quarantined.Items {
		perLine[q.EventID]++
	}
	require.Len(t, perLine, bad, "every bad line is quarantined")
	for id, n := range perLine {
		require.LessOrEqual(t, n, 2, "%s: once, or once more on the read after the restart", id)
	}
	var report struct {
		Lines, Applied, Duplicates int
		Rejected                   []struct{}
	}
	b, err := os.ReadFile(done + ".report.json")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &report))
	require.Equal(t, lines, report.Lines)
	require.Equal(t, good, report.Applied+report.Duplicates)
	require.Len(t, report.Rejected, bad)
	require.GreaterOrEqual(t, report.Duplicates, lines/5, "the restart re-read what was applied before the kill")
	t.Logf("after the restart: %d lines applied, %d already applied before the kill", report.Applied, report.Duplicates)
}

// eventAt reports whether the event log has an entry with seq n.
func (c *child) eventAt(t *testing.T, n int) bool {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("%s/v1/events?since=%d&limit=1", c.base, n-1))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var page struct{ Events []loggedEvent }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
	return len(page.Events) == 1 && page.Events[0].Seq == int64(n)
}
