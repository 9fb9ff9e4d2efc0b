package hub_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	stdsync "sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	esync "github.com/edgestock/edgestock/sync"
)

// postMerge sends a merge body to an agent and requires 200.
func postMerge(t *testing.T, base string, req esync.MergeRequest) {
	t.Helper()
	b, err := json.Marshal(req)
	require.NoError(t, err)
	resp, err := http.Post(base+"/v1/sync/merge", "application/json", bytes.NewReader(b))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
}

// escrowAt reads every escrow total an agent's deltas carry.
func escrowAt(t *testing.T, base string) []esync.EscrowEntry {
	var all []esync.EscrowEntry
	for cursor, more := "", true; more; {
		var d esync.Deltas
		require.Equal(t, http.StatusOK, getJSON(t, base+"/v1/sync/deltas?since="+cursor, &d))
		all = append(all, d.Escrow...)
		cursor, more = d.Next, d.More
	}
	return all
}

// Rights totals travel with the delta sync (SPEC §9): merged into wh1, they
// reach the hub and from there wh2, once, as states.
func TestHub_EscrowTravels(t *testing.T) {
	a1, a2 := startAgent(t, "wh1", t.TempDir()), startAgent(t, "wh2", t.TempDir())
	h := startHub(t, t.TempDir(), map[string]string{"wh1": a1.Base, "wh2": a2.Base})
	spend := esync.EscrowEntry{Warehouse: "wh1", SKU: "SKU-E", Replica: "hub.feedfeedfeedfeed", Kind: "spend", Holder: "amazon", Total: 3}
	allot := esync.EscrowEntry{Warehouse: "wh1", SKU: "SKU-E", Replica: "wh1.0123456789abcdef", Kind: "move", Holder: "local", To: "amazon", Total: 5}
	postMerge(t, a1.Base, esync.MergeRequest{Escrow: []esync.EscrowEntry{spend, allot}})
	require.Eventually(t, func() bool { return len(escrowAt(t, a2.Base)) == 2 }, 10*time.Second, 20*time.Millisecond,
		"wh1's rights reach wh2 through the hub")
	require.ElementsMatch(t, []esync.EscrowEntry{spend, allot}, escrowAt(t, a2.Base))

	// A higher total replaces the lower one everywhere; a lower one changes nothing.
	spend.Total = 4
	postMerge(t, a1.Base, esync.MergeRequest{Escrow: []esync.EscrowEntry{spend, {Warehouse: "wh1", SKU: "SKU-E",
		Replica: "hub.feedfeedfeedfeed", Kind: "spend", Holder: "amazon", Total: 1}}})
	require.Eventually(t, func() bool {
		for _, e := range escrowAt(t, a2.Base) {
			if e.Kind == "spend" && e.Total == 4 {
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond)
	_ = h
}

// An agent of protocol 1 (its state says none) refuses merge bodies with
// rights in them: the hub sends it counters only, so it keeps syncing.
func TestHub_EscrowNotSentToProtocol1(t *testing.T) {
	const replica = "wh1.0000000000000002"
	var mu stdsync.Mutex
	var merges []map[string]json.RawMessage
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body any
		switch r.URL.Path {
		case "/v1/sync/deltas":
			time.Sleep(20 * time.Millisecond) // a short long poll
			body = esync.Deltas{Replica: replica, Next: replica + "@0"}
		case "/v1/sync/state":
			body = map[string]string{"replica": replica, "hub_cursor": ""} // protocol 1: no field
		case "/v1/sync/merge":
			var m map[string]json.RawMessage
			_ = json.NewDecoder(r.Body).Decode(&m)
			mu.Lock()
			merges = append(merges, m)
			mu.Unlock()
			body = esync.MergeResponse{}
		default:
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(fake.Close)
	// wh2's agent holds rights, which the hub pulls and would push on.
	a2 := startAgent(t, "wh2", t.TempDir())
	postMerge(t, a2.Base, esync.MergeRequest{
		Entries: []esync.Entry{{Warehouse: "wh2", Location: "default", SKU: "S", Replica: "wh2.0000000000000009", P: 2}},
		Escrow:  []esync.EscrowEntry{{Warehouse: "wh2", SKU: "S", Replica: "hub.0000000000000009", Kind: "spend", Holder: "ebay", Total: 1}}})
	startHub(t, t.TempDir(), map[string]string{"wh1": fake.URL, "wh2": a2.Base})
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range merges {
			if string(m["entries"]) != "[]" && m["entries"] != nil {
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "the counters reach the old agent")
	mu.Lock()
	defer mu.Unlock()
	for _, m := range merges {
		_, has := m["escrow"]
		require.False(t, has, "no rights to an agent of protocol 1")
	}
}
