package agent_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/internal/ingest"
	"github.com/edgestock/edgestock/internal/testenv"
)

func (a *testAgent) do(tb testing.TB, method, path, body string, out any) int {
	tb.Helper()
	req, err := http.NewRequest(method, a.Base+path, bytes.NewBufferString(body))
	require.NoError(tb, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	if out != nil {
		require.NoError(tb, json.NewDecoder(resp.Body).Decode(out))
	}
	return resp.StatusCode
}

func (a *testAgent) stock(tb testing.TB, sku string) agent.StockView {
	tb.Helper()
	var v agent.StockView
	require.Equal(tb, http.StatusOK, a.Get(tb, "/v1/stock/"+sku, &v))
	return v
}

// 1,000 concurrent clients try to hold one unit each of a SKU with 100 on
// hand: exactly 100 succeed, the rest get 409 with available, and available
// is never observed below zero.
func TestReservations_FlashSale(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil)
	status, _ := a.Post(t, "/v1/events", `{"id":"r1","type":"receive","sku":"HOT","qty":100}`)
	require.Equal(t, http.StatusOK, status)

	stop := make(chan struct{})
	var minAvailable atomic.Int64
	minAvailable.Store(100)
	var watcher sync.WaitGroup
	watcher.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if v := a.stock(t, "HOT"); v.Available < minAvailable.Load() {
				minAvailable.Store(v.Available)
			}
		}
	})
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 1000 {
		wg.Go(func() {
			<-start
			var body struct {
				Available *int64 `json:"available"`
				Error     struct{ Code string }
			}
			switch code := a.do(t, "POST", "/v1/reservations", fmt.Sprintf(`{"id":"cart-%d","sku":"HOT","qty":1,"ttl":"10m","holder":"c%d"}`, i, i), &body); code {
			case http.StatusCreated:
				ok.Add(1)
			case http.StatusConflict:
				require.Equal(t, "insufficient_stock", body.Error.Code)
				require.NotNil(t, body.Available)
				require.GreaterOrEqual(t, *body.Available, int64(0))
				refused.Add(1)
			default:
				t.Errorf("unexpected status %d", code)
			}
		})
	}
	close(start)
	wg.Wait()
	close(stop)
	watcher.Wait()
	require.Equal(t, int64(100), ok.Load())
	require.Equal(t, int64(900), refused.Load())
	require.GreaterOrEqual(t, minAvailable.Load(), int64(0), "available never below zero")
	v := a.stock(t, "HOT")
	require.Equal(t, int64(100), v.OnHand)
	require.Equal(t, int64(100), v.Reserved)
	require.Equal(t, int64(0), v.Available)
}

func TestReservations_Lifecycle(t *testing.T) {
	dir := t.TempDir()
	a := startAgent(t, dir, nil)
	a.Post(t, "/v1/events", `{"id":"r1","type":"receive","sku":"S","qty":10}`)
	var h agent.HoldView
	require.Equal(t, http.StatusCreated, a.do(t, "POST", "/v1/reservations", `{"id":"h1","sku":"S","qty":3,"ttl":"10m","holder":"cart-1","channel":"web"}`, &h))
	require.Equal(t, "active", h.State)
	// A retry with the same id and body is the same hold.
	var again agent.HoldView
	require.Equal(t, http.StatusOK, a.do(t, "POST", "/v1/reservations", `{"id":"h1","sku":"S","qty":3,"ttl":"10m","holder":"cart-1","channel":"web"}`, &again))
	require.Equal(t, h, again)
	var e struct{ Error struct{ Code string } }
	require.Equal(t, http.StatusConflict, a.do(t, "POST", "/v1/reservations", `{"id":"h1","sku":"S","qty":4}`, &e))
	require.Equal(t, "id_reused", e.Error.Code)
	require.Equal(t, int64(7), a.stock(t, "S").Available)

	// Renew, then commit: the hold becomes a sale, once.
	require.Equal(t, http.StatusOK, a.do(t, "POST", "/v1/reservations/h1/renew", `{"ttl":"20m"}`, &h))
	require.True(t, h.ExpiresAt.After(again.ExpiresAt))
	require.Equal(t, http.StatusOK, a.do(t, "POST", "/v1/reservations/h1/commit", `{"event_id":"order-77"}`, &h))
	require.Equal(t, "committed", h.State)
	require.Equal(t, "order-77", h.EventID)
	require.Equal(t, http.StatusOK, a.do(t, "POST", "/v1/reservations/h1/commit", `{"event_id":"order-77"}`, &again))
	require.Equal(t, h.EventSeq, again.EventSeq, "commit is idempotent")
	v := a.stock(t, "S")
	require.Equal(t, []int64{7, 0, 7}, []int64{v.OnHand, v.Reserved, v.Available})

	// Another hold committed under an event id the log already has: refused,
	// nothing sold, the hold still active and holding.
	require.Equal(t, http.StatusCreated, a.do(t, "POST", "/v1/reservations", `{"id":"h4","sku":"S","qty":1}`, &h))
	require.Equal(t, http.StatusConflict, a.do(t, "POST", "/v1/reservations/h4/commit", `{"event_id":"order-77"}`, &e))
	require.Equal(t, "event_exists", e.Error.Code)
	require.Equal(t, http.StatusOK, a.do(t, "GET", "/v1/reservations/h4", "", &h))
	require.Equal(t, "active", h.State)
	v = a.stock(t, "S")
	require.Equal(t, []int64{7, 1, 6}, []int64{v.OnHand, v.Reserved, v.Available})
	require.Equal(t, http.StatusOK, a.do(t, "DELETE", "/v1/reservations/h4", "", &h))

	// Release gives units back; releasing a committed hold is refused.
	require.Equal(t, http.StatusCreated, a.do(t, "POST", "/v1/reservations", `{"id":"h2","sku":"S","qty":5}`, &h))
	require.Equal(t, int64(2), a.stock(t, "S").Available)
	require.Equal(t, http.StatusOK, a.do(t, "DELETE", "/v1/reservations/h2", "", &h))
	require.Equal(t, "released", h.State)
	require.Equal(t, int64(7), a.stock(t, "S").Available)
	require.Equal(t, http.StatusConflict, a.do(t, "DELETE", "/v1/reservations/h1", "", &e))
	require.Equal(t, "hold_committed", e.Error.Code)
	require.Equal(t, http.StatusNotFound, a.do(t, "GET", "/v1/reservations/nope", "", nil))

	// Bad requests name the field.
	var bad struct {
		Error struct{ Code, Message string }
	}
	require.Equal(t, http.StatusBadRequest, a.do(t, "POST", "/v1/reservations", `{"sku":"S","qty":1,"ttl":"forever"}`, &bad))
	require.Contains(t, bad.Error.Message, "ttl:")
	require.Equal(t, http.StatusBadRequest, a.do(t, "POST", "/v1/reservations", `{"sku":"S","qty":0}`, &bad))
	require.Contains(t, bad.Error.Message, "qty:")

	// An active hold survives a restart.
	require.Equal(t, http.StatusCreated, a.do(t, "POST", "/v1/reservations", `{"id":"h3","sku":"S","qty":6,"ttl":"1h"}`, &h))
	require.NoError(t, a.Close(t.Context()))
	a = startAgent(t, dir, nil)
	require.Equal(t, http.StatusOK, a.do(t, "GET", "/v1/reservations/h3", "", &h))
	require.Equal(t, "active", h.State)
	require.Equal(t, http.StatusConflict, a.do(t, "POST", "/v1/reservations", `{"sku":"S","qty":2}`, &e), "the restored hold still counts")
	require.Equal(t, int64(1), a.stock(t, "S").Available)
}

func TestReservations_Expiry(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil)
	a.Post(t, "/v1/events", `{"id":"r1","type":"receive","sku":"S","qty":5}`)
	var h agent.HoldView
	require.Equal(t, http.StatusCreated, a.do(t, "POST", "/v1/reservations", `{"id":"short","sku":"S","qty":5,"ttl":"1s"}`, &h))
	require.Equal(t, int64(0), a.stock(t, "S").Available)
	// Released within 1 s of expiry (the sweep runs every 250 ms).
	require.Eventually(t, func() bool { return a.stock(t, "S").Available == 5 }, 2500*time.Millisecond, 20*time.Millisecond)
	require.False(t, time.Now().Before(h.ExpiresAt), "not before its expiry")
	require.Less(t, time.Since(h.ExpiresAt), time.Second+250*time.Millisecond)
	var e struct {
		Error struct{ Code, Message string }
	}
	require.Equal(t, http.StatusConflict, a.do(t, "POST", "/v1/reservations/short/commit", "", &e))
	require.Equal(t, "hold_expired", e.Error.Code)
	require.Contains(t, e.Error.Message, "expired at")
	require.Equal(t, int64(5), a.stock(t, "S").OnHand, "an expired hold sells nothing")
}

// The device a hold commit writes its sale as, and the file drops' device,
// are the agent's own: no HTTP ?device=, event "device" field or MQTT topic
// may write as them, so nobody can pre-claim "hold:{id}" and block a
// commit. Hold ids follow the event id rules and have no '/'.
func TestReservations_ReservedDevices(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil)
	a.Post(t, "/v1/events", `{"id":"r1","type":"receive","sku":"S","qty":10}`)
	sale := `{"id":"hold:h1","type":"sale","sku":"S","qty":1}`
	for _, tc := range []struct{ name, path, body string }{
		{"query device", "/v1/events?device=reservations", sale},
		{"event device field", "/v1/events", `{"id":"hold:h1","device":"reservations","type":"sale","sku":"S","qty":1}`},
		{"file drop device", "/v1/events?device=filedrop", `{"id":"orders.csv:2","type":"sale","sku":"S","qty":1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, res := a.Post(t, tc.path, tc.body)
			require.Equal(t, http.StatusOK, status)
			require.Len(t, res.Results, 1)
			require.Equal(t, ingest.StatusRejected, res.Results[0].Status)
			require.Equal(t, "unauthorized", string(res.Results[0].Reason))
			require.Contains(t, res.Results[0].Message, "is reserved")
		})
	}
	c := testenv.Dial(t, a.MQTTAddr(), "reservations")
	require.NoError(t, c.PublishQoS1(t.Context(), eventsTopic("reservations"), []byte(sale)))
	require.Equal(t, int64(10), a.stock(t, "S").OnHand, "nothing written as a reserved device")

	var h agent.HoldView
	require.Equal(t, http.StatusCreated, a.do(t, "POST", "/v1/reservations", `{"id":"h1","sku":"S","qty":1}`, &h))
	require.Equal(t, http.StatusOK, a.do(t, "POST", "/v1/reservations/h1/commit", ``, &h))
	require.Equal(t, "committed", h.State)
	require.Equal(t, "hold:h1", h.EventID)
	require.Equal(t, int64(9), a.stock(t, "S").OnHand)

	var e struct {
		Error struct{ Code, Message string }
	}
	for _, id := range []string{"a/b", "nul\x00", "tab\there", strings.Repeat("x", 124)} {
		body, _ := json.Marshal(map[string]any{"id": id, "sku": "S", "qty": 1})
		require.Equal(t, http.StatusBadRequest, a.do(t, "POST", "/v1/reservations", string(body), &e), "id %q", id)
		require.Equal(t, "bad_field", e.Error.Code)
	}
	// A commit under an event id already logged names it.
	require.Equal(t, http.StatusCreated, a.do(t, "POST", "/v1/reservations", `{"id":"h2","sku":"S","qty":1}`, &h))
	require.Equal(t, http.StatusConflict, a.do(t, "POST", "/v1/reservations/h2/commit", `{"event_id":"hold:h1"}`, &e))
	require.Equal(t, "event_exists", e.Error.Code)
	require.Contains(t, e.Error.Message, `"hold:h1"`)
}
