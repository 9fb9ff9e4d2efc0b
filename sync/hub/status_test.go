package hub_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	esync "github.com/edgestock/edgestock/sync"
	"github.com/edgestock/edgestock/sync/hub"
)

// A link whose pushes fail says so in GET /v1/warehouses for as long as
// they fail, however many pulls succeed meanwhile, and is not online; once
// a push succeeds it is online again at once, not after the push loop's
// idle wait (5 s).
func TestHub_PushErrorStays(t *testing.T) {
	const replica = "wh1.0000000000000001"
	var pulls atomic.Int64
	var healed atomic.Bool
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body any
		switch r.URL.Path {
		case "/v1/sync/deltas":
			pulls.Add(1)
			time.Sleep(20 * time.Millisecond) // a short long poll
			body = esync.Deltas{Replica: replica, Next: replica + "@1",
				Entries: []esync.Entry{{Warehouse: "wh1", Location: "default", SKU: "S", Replica: replica, P: 3}}}
		case "/v1/sync/state":
			body = esync.State{Replica: replica}
		case "/v1/sync/merge":
			if !healed.Load() {
				http.Error(w, "disk full", http.StatusInternalServerError)
				return
			}
			body = esync.MergeResponse{}
		default:
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(fake.Close)
	h := startHub(t, t.TempDir(), map[string]string{"wh1": fake.URL})
	// The conditions run on testify's goroutines, which may outlive the
	// test by one tick: they report, never fail the test themselves.
	status := func() (hub.WarehouseStatus, bool) {
		resp, err := http.Get("http://" + h.HTTPAddr() + "/v1/warehouses")
		if err != nil {
			return hub.WarehouseStatus{}, false
		}
		defer resp.Body.Close()
		var ws struct{ Warehouses []hub.WarehouseStatus }
		if json.NewDecoder(resp.Body).Decode(&ws) != nil || len(ws.Warehouses) != 1 {
			return hub.WarehouseStatus{}, false
		}
		return ws.Warehouses[0], true
	}
	failing := func(s hub.WarehouseStatus) bool { return strings.Contains(s.LastError, "disk full") && !s.Online }
	require.Eventually(t, func() bool { s, ok := status(); return ok && failing(s) }, 10*time.Second, 10*time.Millisecond)
	before := pulls.Load()
	require.Never(t, func() bool { s, ok := status(); return ok && !failing(s) }, time.Second, 5*time.Millisecond)
	s, ok := status()
	require.True(t, ok)
	require.True(t, strings.HasPrefix(s.LastError, "push: POST /v1/sync/merge: 500"), s.LastError)
	require.Greater(t, pulls.Load(), before+5, "pulls kept succeeding meanwhile")

	healed.Store(true)
	require.Eventually(t, func() bool { s, ok := status(); return ok && s.Online && s.LastError == "" },
		3*time.Second, 10*time.Millisecond, "online again after the first successful push")
}
