package hub_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/internal/ingest"
	"github.com/edgestock/edgestock/internal/testenv"
	"github.com/edgestock/edgestock/sync/hub"
)

// send sends body with token ("" for none) and decodes the answer into
// out (nil: dropped); it returns the status.
func send(t *testing.T, method, url, token, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil {
		require.NoError(t, json.Unmarshal(b, out), string(b))
	}
	return resp.StatusCode
}

func ats(t *testing.T, base, sku, channel string) hub.ATS {
	t.Helper()
	var a hub.ATS
	require.Equal(t, http.StatusOK, send(t, "GET", base+"/v1/ats/"+sku+"?channel="+channel, "", "", &a))
	return a
}

// insufficientRights is the 409 of an order past the channel's rights.
type insufficientRights struct {
	Error struct{ Code string }
	SKU   string
	ATS   int64
}

// The heart of SPEC §9: a warehouse allots 6 of its 10 units to amazon and
// goes offline. The hub keeps selling amazon's 6, and not one more; the
// warehouse keeps holding its own 4 for local carts, and not one more. No
// unit is promised twice, and once the link is back the warehouse sees
// the orders as committed stock.
func TestHub_SellsAllotmentsWhileOffline(t *testing.T) {
	a := startAgent(t, "wh1", t.TempDir())
	link := newProxy(t, strings.TrimPrefix(a.Base, "http://"))
	h := startHub(t, t.TempDir(), map[string]string{"wh1": link.URL()})
	base := "http://" + h.HTTPAddr()

	status, _ := a.Post(t, "/v1/events", `{"id":"r1","type":"receive","sku":"SKU-O","qty":10}`)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, http.StatusCreated, send(t, "POST", a.Base+"/v1/allotments", "", `{"id":"amz","sku":"SKU-O","channel":"amazon","qty":6}`, nil))
	require.Eventually(t, func() bool { return ats(t, base, "SKU-O", "amazon").ATS == 6 }, 10*time.Second, 20*time.Millisecond,
		"the allotment reaches the hub")
	require.True(t, ats(t, base, "SKU-O", "amazon").Warehouses["wh1"].Online)
	link.Cut()
	require.Eventually(t, func() bool { return !ats(t, base, "SKU-O", "amazon").Warehouses["wh1"].Online }, 10*time.Second, 20*time.Millisecond,
		"the ATS says the warehouse is offline")
	require.NotNil(t, ats(t, base, "SKU-O", "amazon").Warehouses["wh1"].AsOf, "as of the last exchange")

	// A cart hold works offline too, on the rights the hub holds.
	var cart hub.Hold
	require.Equal(t, http.StatusCreated, send(t, "POST", base+"/v1/holds", "", `{"id":"offline-cart","sku":"SKU-O","channel":"amazon","qty":6}`, &cart))
	require.Equal(t, int64(0), ats(t, base, "SKU-O", "amazon").ATS)
	require.Equal(t, http.StatusOK, send(t, "DELETE", base+"/v1/holds/offline-cart", "", "", nil))

	var o hub.Order
	require.Equal(t, http.StatusCreated, send(t, "POST", base+"/v1/orders", "", `{"id":"o1","channel":"amazon","lines":[{"sku":"SKU-O","qty":4}]}`, &o))
	require.Equal(t, []hub.OrderLine{{ID: "o1.1", SKU: "SKU-O", Qty: 4, Warehouse: "wh1"}}, o.Lines)
	var again hub.Order
	require.Equal(t, http.StatusOK, send(t, "POST", base+"/v1/orders", "", `{"id":"o1","channel":"amazon","lines":[{"sku":"SKU-O","qty":4}]}`, &again),
		"the same order again")
	require.Equal(t, o, again)
	require.Equal(t, http.StatusConflict, send(t, "POST", base+"/v1/orders", "", `{"id":"o1","channel":"amazon","lines":[{"sku":"SKU-O","qty":1}]}`, nil),
		"the same id with another body")
	var short insufficientRights
	require.Equal(t, http.StatusConflict, send(t, "POST", base+"/v1/orders", "", `{"id":"o2","channel":"amazon","lines":[{"sku":"SKU-O","qty":3}]}`, &short))
	require.Equal(t, insufficientRights{Error: struct{ Code string }{"insufficient_rights"}, SKU: "SKU-O", ATS: 2}, short)
	require.Equal(t, http.StatusConflict, send(t, "POST", base+"/v1/orders", "", `{"id":"e1","channel":"ebay","lines":[{"sku":"SKU-O","qty":1}]}`, nil),
		"ebay was allotted nothing")
	require.Equal(t, http.StatusCreated, send(t, "POST", base+"/v1/orders", "", `{"id":"o3","channel":"amazon","lines":[{"sku":"SKU-O","qty":1},{"sku":"SKU-O","qty":1}]}`, nil))
	require.Equal(t, int64(0), ats(t, base, "SKU-O", "amazon").ATS)
	require.Equal(t, http.StatusConflict, send(t, "POST", base+"/v1/releases", "", `{"id":"rel","warehouse":"wh1","sku":"SKU-O","channel":"amazon","qty":1}`, nil),
		"nothing left to release")
	var got hub.Order
	require.Equal(t, http.StatusOK, send(t, "GET", base+"/v1/orders/o1", "", "", &got))
	require.Equal(t, o, got)
	require.Equal(t, http.StatusNotFound, send(t, "GET", base+"/v1/orders/o2", "", "", nil), "a refused order was never made")

	// Meanwhile the warehouse holds its own 4, and not one more.
	require.Equal(t, http.StatusCreated, send(t, "POST", a.Base+"/v1/reservations", "", `{"id":"cart","sku":"SKU-O","qty":4}`, nil))
	require.Equal(t, http.StatusConflict, send(t, "POST", a.Base+"/v1/reservations", "", `{"id":"cart2","sku":"SKU-O","qty":1}`, nil))

	link.Restore()
	require.Eventually(t, func() bool {
		var v agent.StockView
		a.Get(t, "/v1/stock/SKU-O", &v)
		return v.Committed == 6
	}, 15*time.Second, 20*time.Millisecond, "the orders reach the warehouse")
	var v agent.StockView
	require.Equal(t, http.StatusOK, a.Get(t, "/v1/stock/SKU-O", &v))
	require.Equal(t, int64(10), v.OnHand)
	require.Equal(t, int64(4), v.Unallotted)
	require.Equal(t, map[string]int64{}, v.Allotted, "amazon sold all it had")
	require.Equal(t, int64(0), v.Available)
	require.Equal(t, v.OnHand, v.Unallotted+v.Committed, "on_hand = unallotted + Σ allotted + committed")

	// Each order line is a committed hold at the warehouse; picking it is
	// one sale, once, and moves nothing the warehouse owns.
	var line agent.HoldView
	require.Equal(t, http.StatusOK, a.Get(t, "/v1/reservations/o1.1", &line))
	require.Equal(t, agent.HoldView{ID: "o1.1", SKU: "SKU-O", Warehouse: "wh1", Location: "default", Qty: 4, Holder: "hub", Channel: "amazon",
		State: "committed", CreatedAt: line.CreatedAt}, line)
	require.Equal(t, http.StatusConflict, send(t, "DELETE", a.Base+"/v1/reservations/o1.1", "", "", nil), "an order line is not a cart's to release")
	require.Equal(t, http.StatusOK, send(t, "POST", a.Base+"/v1/reservations/o1.1/commit", "", "", &line))
	require.Equal(t, "picked", line.State)
	require.Equal(t, http.StatusOK, send(t, "POST", a.Base+"/v1/reservations/o1.1/commit", "", "", nil), "picked again: the same pick")
	require.Equal(t, http.StatusOK, a.Get(t, "/v1/stock/SKU-O", &v))
	require.Equal(t, int64(6), v.OnHand)
	require.Equal(t, int64(2), v.Committed)
	require.Equal(t, int64(4), v.Unallotted, "a pick moves nothing the warehouse owns")

	// Cancelled at the hub, o3's lines end at the warehouse, unpicked, and
	// their units return to the warehouse's own stock.
	var c hub.Cancellation
	require.Equal(t, http.StatusOK, send(t, "POST", base+"/v1/orders/o3/cancel", "", "", &c))
	require.Equal(t, "cancel_requested", c.State)
	require.Equal(t, []string{"o3.1", "o3.2"}, []string{c.Lines[0].ID, c.Lines[1].ID})
	require.Equal(t, http.StatusOK, send(t, "POST", base+"/v1/orders/o3/cancel", "", "", nil), "cancelled again: the same cancellation")
	require.Equal(t, http.StatusNotFound, send(t, "POST", base+"/v1/orders/o9/cancel", "", "", nil))
	require.Equal(t, http.StatusOK, send(t, "GET", base+"/v1/orders/o3", "", "", &got))
	require.NotNil(t, got.CancelRequested)
	require.Eventually(t, func() bool {
		var v agent.StockView
		a.Get(t, "/v1/stock/SKU-O", &v)
		return v.Committed == 0
	}, 10*time.Second, 20*time.Millisecond, "the cancellation reaches the warehouse")
	require.Equal(t, http.StatusOK, a.Get(t, "/v1/stock/SKU-O", &v))
	require.Equal(t, int64(6), v.Unallotted)
	require.Equal(t, int64(2), v.Available, "6 owned − 4 held for the cart")
	require.Equal(t, http.StatusOK, a.Get(t, "/v1/reservations/o3.1", &line))
	require.Equal(t, "cancelled", line.State)
	require.Equal(t, http.StatusConflict, send(t, "POST", a.Base+"/v1/reservations/o3.1/commit", "", "", nil), "a cancelled line is not picked")
}

// An allotment made at the hub is the agent's: relayed while it can be
// reached, refused 503 agent_offline (nothing allotted) when it cannot.
func TestHub_RelayedAllotment(t *testing.T) {
	a := startAgent(t, "wh1", t.TempDir())
	link := newProxy(t, strings.TrimPrefix(a.Base, "http://"))
	h := startHub(t, t.TempDir(), map[string]string{"wh1": link.URL()})
	base := "http://" + h.HTTPAddr()
	status, _ := a.Post(t, "/v1/events", `{"id":"r1","type":"receive","sku":"SKU-Y","qty":4}`)
	require.Equal(t, http.StatusOK, status)
	body := `{"id":"y1","warehouse":"wh1","sku":"SKU-Y","channel":"web","qty":3}`
	var got agent.Allotment
	require.Equal(t, http.StatusCreated, send(t, "POST", base+"/v1/allotments", "", body, &got))
	require.Equal(t, agent.Allotment{ID: "y1", Warehouse: "wh1", SKU: "SKU-Y", Channel: "web", Qty: 3}, got)
	require.Equal(t, http.StatusOK, send(t, "POST", base+"/v1/allotments", "", body, nil), "the same allotment again")
	require.Equal(t, http.StatusConflict, send(t, "POST", base+"/v1/allotments", "", `{"id":"y3","warehouse":"wh1","sku":"SKU-Y","channel":"web","qty":2}`, nil),
		"the agent's refusal, as it is")
	require.Equal(t, http.StatusBadRequest, send(t, "POST", base+"/v1/allotments", "", `{"id":"y9","warehouse":"wh9","sku":"SKU-Y","channel":"web","qty":1}`, nil))
	require.Equal(t, http.StatusBadRequest, send(t, "POST", base+"/v1/allotments", "", `{"warehouse":"wh1","sku":"SKU-Y","channel":"web","qty":1}`, nil),
		"no id: a retry after a timed-out relay would allot twice")

	link.Cut()
	var refusal struct{ Error struct{ Code string } }
	require.Equal(t, http.StatusServiceUnavailable, send(t, "POST", base+"/v1/allotments", "", `{"id":"y2","warehouse":"wh1","sku":"SKU-Y","channel":"web","qty":1}`, &refusal))
	require.Equal(t, "agent_offline", refusal.Error.Code)
	var v agent.StockView
	require.Equal(t, http.StatusOK, a.Get(t, "/v1/stock/SKU-Y", &v))
	require.Equal(t, map[string]int64{"web": 3}, v.Allotted, "nothing allotted while offline")
}

// A channel gives unsold rights back; the warehouse may promise them again.
func TestHub_Release(t *testing.T) {
	a := startAgent(t, "wh1", t.TempDir())
	h := startHub(t, t.TempDir(), map[string]string{"wh1": a.Base})
	base := "http://" + h.HTTPAddr()
	status, _ := a.Post(t, "/v1/events", `{"id":"r1","type":"receive","sku":"SKU-L","qty":5}`)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, http.StatusCreated, send(t, "POST", a.Base+"/v1/allotments", "", `{"sku":"SKU-L","channel":"ebay","qty":5}`, nil))
	require.Eventually(t, func() bool { return ats(t, base, "SKU-L", "ebay").ATS == 5 }, 10*time.Second, 20*time.Millisecond)

	body := `{"id":"rel-1","warehouse":"wh1","sku":"SKU-L","channel":"ebay","qty":2}`
	var rel hub.Release
	require.Equal(t, http.StatusCreated, send(t, "POST", base+"/v1/releases", "", body, &rel))
	require.Equal(t, int64(2), rel.Qty)
	require.Equal(t, http.StatusOK, send(t, "POST", base+"/v1/releases", "", body, nil), "the same release again")
	require.Equal(t, int64(3), ats(t, base, "SKU-L", "ebay").ATS)
	require.Eventually(t, func() bool {
		var v agent.StockView
		a.Get(t, "/v1/stock/SKU-L", &v)
		return v.Available == 2
	}, 10*time.Second, 20*time.Millisecond, "the warehouse may promise the released units again")
	for _, bad := range []string{
		`{"id":"x","warehouse":"wh9","sku":"SKU-L","channel":"ebay","qty":1}`,
		`{"id":"x","warehouse":"wh1","sku":"SKU-L","channel":"local","qty":1}`,
		`{"id":"x","warehouse":"wh1","sku":"SKU-L","channel":"ebay","qty":0}`,
	} {
		require.Equal(t, http.StatusBadRequest, send(t, "POST", base+"/v1/releases", "", bad, nil), bad)
	}
}

// Orders are checked before anything is spent, and all lines or none.
func TestHub_OrderValidation(t *testing.T) {
	a1, a2 := startAgent(t, "wh1", t.TempDir()), startAgent(t, "wh2", t.TempDir())
	h := startHub(t, t.TempDir(), map[string]string{"wh1": a1.Base, "wh2": a2.Base})
	base := "http://" + h.HTTPAddr()
	for i, ag := range []*testAgent{a1, a2} {
		status, _ := ag.Post(t, "/v1/events", `{"id":"r1","type":"receive","sku":"SKU-V","qty":10}`)
		require.Equal(t, http.StatusOK, status)
		body := fmt.Sprintf(`{"sku":"SKU-V","channel":"web","qty":%d}`, 3+i) // wh1: 3, wh2: 4
		require.Equal(t, http.StatusCreated, send(t, "POST", ag.Base+"/v1/allotments", "", body, nil))
	}
	require.Eventually(t, func() bool { return ats(t, base, "SKU-V", "web").ATS == 7 }, 10*time.Second, 20*time.Millisecond)
	for _, bad := range []string{
		`{"channel":"web","lines":[{"sku":"SKU-V","qty":1}]}`,
		`{"id":"a/b","channel":"web","lines":[{"sku":"SKU-V","qty":1}]}`,
		`{"id":"v","channel":"local","lines":[{"sku":"SKU-V","qty":1}]}`,
		`{"id":"v","channel":"web","lines":[]}`,
		`{"id":"v","channel":"web","lines":[{"sku":"SKU-V","qty":0}]}`,
		`{"id":"v","channel":"web","lines":[{"sku":"SKU-V","qty":1,"warehouse":"wh9"}]}`,
		`{"id":"v","channel":"web","lines":[{"sku":"SKU-V","qty":1}],"extra":1}`,
		`{"id":"v","channel":"web","lines":[{"id":"v.1","sku":"SKU-V","qty":1}]}`,
	} {
		require.Equal(t, http.StatusBadRequest, send(t, "POST", base+"/v1/orders", "", bad, nil), bad)
	}
	// A line past one warehouse's rights is split; one naming a warehouse
	// takes its rights there only; a second line short fails the order.
	var o hub.Order
	require.Equal(t, http.StatusCreated, send(t, "POST", base+"/v1/orders", "", `{"id":"split","channel":"web","lines":[{"sku":"SKU-V","qty":5}]}`, &o))
	require.Equal(t, []hub.OrderLine{{ID: "split.1", SKU: "SKU-V", Qty: 4, Warehouse: "wh2"}, {ID: "split.2", SKU: "SKU-V", Qty: 1, Warehouse: "wh1"}}, o.Lines)
	require.Equal(t, http.StatusConflict, send(t, "POST", base+"/v1/orders", "", `{"id":"pinned","channel":"web","lines":[{"sku":"SKU-V","qty":1,"warehouse":"wh2"}]}`, nil))
	var short insufficientRights
	require.Equal(t, http.StatusConflict, send(t, "POST", base+"/v1/orders", "", `{"id":"two","channel":"web","lines":[{"sku":"SKU-V","qty":1},{"sku":"SKU-V","qty":2}]}`, &short))
	require.Equal(t, int64(2), short.ATS)
	require.Equal(t, int64(2), ats(t, base, "SKU-V", "web").ATS, "the refused order spent nothing")
}

// A token bound to a channel sells and reads ATS on it alone, and opens
// nothing else (SPEC §9); only a hub issues one, with channel scopes only.
func TestHub_ChannelBoundToken(t *testing.T) {
	a := startAgent(t, "wh1", t.TempDir())
	h := startHubAuth(t, "", hub.Agent{Warehouse: "wh1", URL: a.Base})
	base := "http://" + h.HTTPAddr()
	tok, c, err := h.Issue(t.Context(), auth.Request{Name: "amazon connector", Scopes: []string{auth.ScopeOrdersWrite, auth.ScopeStockRead},
		Channel: "amazon", TTL: time.Hour})
	require.NoError(t, err)
	require.Equal(t, "amazon", c.Channel)
	require.Equal(t, http.StatusOK, send(t, "GET", base+"/v1/ats/SKU-T?channel=amazon", tok, "", nil))
	require.Equal(t, http.StatusForbidden, send(t, "GET", base+"/v1/ats/SKU-T?channel=ebay", tok, "", nil))
	require.Equal(t, http.StatusForbidden, send(t, "POST", base+"/v1/orders", tok, `{"id":"x","channel":"ebay","lines":[{"sku":"SKU-T","qty":1}]}`, nil))
	require.Equal(t, http.StatusConflict, send(t, "POST", base+"/v1/orders", tok, `{"id":"x","channel":"amazon","lines":[{"sku":"SKU-T","qty":1}]}`, nil),
		"its own channel: refused for want of rights, not of permission")
	for _, path := range []string{"/v1/stock", "/v1/feed", "/v1/warehouses"} {
		require.Equal(t, http.StatusForbidden, send(t, "GET", base+path, tok, "", nil), path)
	}
	require.Equal(t, http.StatusForbidden, send(t, "POST", base+"/v1/holds", tok, `{"id":"h","sku":"SKU-T","channel":"ebay","qty":1}`, nil),
		"a hold on another channel")
	status, _ := openStream(t, base+"/v1/stream?channel=ebay&access_token="+tok, "")
	require.Equal(t, http.StatusForbidden, status, "another channel's stream")
	status, _ = openStream(t, base+"/v1/stream?access_token="+tok, "")
	require.Equal(t, http.StatusOK, status, "its own channel's ATS stream")
	for _, req := range []auth.Request{
		{Name: "x", Scopes: []string{auth.ScopeAdmin}, Channel: "amazon", TTL: time.Hour},
		{Name: "x", Scopes: []string{auth.ScopeStockRead}, Channel: "local", TTL: time.Hour},
	} {
		_, _, err := h.Issue(t.Context(), req)
		require.Error(t, err, "%+v", req)
	}
}

// The hub's central writes take no sale or pick: they would take units
// nothing checked against what was promised elsewhere (issue #15's probe
// booked two marketplace sales on one unit held at the agent).
func TestHub_CentralSaleRefused(t *testing.T) {
	a := startAgent(t, "wh1", t.TempDir())
	h := startHub(t, t.TempDir(), map[string]string{"wh1": a.Base})
	var got ingest.EventsResponse
	status := send(t, "POST", "http://"+h.HTTPAddr()+"/v1/events?warehouse=wh1", "",
		`[{"id":"s1","type":"sale","sku":"SKU-S","qty":1},{"id":"p1","type":"pick","sku":"SKU-S","qty":1},{"id":"a1","type":"adjust","sku":"SKU-S","qty":-1}]`, &got)
	require.Equal(t, http.StatusOK, status)
	require.Len(t, got.Results, 3)
	for _, r := range got.Results[:2] {
		require.True(t, r.Rejected(), "%+v", r)
		require.Contains(t, r.Message, "POST /v1/orders")
	}
	require.False(t, got.Results[2].Rejected(), "a correction is still taken")
}

// Two hub processes on one PostgreSQL sell one allotment: 40 buyers race
// for 6 units through both, and exactly 6 orders are booked.
func TestHub_TwoHubsSellOnce(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	a := startAgent(t, "wh1", t.TempDir())
	var bases []string
	for range 2 {
		cfg := hub.Config{Store: dsn, DataDir: t.TempDir(), HTTP: "127.0.0.1:0", Agents: []hub.Agent{{Warehouse: "wh1", URL: a.Base}},
			Timing: hub.Timing{PollWait: time.Second, RetryMax: time.Second}}
		h := hub.NewServer(cfg, logger())
		require.NoError(t, h.Open(t.Context()))
		t.Cleanup(func() { _ = h.Close(t.Context()) })
		bases = append(bases, "http://"+h.HTTPAddr())
	}
	status, _ := a.Post(t, "/v1/events", `{"id":"r1","type":"receive","sku":"SKU-P","qty":10}`)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, http.StatusCreated, send(t, "POST", a.Base+"/v1/allotments", "", `{"sku":"SKU-P","channel":"amazon","qty":6}`, nil))
	for _, base := range bases {
		require.Eventually(t, func() bool { return ats(t, base, "SKU-P", "amazon").ATS == 6 }, 10*time.Second, 20*time.Millisecond)
	}
	// A cart hold at one hub keeps its units from the other.
	var held hub.Hold
	require.Equal(t, http.StatusCreated, send(t, "POST", bases[0]+"/v1/holds", "", `{"id":"cart","sku":"SKU-P","channel":"amazon","qty":2}`, &held))
	require.Equal(t, int64(4), ats(t, bases[1], "SKU-P", "amazon").ATS)
	require.Equal(t, http.StatusOK, send(t, "DELETE", bases[1]+"/v1/holds/cart", "", "", &held))
	require.Equal(t, "released", held.State)
	require.Equal(t, int64(6), ats(t, bases[0], "SKU-P", "amazon").ATS)

	var mu stdsync.Mutex
	statuses := map[int]int{}
	var wg stdsync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			body := fmt.Sprintf(`{"id":"buyer-%d","channel":"amazon","lines":[{"sku":"SKU-P","qty":1}]}`, i)
			s := send(t, "POST", bases[i%2]+"/v1/orders", "", body, nil)
			mu.Lock()
			statuses[s]++
			mu.Unlock()
		})
	}
	wg.Wait()
	require.Equal(t, map[int]int{http.StatusCreated: 6, http.StatusConflict: 34}, statuses)
	for _, base := range bases {
		require.Equal(t, int64(0), ats(t, base, "SKU-P", "amazon").ATS)
	}
}

// Cart holds at the hub (SPEC §9): a hold keeps part of a channel's
// rights from orders and other holds until its TTL passes on the hub's
// clock, it is released, or committed into an order, which reaches the
// warehouse like any other.
func TestHub_CartHolds(t *testing.T) {
	a := startAgent(t, "wh1", t.TempDir())
	h := startHub(t, t.TempDir(), map[string]string{"wh1": a.Base})
	base := "http://" + h.HTTPAddr()
	status, _ := a.Post(t, "/v1/events", `{"id":"r1","type":"receive","sku":"SKU-H","qty":10}`)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, http.StatusCreated, send(t, "POST", a.Base+"/v1/allotments", "", `{"sku":"SKU-H","channel":"web","qty":5}`, nil))
	require.Eventually(t, func() bool { return ats(t, base, "SKU-H", "web").ATS == 5 }, 10*time.Second, 20*time.Millisecond)

	var hold hub.Hold
	body := `{"id":"h1","sku":"SKU-H","channel":"web","qty":3,"ttl":"1m"}`
	require.Equal(t, http.StatusCreated, send(t, "POST", base+"/v1/holds", "", body, &hold))
	require.Equal(t, "wh1", hold.Warehouse)
	require.Equal(t, "active", hold.State)
	require.Equal(t, http.StatusOK, send(t, "POST", base+"/v1/holds", "", body, nil), "the same hold again")
	require.Equal(t, http.StatusConflict, send(t, "POST", base+"/v1/holds", "", `{"id":"h1","sku":"SKU-H","channel":"web","qty":2}`, nil))
	a5 := ats(t, base, "SKU-H", "web")
	require.Equal(t, int64(2), a5.ATS)
	w1 := a5.Warehouses["wh1"]
	require.Equal(t, [3]int64{5, 3, 2}, [3]int64{w1.Rights, w1.Held, w1.ATS}, "rights, held, ats")
	require.True(t, w1.Online)
	require.NotNil(t, w1.AsOf)
	var short insufficientRights
	require.Equal(t, http.StatusConflict, send(t, "POST", base+"/v1/orders", "", `{"id":"o1","channel":"web","lines":[{"sku":"SKU-H","qty":3}]}`, &short))
	require.Equal(t, int64(2), short.ATS, "an order cannot take held units")
	require.Equal(t, http.StatusConflict, send(t, "POST", base+"/v1/holds", "", `{"id":"h2","sku":"SKU-H","channel":"web","qty":3}`, nil))

	renewed := hold
	require.Equal(t, http.StatusOK, send(t, "POST", base+"/v1/holds/h1/renew", "", `{"ttl":"10m"}`, &renewed))
	require.True(t, renewed.ExpiresAt.After(hold.ExpiresAt))
	var o hub.Order
	require.Equal(t, http.StatusCreated, send(t, "POST", base+"/v1/holds/h1/commit", "", "", &o))
	require.Equal(t, []hub.OrderLine{{ID: "h1.1", SKU: "SKU-H", Qty: 3, Warehouse: "wh1"}}, o.Lines)
	var again hub.Order
	require.Equal(t, http.StatusOK, send(t, "POST", base+"/v1/holds/h1/commit", "", "", &again), "committed again: the same order")
	require.Equal(t, o, again)
	require.Equal(t, http.StatusOK, send(t, "GET", base+"/v1/holds/h1", "", "", &hold))
	require.Equal(t, "committed", hold.State)
	require.Equal(t, "h1", hold.OrderID)
	require.Equal(t, int64(2), ats(t, base, "SKU-H", "web").ATS, "sold, no longer held")
	require.Equal(t, http.StatusConflict, send(t, "DELETE", base+"/v1/holds/h1", "", "", nil), "a committed hold is not released")

	// Released: the units are free again, once.
	require.Equal(t, http.StatusCreated, send(t, "POST", base+"/v1/holds", "", `{"id":"h3","sku":"SKU-H","channel":"web","qty":1}`, nil))
	require.Equal(t, http.StatusOK, send(t, "DELETE", base+"/v1/holds/h3", "", "", &hold))
	require.Equal(t, "released", hold.State)
	require.Equal(t, http.StatusOK, send(t, "DELETE", base+"/v1/holds/h3", "", "", nil))
	var ended struct{ Error struct{ Code string } }
	require.Equal(t, http.StatusConflict, send(t, "POST", base+"/v1/holds/h3/commit", "", "", &ended))
	require.Equal(t, "hold_released", ended.Error.Code)

	// Expired on the hub's clock: the units are free again, and it cannot be committed.
	require.Equal(t, http.StatusCreated, send(t, "POST", base+"/v1/holds", "", `{"id":"h4","sku":"SKU-H","channel":"web","qty":2,"ttl":"1s"}`, nil))
	require.Equal(t, int64(0), ats(t, base, "SKU-H", "web").ATS)
	require.Eventually(t, func() bool { return ats(t, base, "SKU-H", "web").ATS == 2 }, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, http.StatusConflict, send(t, "POST", base+"/v1/holds/h4/commit", "", "", &ended))
	require.Equal(t, "hold_expired", ended.Error.Code)
	require.Equal(t, http.StatusNotFound, send(t, "GET", base+"/v1/holds/none", "", "", nil))
	require.Equal(t, http.StatusBadRequest, send(t, "POST", base+"/v1/holds", "", `{"id":"h5","sku":"SKU-H","channel":"web","qty":1,"ttl":"2d"}`, nil))

	// The committed hold's order reaches the warehouse as a line.
	require.Eventually(t, func() bool {
		var v agent.HoldView
		return a.Get(t, "/v1/reservations/h1.1", &v) == http.StatusOK && v.State == "committed"
	}, 10*time.Second, 20*time.Millisecond)
}

// The ATS feed tells a channel's connector which SKUs' ATS changed, from
// the start and then as it happens (long-poll), and nothing of other
// channels.
func TestHub_ATSFeed(t *testing.T) {
	a := startAgent(t, "wh1", t.TempDir())
	h := startHub(t, t.TempDir(), map[string]string{"wh1": a.Base})
	base := "http://" + h.HTTPAddr()
	status, _ := a.Post(t, "/v1/events", `[{"id":"r1","type":"receive","sku":"F-1","qty":10},{"id":"r2","type":"receive","sku":"F-2","qty":10}]`)
	require.Equal(t, http.StatusOK, status)
	for _, body := range []string{`{"sku":"F-1","channel":"web","qty":3}`, `{"sku":"F-2","channel":"web","qty":4}`, `{"sku":"F-2","channel":"amazon","qty":5}`} {
		require.Equal(t, http.StatusCreated, send(t, "POST", a.Base+"/v1/allotments", "", body, nil))
	}
	type feed struct {
		Changes []hub.ATS
		Next    string
		More    bool
	}
	var f feed
	require.Eventually(t, func() bool {
		require.Equal(t, http.StatusOK, send(t, "GET", base+"/v1/ats?channel=web", "", "", &f))
		return len(f.Changes) == 2
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, []string{"F-1", "F-2"}, []string{f.Changes[0].SKU, f.Changes[1].SKU})
	require.Equal(t, []int64{3, 4}, []int64{f.Changes[0].ATS, f.Changes[1].ATS})
	require.Eventually(t, func() bool { return ats(t, base, "F-2", "amazon").ATS == 5 }, 10*time.Second, 20*time.Millisecond)

	done := make(chan feed, 1)
	go func() {
		var next feed
		send(t, "GET", base+"/v1/ats?channel=web&wait=10s&since="+f.Next, "", "", &next)
		done <- next
	}()
	require.Equal(t, http.StatusCreated, send(t, "POST", base+"/v1/orders", "", `{"id":"f1","channel":"amazon","lines":[{"sku":"F-2","qty":1}]}`, nil),
		"another channel's order: not web's news")
	require.Equal(t, http.StatusCreated, send(t, "POST", base+"/v1/orders", "", `{"id":"f2","channel":"web","lines":[{"sku":"F-1","qty":1}]}`, nil))
	next := <-done
	require.Len(t, next.Changes, 1)
	require.Equal(t, "F-1", next.Changes[0].SKU)
	require.Equal(t, int64(2), next.Changes[0].ATS)

	// A cart hold is news, and so is its expiry.
	require.Equal(t, http.StatusCreated, send(t, "POST", base+"/v1/holds", "", `{"id":"fh","sku":"F-1","channel":"web","qty":1,"ttl":"1s"}`, nil))
	var held feed
	require.Equal(t, http.StatusOK, send(t, "GET", base+"/v1/ats?channel=web&wait=10s&since="+next.Next, "", "", &held))
	require.Len(t, held.Changes, 1)
	require.Equal(t, int64(1), held.Changes[0].ATS)
	var expired feed
	require.Equal(t, http.StatusOK, send(t, "GET", base+"/v1/ats?channel=web&wait=10s&since="+held.Next, "", "", &expired))
	require.Len(t, expired.Changes, 1, "the hold expired")
	require.Equal(t, int64(2), expired.Changes[0].ATS)
	require.Equal(t, http.StatusBadRequest, send(t, "GET", base+"/v1/ats", "", "", nil), "channel is required")

	// The stream with ?channel= carries the same news as ats events.
	_, live := openStream(t, base+"/v1/stream?channel=web&sku=F-1", "")
	for e := range live {
		var v hub.ATS
		if e.Type == "ats" && json.Unmarshal(e.Data, &v) == nil && v.SKU == "F-1" && v.Channel == "web" {
			require.Equal(t, int64(2), v.ATS)
			break
		}
	}
}
