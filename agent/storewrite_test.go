package agent_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/internal/store"
)

// A failing store (here: another connection holds the write lock, so every
// commit ends SQLITE_BUSY) answers HTTP writes 503 store_unavailable after
// the write deadline, and at once while it is known to fail, instead of
// hanging; once the store recovers the same write succeeds.
func TestAgent_HTTPWriteOnFailingStore(t *testing.T) {
	dir := t.TempDir()
	a := startAgent(t, dir, nil)
	blocker, err := sql.Open("sqlite", "file:"+filepath.Join(dir, store.FileName)+"?_txlock=immediate&_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	t.Cleanup(func() { _ = blocker.Close() })
	lock, err := blocker.BeginTx(t.Context(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = lock.Rollback() })

	client := &http.Client{Timeout: time.Minute} // the old code never answered
	post := func(body string) (int, string) {
		t.Helper()
		resp, err := client.Post(a.Base+"/v1/events?device=pos-1", "application/json", bytes.NewBufferString(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		var e struct {
			Error struct{ Code, Message string }
		}
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &e)
		return resp.StatusCode, e.Error.Code
	}
	body := `{"id":"e1","type":"receive","sku":"SKU-1","qty":3}`
	status, code := post(body)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "store_unavailable", code)
	// Known to fail now: refused without waiting for the deadline.
	require.Eventually(t, func() bool {
		var st agent.Status
		return a.Get(t, "/v1/status", &st) == http.StatusOK && !st.StoreOK
	}, 30*time.Second, 10*time.Millisecond)
	status, code = post(`{"id":"e2","type":"receive","sku":"SKU-1","qty":1}`)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "store_unavailable", code)

	require.NoError(t, lock.Rollback())
	require.Eventually(t, func() bool { status, _ := post(body); return status == http.StatusOK }, 30*time.Second, 50*time.Millisecond)
	require.EqualValues(t, 3, a.OnHand(t, "SKU-1"), "e1 counted once (queued, then retried and deduplicated); e2 never queued")
}
