package agent_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent"
)

// A warehouse allots units to channels from what it still owns (SPEC §9):
// on_hand = unallotted + Σ allotted + committed, local holds and
// allotments share available (unallotted − reserved − safety), never the
// same unit twice, and an allotment is made once per id.
func TestChannels_AllotAndHold(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil)
	status, _ := a.Post(t, "/v1/events", `{"id":"r1","type":"receive","sku":"SKU-A","qty":10}`)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, http.StatusOK, a.do(t, "PUT", "/v1/safety/SKU-A", `{"qty":2}`, nil))

	var got agent.Allotment
	require.Equal(t, http.StatusCreated, a.do(t, "POST", "/v1/allotments", `{"id":"amz-1","sku":"SKU-A","channel":"amazon","qty":5}`, &got))
	require.Equal(t, agent.Allotment{ID: "amz-1", Warehouse: "wh1", SKU: "SKU-A", Channel: "amazon", Qty: 5}, got)
	require.Equal(t, http.StatusOK, a.do(t, "POST", "/v1/allotments", `{"id":"amz-1","sku":"SKU-A","channel":"amazon","qty":5}`, &got),
		"the same allotment again")
	var refusal struct {
		Error     struct{ Code string }
		Available int64
	}
	require.Equal(t, http.StatusConflict, a.do(t, "POST", "/v1/allotments", `{"id":"amz-1","sku":"SKU-A","channel":"amazon","qty":4}`, &refusal))
	require.Equal(t, "id_reused", refusal.Error.Code)

	v := a.stock(t, "SKU-A")
	require.Equal(t, int64(10), v.OnHand)
	require.Equal(t, int64(5), v.Unallotted)
	require.Equal(t, map[string]int64{"amazon": 5}, v.Allotted)
	require.Equal(t, int64(2), v.Safety)
	require.Equal(t, int64(3), v.Available, "10 on hand − 5 allotted − 2 safety")
	require.Equal(t, v.OnHand, v.Unallotted+v.Allotted["amazon"]+v.Committed)

	// A local hold takes 2 of the 3; an allotment of 2 more is refused.
	require.Equal(t, http.StatusCreated, a.do(t, "POST", "/v1/reservations", `{"id":"cart-1","sku":"SKU-A","qty":2}`, nil))
	require.Equal(t, http.StatusConflict, a.do(t, "POST", "/v1/reservations", `{"id":"cart-2","sku":"SKU-A","qty":2}`, &refusal))
	require.Equal(t, "insufficient_stock", refusal.Error.Code)
	require.Equal(t, int64(1), refusal.Available)
	require.Equal(t, http.StatusConflict, a.do(t, "POST", "/v1/allotments", `{"sku":"SKU-A","channel":"ebay","qty":2}`, &refusal))
	require.Equal(t, "insufficient_stock", refusal.Error.Code)
	require.Equal(t, int64(1), refusal.Available)
	require.Equal(t, http.StatusCreated, a.do(t, "POST", "/v1/allotments", `{"sku":"SKU-A","channel":"ebay","qty":1}`, nil))

	var list struct {
		SKU      string
		Channels []agent.ChannelRights
	}
	require.Equal(t, http.StatusOK, a.Get(t, "/v1/allotments?sku=SKU-A", &list))
	require.Equal(t, []agent.ChannelRights{{Channel: "amazon", Allotted: 5}, {Channel: "ebay", Allotted: 1}}, list.Channels)
	v = a.stock(t, "SKU-A")
	require.Equal(t, int64(0), v.Available)
	require.Equal(t, int64(4), v.Unallotted)

	// A POS sale is a fact: applied past what the warehouse owns, taking
	// nothing from the channels.
	status, _ = a.Post(t, "/v1/events", `{"id":"s1","type":"sale","sku":"SKU-A","qty":6}`)
	require.Equal(t, http.StatusOK, status)
	v = a.stock(t, "SKU-A")
	require.Equal(t, int64(4), v.OnHand)
	require.Equal(t, int64(-2), v.Unallotted)
	require.Equal(t, map[string]int64{"amazon": 5, "ebay": 1}, v.Allotted)
	var alerts struct{ Alerts []agent.AlertView }
	require.Equal(t, http.StatusOK, a.Get(t, "/v1/alerts", &alerts))
	var shortfalls []agent.AlertView
	for _, al := range alerts.Alerts {
		if al.Kind == "allotment_shortfall" {
			shortfalls = append(shortfalls, al)
		}
	}
	require.Len(t, shortfalls, 1, "the sale took 2 units the channels were allotted: raised once")
	require.Equal(t, int64(-2), *shortfalls[0].Unallotted)
	require.Equal(t, "SKU-A", shortfalls[0].SKU)
	status, _ = a.Post(t, "/v1/events", `{"id":"s2","type":"sale","sku":"SKU-A","qty":1}`)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, http.StatusOK, a.Get(t, "/v1/alerts", &alerts))
	n := 0
	for _, al := range alerts.Alerts {
		if al.Kind == "allotment_shortfall" {
			n++
		}
	}
	require.Equal(t, 1, n, "deeper in the shortfall: no new crossing")

	for _, bad := range []string{
		`{"sku":"SKU-A","channel":"local","qty":1}`,
		`{"sku":"SKU-A","channel":"amazon","qty":0}`,
		`{"sku":"SKU-A","channel":"amazon","qty":1,"warehouse":"wh9"}`,
		`{"sku":"bad sku","channel":"amazon","qty":1}`,
		`{"sku":"SKU-A","channel":"amazon","qty":1,"extra":true}`,
	} {
		require.Equal(t, http.StatusBadRequest, a.do(t, "POST", "/v1/allotments", bad, nil), bad)
	}
	require.Equal(t, http.StatusBadRequest, a.do(t, "POST", "/v1/reservations", `{"id":"line:o1.1","sku":"SKU-A","qty":1}`, nil),
		"the hub's order lines have ids of their own")
	require.Equal(t, http.StatusBadRequest, a.do(t, "PUT", "/v1/safety/SKU-A", `{"qty":-1}`, nil))
	require.Equal(t, http.StatusBadRequest, a.do(t, "PUT", "/v1/safety/SKU-A", `{}`, nil))
	require.Equal(t, http.StatusBadRequest, a.Get(t, "/v1/allotments", nil))
}

// spendAt merges a hub's spend total of channel on sku, as a sync would.
func spendAt(t *testing.T, a *testAgent, sku, channel string, total uint64) {
	t.Helper()
	body := fmt.Sprintf(`{"entries":[],"escrow":[{"warehouse":"wh1","sku":%q,"replica":"hub.0123456789abcdef","kind":"spend","holder":%q,"total":%d}],"hub_cursor":""}`,
		sku, channel, total)
	require.Equal(t, http.StatusOK, a.do(t, "POST", "/v1/sync/merge", body, nil))
}

// A channel configured with a target and a low-water mark is topped up
// per SKU while the hub is reachable, from what the warehouse has
// available, and only then (SPEC §9).
func TestChannels_TopUp(t *testing.T) {
	a := startAgent(t, t.TempDir(), func(c *agent.Config) {
		c.Channels = map[string]agent.ChannelConfig{"amazon": {Target: 5, LowWater: 2}}
	})
	status, _ := a.Post(t, "/v1/events", `{"id":"r1","type":"receive","sku":"SKU-T","qty":10}`)
	require.Equal(t, http.StatusOK, status)
	a.TopUpNow(t.Context()) // no hub yet
	require.Equal(t, int64(10), a.stock(t, "SKU-T").Unallotted, "no allotment while no hub can sell it")

	require.Equal(t, http.StatusOK, a.Get(t, "/v1/sync/deltas", nil)) // the hub asks: it is reachable
	require.Eventually(t, func() bool { return a.stock(t, "SKU-T").Allotted["amazon"] == 5 }, 10*time.Second, 20*time.Millisecond)

	spendAt(t, a, "SKU-T", "amazon", 4) // amazon sold 4: 1 left, below low-water
	require.Eventually(t, func() bool { return a.stock(t, "SKU-T").Allotted["amazon"] == 5 }, 10*time.Second, 20*time.Millisecond)
	v := a.stock(t, "SKU-T")
	require.Equal(t, int64(1), v.Unallotted, "10 − 5 allotted − 4 committed")

	spendAt(t, a, "SKU-T", "amazon", 9) // 5 more sold: 0 left, and 1 available to give
	require.Eventually(t, func() bool { return a.stock(t, "SKU-T").Allotted["amazon"] == 1 }, 10*time.Second, 20*time.Millisecond)
	v = a.stock(t, "SKU-T")
	require.Equal(t, int64(0), v.Unallotted)
	require.Equal(t, int64(0), v.Available)
	require.Equal(t, v.OnHand, v.Unallotted+v.Allotted["amazon"]+v.Committed)
}
