package hub_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/sync/hub"
)

// The hub gathers each warehouse's replenishment figures from its agent
// and totals them per SKU; an agent it cannot ask is named, not hidden.
func TestHub_Replenishment(t *testing.T) {
	a1, a2 := startAgent(t, "wh1", t.TempDir()), startAgent(t, "wh2", t.TempDir())
	down := newProxy(t, a2.HTTPAddr())
	h := startHub(t, t.TempDir(), map[string]string{"wh1": a1.Base, "wh2": down.URL()})
	base := "http://" + h.HTTPAddr()
	history := func(a *testAgent, sku string, qty, stock int) {
		t.Helper()
		events := []string{fmt.Sprintf(`{"id":"r-%s","type":"receive","sku":%q,"qty":%d}`, sku, sku, stock)}
		for d := 13; d >= 0; d-- {
			ts := time.Now().Add(-time.Duration(d) * 24 * time.Hour).UTC().Format(time.RFC3339)
			events = append(events, fmt.Sprintf(`{"id":"s-%s-%d","type":"sale","sku":%q,"qty":%d,"ts":%q}`, sku, d, sku, qty, ts))
		}
		postJSON(t, a.Base+"/v1/events", "["+strings.Join(events, ",")+"]")
	}
	history(a1, "P-1", 4, 100)
	history(a2, "P-1", 2, 100)
	history(a2, "P-2", 1, 500)

	var got hub.Replenishment
	require.Eventually(t, func() bool {
		got = hub.Replenishment{}
		require.Equal(t, http.StatusOK, send(t, "GET", base+"/v1/replenishment", "", "", &got))
		return len(got.Items) == 5 && got.Items[0].OnHand == 44 && got.Items[1].OnHand == 72
	}, 15*time.Second, 50*time.Millisecond, "%+v", &got)
	require.Empty(t, got.Unavailable)
	wh1, wh2, total := got.Items[0], got.Items[1], got.Items[2]
	require.Equal(t, []string{"P-1/wh1", "P-1/wh2", "P-1/*", "P-2/wh2", "P-2/*"}, keys(got))
	require.Equal(t, int64(116), total.OnHand)
	require.InDelta(t, wh1.DailyDemand+wh2.DailyDemand, total.DailyDemand, 0.002)
	require.InDelta(t, 116/total.DailyDemand, *total.DaysOfCover, 0.01)
	require.Equal(t, wh1.SuggestedQty+wh2.SuggestedQty, total.SuggestedQty)
	require.Empty(t, got.Next)

	// Paged by SKU, a warehouse filter, and below-days over totals.
	require.Equal(t, http.StatusOK, send(t, "GET", base+"/v1/replenishment?limit=1", "", "", &got))
	require.Equal(t, []string{"P-1/wh1", "P-1/wh2", "P-1/*"}, keys(got))
	require.Equal(t, "P-1", got.Next)
	require.Equal(t, http.StatusOK, send(t, "GET", base+"/v1/replenishment?after=P-1", "", "", &got))
	require.Equal(t, []string{"P-2/wh2", "P-2/*"}, keys(got))
	require.Equal(t, http.StatusOK, send(t, "GET", base+"/v1/replenishment?warehouse=wh1", "", "", &got))
	require.Equal(t, []string{"P-1/wh1", "P-1/*"}, keys(got))
	require.Equal(t, http.StatusOK, send(t, "GET", base+"/v1/replenishment?below-days=100", "", "", &got))
	require.Equal(t, []string{"P-1/wh1", "P-1/wh2", "P-1/*"}, keys(got), "P-2 has 500 days")

	// wh2 unreachable: named, and left out of the totals.
	down.Cut()
	require.Equal(t, http.StatusOK, send(t, "GET", base+"/v1/replenishment", "", "", &got))
	require.Len(t, got.Unavailable, 1)
	require.Equal(t, "wh2", got.Unavailable[0].Warehouse)
	require.Equal(t, []string{"P-1/wh1", "P-1/*"}, keys(got))
	require.Equal(t, http.StatusBadRequest, send(t, "GET", base+"/v1/replenishment?warehouse=wh9", "", "", nil))
	require.Equal(t, http.StatusBadRequest, send(t, "GET", base+"/v1/replenishment?below-days=soon", "", "", nil))
}

func keys(r hub.Replenishment) []string {
	var out []string
	for _, it := range r.Items {
		out = append(out, it.SKU+"/"+it.Warehouse)
	}
	return out
}
