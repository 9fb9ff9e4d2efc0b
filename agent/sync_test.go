package agent_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/sync"
)

func TestSync_DeltasMergeState(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil)
	a.Post(t, "/v1/events", `[{"id":"1","type":"receive","sku":"SKU-1","qty":5},{"id":"2","type":"sale","sku":"SKU-1","qty":2}]`)
	var d sync.Deltas
	require.Equal(t, http.StatusOK, a.Get(t, "/v1/sync/deltas?since=", &d))
	require.Equal(t, a.ReplicaID(), d.Replica)
	require.Equal(t, []sync.Entry{{Warehouse: "wh1", Location: "default", SKU: "SKU-1", Replica: a.ReplicaID(), P: 5, N: 2}}, d.Entries)

	// A long poll returns as soon as something is committed.
	done := make(chan sync.Deltas, 1)
	go func() {
		var next sync.Deltas
		a.Get(t, "/v1/sync/deltas?wait=30s&since="+d.Next, &next)
		done <- next
	}()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	a.Post(t, "/v1/events", `{"id":"3","type":"receive","sku":"SKU-2","qty":1}`)
	select {
	case next := <-done:
		require.Less(t, time.Since(start), 5*time.Second)
		require.Len(t, next.Entries, 1)
		require.Equal(t, "SKU-2", next.Entries[0].SKU)
	case <-time.After(10 * time.Second):
		t.Fatal("long poll did not return after a commit")
	}

	// gzip on request.
	req, _ := http.NewRequest("GET", a.Base+"/v1/sync/deltas", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	require.NoError(t, err)
	require.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
	gz, err := gzip.NewReader(resp.Body)
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(gz).Decode(&d))
	resp.Body.Close()
	require.Len(t, d.Entries, 2)

	// The hub merges another warehouse's state: the global view shows it.
	merge := func(body string) sync.MergeResponse {
		var r sync.MergeResponse
		resp, err := http.Post(a.Base+"/v1/sync/merge", "application/json", bytes.NewBufferString(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
		return r
	}
	body := `{"hub_cursor":"hub-7","entries":[{"warehouse":"wh2","location":"default","sku":"SKU-1","replica":"wh2.aa","p":10,"n":1}]}`
	require.Equal(t, 1, merge(body).Merged)
	require.Equal(t, 0, merge(body).Merged, "a replay changes nothing")
	require.Equal(t, 0, merge(`{"entries":[{"warehouse":"wh2","location":"default","sku":"SKU-1","replica":"wh2.aa","p":4,"n":0}]}`).Merged, "an older state changes nothing")
	var v agent.StockView
	a.Get(t, "/v1/stock/SKU-1", &v)
	require.Equal(t, int64(3), v.OnHand)
	require.Equal(t, int64(12), v.Global.OnHand)
	require.Equal(t, map[string]int64{"wh1": 3, "wh2": 9}, v.Global.Warehouses)
	require.NotNil(t, v.Global.AsOf)
	// The list shows the same global view as the single SKU.
	var page struct {
		Items []agent.StockView `json:"items"`
	}
	a.Get(t, "/v1/stock?limit=10", &page)
	require.Len(t, page.Items, 2)
	require.Equal(t, "SKU-1", page.Items[0].SKU)
	require.Equal(t, v.Global, page.Items[0].Global)
	require.Equal(t, "SKU-2", page.Items[1].SKU)
	require.Equal(t, map[string]int64{"wh1": 1}, page.Items[1].Global.Warehouses)
	require.Equal(t, v.Global.AsOf, page.Items[1].Global.AsOf)
	var st sync.State
	a.Get(t, "/v1/sync/state", &st)
	require.Equal(t, sync.State{Replica: a.ReplicaID(), HubCursor: "hub-7", Protocol: sync.Protocol}, st)
}

// A hub cursor past the database's own versions means the database is an
// older copy of itself: the agent starts a new incarnation and answers from
// the start, instead of an empty page (the probe of #21).
func TestSync_CursorAheadIsNewIncarnation(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil)
	a.Post(t, "/v1/events", `{"id":"1","type":"receive","sku":"SKU-1","qty":5}`)
	old := a.ReplicaID()
	var d sync.Deltas
	require.Equal(t, http.StatusOK, a.Get(t, "/v1/sync/deltas?since="+sync.FormatCursor(old, 999), &d))
	require.NotEqual(t, old, d.Replica, "a new incarnation")
	require.Equal(t, a.ReplicaID(), d.Replica)
	require.Len(t, d.Entries, 1, "everything again, from the start")
	a.Post(t, "/v1/events", `{"id":"2","type":"receive","sku":"SKU-1","qty":1}`)
	require.Equal(t, http.StatusOK, a.Get(t, "/v1/sync/deltas?since=", &d))
	require.Contains(t, d.Entries, sync.Entry{Warehouse: "wh1", Location: "default", SKU: "SKU-1", Replica: a.ReplicaID(), P: 1})
}

// The finding: one merge of 1,030 entries with p = 2^53 overflowed SUM and
// every stock read answered 500 from then on. Now the merge is refused 422
// out_of_range, naming the SKU, and the reads keep working.
func TestSync_MergeOutOfRange(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil)
	a.Post(t, "/v1/events", `{"id":"1","type":"receive","sku":"SKU-1","qty":5}`)
	req := sync.MergeRequest{HubCursor: "hub-9"}
	for i := range 1030 {
		req.Entries = append(req.Entries, sync.Entry{Warehouse: "wh2", Location: "default", SKU: "SKU-1", Replica: fmt.Sprint("wh2.", i), P: 1 << 53})
	}
	body, err := json.Marshal(req)
	require.NoError(t, err)
	resp, err := http.Post(a.Base+"/v1/sync/merge", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	var e struct {
		Error struct{ Code, Message string }
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
	resp.Body.Close()
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Equal(t, "out_of_range", e.Error.Code)
	require.Contains(t, e.Error.Message, "SKU-1")

	var v agent.StockView
	require.Equal(t, http.StatusOK, a.Get(t, "/v1/stock/SKU-1", &v))
	require.Equal(t, int64(5), v.Global.OnHand)
	require.Equal(t, http.StatusOK, a.Get(t, "/v1/stock", nil))
	var st sync.State
	a.Get(t, "/v1/sync/state", &st)
	require.Empty(t, st.HubCursor, "nothing of the refused merge is kept")
}

// Rights totals in a merge are checked like counter entries: a kind the
// protocol does not know, a move without its receiving holder or a total
// past 2^53 is refused whole, naming the total.
func TestSync_MergeEscrowRefusals(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil)
	for _, tc := range []struct {
		name   string
		entry  sync.EscrowEntry
		status int
		want   string
	}{
		{"unknown kind", sync.EscrowEntry{Warehouse: "wh2", SKU: "S", Replica: "hub.x", Kind: "steal", Holder: "amazon", Total: 1}, http.StatusBadRequest, `kind "steal"`},
		{"move without to", sync.EscrowEntry{Warehouse: "wh2", SKU: "S", Replica: "wh2.x", Kind: "move", Holder: "local", Total: 1}, http.StatusBadRequest, "a move names another holder"},
		{"spend with a to", sync.EscrowEntry{Warehouse: "wh2", SKU: "S", Replica: "hub.x", Kind: "spend", Holder: "amazon", To: "ebay", Total: 1}, http.StatusBadRequest, "a move names another holder"},
		{"holder not an ID", sync.EscrowEntry{Warehouse: "wh2", SKU: "S", Replica: "hub.x", Kind: "spend", Holder: "a b", Total: 1}, http.StatusBadRequest, "must be IDs"},
		{"past 2^53", sync.EscrowEntry{Warehouse: "wh2", SKU: "S", Replica: "hub.x", Kind: "spend", Holder: "amazon", Total: 1<<53 + 1}, http.StatusUnprocessableEntity, "at most 2^53"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := json.Marshal(sync.MergeRequest{Escrow: []sync.EscrowEntry{tc.entry}})
			require.NoError(t, err)
			resp, err := http.Post(a.Base+"/v1/sync/merge", "application/json", bytes.NewReader(body))
			require.NoError(t, err)
			defer resp.Body.Close()
			var e struct {
				Error struct{ Code, Message string }
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
			require.Equal(t, tc.status, resp.StatusCode)
			require.Contains(t, e.Error.Message, tc.want)
		})
	}
	var d sync.Deltas
	require.Equal(t, http.StatusOK, a.Get(t, "/v1/sync/deltas", &d))
	require.Empty(t, d.Escrow, "nothing of a refused merge is kept")
}
