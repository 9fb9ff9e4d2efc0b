package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/agent/agenttest"
	_ "github.com/edgestock/edgestock/drivers/all"
	"github.com/edgestock/edgestock/internal/ingest"
	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/internal/testenv"
)

const wh = "wh1"

// testAgent is the shared harness's agent, for warehouse wh.
type testAgent struct{ *agenttest.Agent }

func testLogger(testing.TB) *slog.Logger { return agenttest.Logger() }

// startAgent runs an agent on free ports with a temp data dir and waits
// until it is ready.
func startAgent(tb testing.TB, dataDir string, mutate func(*agent.Config)) *testAgent {
	tb.Helper()
	return &testAgent{agenttest.Start(tb, wh, dataDir, mutate)}
}

// startAgentNoWait runs an agent without waiting for /readyz (which needs a
// token when auth is required).
func startAgentNoWait(tb testing.TB, dataDir string, mutate func(*agent.Config)) *testAgent {
	tb.Helper()
	return startAgentLogger(tb, dataDir, mutate, agenttest.Logger())
}

// startAgentLogger is startAgentNoWait logging to logger.
func startAgentLogger(tb testing.TB, dataDir string, mutate func(*agent.Config), logger *slog.Logger) *testAgent {
	tb.Helper()
	return &testAgent{agenttest.StartNoWait(tb, wh, dataDir, mutate, logger)}
}

func eventsTopic(device string) string { return "edgestock/" + wh + "/devices/" + device + "/events" }

func receive(id, sku string, qty int) []byte {
	return fmt.Appendf(nil, `{"id":%q,"type":"receive","sku":%q,"qty":%d}`, id, sku, qty)
}

func TestAgent_MQTTPublishThenHTTPStock(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil)
	c := testenv.Dial(t, a.MQTTAddr(), "d1")
	require.NoError(t, c.PublishQoS1(t.Context(), eventsTopic("d1"), receive("e1", "SKU-1", 5)))
	// PUBACK means committed: no polling needed.
	var v agent.StockView
	require.Equal(t, http.StatusOK, a.Get(t, "/v1/stock/SKU-1", &v))
	require.Equal(t, int64(5), v.OnHand)
	require.Equal(t, int64(5), v.Available)
	require.Equal(t, int64(0), v.Reserved)
	require.Equal(t, map[string]int64{"default": 5}, v.Locations)
	require.Equal(t, int64(5), v.Global.OnHand)
	require.Nil(t, v.Global.AsOf, "nothing merged from other warehouses yet")
	require.Equal(t, http.StatusNotFound, a.Get(t, "/v1/stock/NEVER", nil))
}

// The same event arriving by redelivery, republish and HTTP counts once.
func TestAgent_DedupeEmbedded(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil)
	testDedupe(t, a, a.MQTTAddr())
}

func TestAgent_DedupeMosquitto(t *testing.T) {
	m := testenv.StartMosquitto(t)
	a := startAgent(t, t.TempDir(), func(c *agent.Config) { c.MQTT.URL = m.URL() })
	testDedupe(t, a, m.Addr)
}

func testDedupe(t *testing.T, a *testAgent, brokerAddr string) {
	body := receive("e1", "SKU-D", 5)
	c := testenv.Dial(t, brokerAddr, "d1")
	require.NoError(t, c.PublishQoS1(t.Context(), eventsTopic("d1"), body))
	// Redelivery: a new connection resends the same message, as a device
	// does for a publish whose ack it did not see.
	c.Close()
	c2 := testenv.Dial(t, brokerAddr, "d1")
	require.NoError(t, c2.PublishQoS1(t.Context(), eventsTopic("d1"), body))
	// Republish inside an array with other spelling of the same content.
	require.NoError(t, c2.PublishQoS1(t.Context(), eventsTopic("d1"), []byte(`[{"qty":5,"sku":"SKU-D","type":"receive","id":"e1"}]`)))
	require.Eventually(t, func() bool { return a.OnHand(t, "SKU-D") == 5 }, 10*time.Second, 20*time.Millisecond)
	status, res := a.Post(t, "/v1/events?device=d1", string(body))
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, ingest.StatusDuplicate, res.Results[0].Status)

	// Wait until every delivery was processed (3 MQTT + 1 HTTP), then check
	// the log holds the event exactly once.
	var log struct{ Events []agent.LoggedEventView }
	a.Get(t, "/v1/events?limit=100", &log)
	require.Len(t, log.Events, 1)
	require.Equal(t, int64(5), a.OnHand(t, "SKU-D"))

	// Same id, other body: rejected and quarantined, stock untouched.
	status, res = a.Post(t, "/v1/events?device=d1", string(receive("e1", "SKU-D", 6)))
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, ingest.StatusRejected, res.Results[0].Status)
	require.Equal(t, "id_reused", string(res.Results[0].Reason))
	require.Equal(t, int64(5), a.OnHand(t, "SKU-D"))
	var q struct{ Items []agent.QuarantineView }
	a.Get(t, "/v1/quarantine", &q)
	require.Len(t, q.Items, 1)
	require.Equal(t, "id_reused", q.Items[0].Reason)
}

func TestAgent_HTTPEvents(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil)
	status, res := a.Post(t, "/v1/events?device=pos1", `[{"id":"a","type":"receive","sku":"S","qty":10},
		{"id":"b","type":"sale","sku":"S","qty":3},{"id":"c","type":"count","sku":"S","qty":4},{"id":"d","type":"nope","sku":"S","qty":1}]`)
	require.Equal(t, http.StatusOK, status)
	require.Len(t, res.Results, 4)
	require.Equal(t, []string{"applied", "applied", "applied", "rejected"},
		[]string{res.Results[0].Status, res.Results[1].Status, res.Results[2].Status, res.Results[3].Status})
	require.Equal(t, int64(4), a.OnHand(t, "S"))

	status, res = a.Post(t, "/v1/events", `{"id":`)
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "bad_json", string(res.Results[0].Reason))

	big := bytes.Repeat([]byte("x"), 1<<20+10)
	resp, err := http.Post(a.Base+"/v1/events", "application/json", bytes.NewReader(big))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)

	var q struct {
		Items []agent.QuarantineView
		Next  int64
	}
	a.Get(t, "/v1/quarantine", &q)
	require.Len(t, q.Items, 3)
	require.Equal(t, []string{"unknown_type", "bad_json", "too_large"}, []string{q.Items[0].Reason, q.Items[1].Reason, q.Items[2].Reason})
	require.Equal(t, `{"id":`, *q.Items[1].Payload)
	// Like an oversized MQTT payload: a 4 KiB sample, the size in the message.
	require.Equal(t, strings.Repeat("x", 4<<10), *q.Items[2].Payload)
	require.Contains(t, q.Items[2].Message, fmt.Sprintf("body of %d bytes", len(big)))

	var log struct {
		Events []agent.LoggedEventView
		Next   int64
	}
	a.Get(t, "/v1/events?since=1&limit=1", &log)
	require.Len(t, log.Events, 1)
	require.Equal(t, "b", log.Events[0].ID)
	require.Equal(t, int64(-3), log.Events[0].Delta)
	require.Equal(t, int64(2), log.Next)
	a.Get(t, "/v1/events?since=2", &log)
	require.Equal(t, int64(-3), log.Events[0].Delta, "count records delta = 4 − 7")
}

func TestAgent_StockList(t *testing.T) {
	a := startAgent(t, t.TempDir(), func(c *agent.Config) { c.Stock.LowStockThreshold = 2 })
	var body bytes.Buffer
	body.WriteString("[")
	for i := range 25 {
		if i > 0 {
			body.WriteString(",")
		}
		fmt.Fprintf(&body, `{"id":"%d","type":"receive","sku":"SKU-%02d","qty":%d}`, i, i, i%5+1)
	}
	body.WriteString("]")
	status, _ := a.Post(t, "/v1/events", body.String())
	require.Equal(t, http.StatusOK, status)
	var page struct {
		Items []agent.StockView
		Next  string
	}
	var all []string
	next := ""
	for {
		a.Get(t, "/v1/stock?prefix=SKU-&limit=10&after="+next, &page)
		for _, v := range page.Items {
			all = append(all, v.SKU)
		}
		if page.Next == "" {
			break
		}
		next = page.Next
	}
	require.Len(t, all, 25)
	a.Get(t, "/v1/stock?low=true&limit=100", &page)
	require.Len(t, page.Items, 10, "qty 1 or 2 for 10 of the 25 SKUs")
	for _, v := range page.Items {
		require.True(t, v.LowStock)
	}
	// Paging the filtered list skips nothing.
	var lows []string
	next = ""
	for range 20 {
		a.Get(t, "/v1/stock?low=true&limit=3&after="+next, &page)
		for _, v := range page.Items {
			lows = append(lows, v.SKU)
		}
		if next = page.Next; next == "" {
			break
		}
	}
	require.Equal(t, []string{"SKU-00", "SKU-01", "SKU-05", "SKU-06", "SKU-10", "SKU-11", "SKU-15", "SKU-16", "SKU-20", "SKU-21"}, lows)

	// Each item is the view GET /v1/stock/{sku} reads, holds included.
	require.Equal(t, http.StatusCreated, a.do(t, "POST", "/v1/reservations", `{"id":"h1","sku":"SKU-03","qty":3,"ttl":"10m","holder":"c1"}`, nil))
	a.Get(t, "/v1/stock?prefix=SKU-&limit=100", &page)
	require.Len(t, page.Items, 25)
	for _, v := range page.Items {
		require.Equal(t, a.stock(t, v.SKU), v)
	}
	require.Equal(t, "SKU-03", page.Items[3].SKU)
	require.Equal(t, int64(3), page.Items[3].Reserved)
	require.True(t, page.Items[3].LowStock, "4 on hand, 3 reserved: 1 available")
}

// The cursor of a list that fills before the end of the store's last
// page, of one that ends exactly full, and of a prefix matching nothing;
// ?low=true reads the alert state, or applies the plain threshold when
// alerts are off.
func TestAgent_StockListCursor(t *testing.T) {
	for _, alerts := range []bool{true, false} {
		t.Run(fmt.Sprintf("alerts=%t", alerts), func(t *testing.T) { testStockListCursor(t, alerts) })
	}
}

func testStockListCursor(t *testing.T, alerts bool) {
	a := startAgent(t, t.TempDir(), func(c *agent.Config) { c.Stock.LowStockThreshold, c.Alerts.Enabled = 2, alerts })
	status, _ := a.Post(t, "/v1/events", `[{"id":"1","type":"receive","sku":"S1","qty":1},{"id":"2","type":"receive","sku":"S2","qty":1},
		{"id":"3","type":"receive","sku":"S3","qty":9},{"id":"4","type":"receive","sku":"S4","qty":1},{"id":"5","type":"receive","sku":"S5","qty":1}]`)
	require.Equal(t, http.StatusOK, status)
	var p struct {
		Items []agent.StockView
		Next  string
	}
	skus := func() (out []string) {
		for _, v := range p.Items {
			out = append(out, v.SKU)
		}
		return out
	}
	a.Get(t, "/v1/stock?low=true&limit=3", &p)
	require.Equal(t, []string{"S1", "S2", "S4"}, skus())
	require.Equal(t, "S4", p.Next)
	a.Get(t, "/v1/stock?low=true&limit=3&after=S4", &p)
	require.Equal(t, []string{"S5"}, skus())
	require.Equal(t, "", p.Next)
	a.Get(t, "/v1/stock?low=true&limit=2&after=S1&prefix=S", &p)
	require.Equal(t, []string{"S2", "S4"}, skus())
	for _, v := range p.Items {
		require.Equal(t, a.stock(t, v.SKU), v)
	}

	a.Get(t, "/v1/stock?limit=5", &p)
	require.Len(t, p.Items, 5)
	require.Equal(t, "S5", p.Next)
	a.Get(t, "/v1/stock?limit=5&after=S5", &p)
	require.Empty(t, p.Items)
	require.Equal(t, "", p.Next)

	a.Get(t, "/v1/stock?prefix=ZZ&low=true&limit=1", &p)
	require.Empty(t, p.Items)
	require.Equal(t, "", p.Next)
}

// 1,000 malformed payloads mixed with 1,000 valid ones over one pipelined
// gateway connection: every valid one applied, every malformed one
// quarantined with its reason, rejections reported on the results topic,
// the agent ready throughout.
func TestAgent_MalformedMix(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil)
	sub := testenv.Dial(t, a.MQTTAddr(), "watcher")
	sub.SubscribeQoS1(t, "edgestock/"+wh+"/devices/+/results")
	gw := testenv.Dial(t, a.MQTTAddr(), "gateway")
	malformed := []string{`{"id":`, `not json`, `{"id":"x","type":"steal","sku":"S","qty":1}`, `{"id":"x","type":"receive","sku":"S","qty":0}`, `[]`}
	stop := make(chan struct{})
	var readyErrs sync.WaitGroup
	readyErrs.Add(1)
	notReady := 0
	go func() {
		defer readyErrs.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				if a.Get(t, "/readyz", nil) != http.StatusOK {
					notReady++
				}
			}
		}
	}()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64) // 64 publishes in flight on one connection
	for i := range 2000 {
		payload := receive(fmt.Sprint("v", i/2), "SKU-M", 1)
		if i%2 == 1 {
			payload = []byte(malformed[i/2%len(malformed)])
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			require.NoError(t, gw.PublishQoS1(context.Background(), eventsTopic("gw1"), payload))
		})
	}
	wg.Wait()
	close(stop)
	readyErrs.Wait()
	require.Zero(t, notReady, "the agent stays ready")
	require.Equal(t, int64(1000), a.OnHand(t, "SKU-M"))
	reasons := map[string]int{}
	for _, it := range a.Quarantine(t) {
		reasons[it.Reason]++
		require.NotEmpty(t, it.Message)
	}
	require.Equal(t, map[string]int{"bad_json": 600, "unknown_type": 200, "bad_field": 200}, reasons)
	require.Eventually(t, func() bool { return len(sub.Received) == 1000 }, 10*time.Second, 10*time.Millisecond,
		"each rejection is reported on the device's results topic")
	var r ingest.Result
	require.NoError(t, json.Unmarshal((<-sub.Received).Payload, &r))
	require.Equal(t, ingest.StatusRejected, r.Status)
	require.NotEmpty(t, r.Reason)
}

// Devices keep publishing to mosquitto while the agent is stopped; the
// broker queues for the agent's persistent session and a restarted agent
// applies all of it.
func TestAgent_MosquittoQueuesWhileStopped(t *testing.T) {
	m := testenv.StartMosquitto(t)
	dir := t.TempDir()
	external := func(c *agent.Config) { c.MQTT.URL = m.URL() }
	a := startAgent(t, dir, external)
	pub := testenv.Dial(t, m.Addr, "probe")
	// The first run establishes the session and its subscriptions.
	require.Eventually(t, func() bool {
		_ = pub.PublishQoS1(t.Context(), eventsTopic("probe"), receive("p1", "PROBE", 1))
		return a.OnHand(t, "PROBE") == 1
	}, 10*time.Second, 50*time.Millisecond)
	require.NoError(t, a.Close(t.Context()))

	const devices, each = 4, 1250
	var wg sync.WaitGroup
	for d := range devices {
		wg.Go(func() {
			c := testenv.Dial(t, m.Addr, fmt.Sprint("dev", d))
			for i := range each {
				require.NoError(t, c.PublishQoS1(context.Background(), eventsTopic(fmt.Sprint("dev", d)), receive(fmt.Sprint(i), "SKU-Q", 1)))
			}
		})
	}
	wg.Wait()

	a = startAgent(t, dir, external)
	require.Eventually(t, func() bool { return a.OnHand(t, "SKU-Q") == devices*each }, 60*time.Second, 100*time.Millisecond)
}

// QoS 2: the agent answers PUBREC after the commit and mochi completes the
// flow with a successful PUBCOMP.
func TestAgent_EmbeddedQoS2(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil)
	c := testenv.Dial(t, a.MQTTAddr(), "d2")
	for range 3 {
		resp, err := c.Publish(t.Context(), &paho.Publish{Topic: eventsTopic("d2"), QoS: 2, Payload: receive("q2", "SKU-Q2", 4)})
		require.NoError(t, err)
		require.Less(t, resp.ReasonCode, byte(0x80), "PUBCOMP reason %#x", resp.ReasonCode)
	}
	require.Equal(t, int64(4), a.OnHand(t, "SKU-Q2"))
}

// An MQTT v5 Response Topic gets every result, with the correlation data.
func TestAgent_ResponseTopic(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil)
	c := testenv.Dial(t, a.MQTTAddr(), "d3")
	const replies = "edgestock/" + wh + "/devices/d3/replies" // the device's own subtree
	c.SubscribeQoS1(t, replies)
	_, err := c.Publish(t.Context(), &paho.Publish{Topic: eventsTopic("d3"), QoS: 1, Payload: receive("r1", "SKU-R", 1),
		Properties: &paho.PublishProperties{ResponseTopic: replies, CorrelationData: []byte("req-42")}})
	require.NoError(t, err)
	select {
	case m := <-c.Received:
		require.Equal(t, []byte("req-42"), m.Properties.CorrelationData)
		var r ingest.Result
		require.NoError(t, json.Unmarshal(m.Payload, &r))
		require.Equal(t, ingest.Result{ID: "r1", Status: ingest.StatusApplied, Seq: 1}, r)
	case <-time.After(5 * time.Second):
		t.Fatal("no reply on the response topic")
	}
}

// devices.results: all publishes successes on the results topic too.
func TestAgent_ResultsAll(t *testing.T) {
	a := startAgent(t, t.TempDir(), func(c *agent.Config) { c.Devices.ResultsAll = []string{"d4"} })
	c := testenv.Dial(t, a.MQTTAddr(), "d4")
	c.SubscribeQoS1(t, "edgestock/wh1/devices/+/results")
	require.NoError(t, c.PublishQoS1(t.Context(), eventsTopic("d4"), receive("a1", "SKU-A", 1)))
	require.NoError(t, c.PublishQoS1(t.Context(), eventsTopic("d4"), receive("a1", "SKU-A", 1)))
	require.NoError(t, c.PublishQoS1(t.Context(), eventsTopic("d5"), receive("a1", "SKU-A", 1))) // d5 asked nothing
	var got []string
	require.Eventually(t, func() bool {
		for len(c.Received) > 0 {
			m := <-c.Received
			var r ingest.Result
			require.NoError(t, json.Unmarshal(m.Payload, &r))
			got = append(got, m.Topic+" "+r.Status)
		}
		return len(got) >= 2
	}, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{"edgestock/wh1/devices/d4/results applied", "edgestock/wh1/devices/d4/results duplicate"}, got)
}

// A scanner publishes plain barcodes: the type comes from the topic, the id
// from the MQTT v5 user property or the serial number, the SKU from the
// barcode table in the data dir.
func TestAgent_ScannerTopic(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "barcodes.csv"), []byte("gtin,sku\n4006381333931,SKU-S\n09506000134352,SKU-G\n"), 0o644))
	a := startAgent(t, dir, func(c *agent.Config) { c.Devices.Modes = map[string]string{"scan2": "pick"} })
	c := testenv.Dial(t, a.MQTTAddr(), "scan1")
	c.SubscribeQoS1(t, "edgestock/wh1/devices/+/results")
	scan := func(topic, text, id string) {
		p := &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(text)}
		if id != "" {
			p.Properties = &paho.PublishProperties{User: paho.UserProperties{{Key: "id", Value: id}}}
		}
		_, err := c.Publish(t.Context(), p)
		require.NoError(t, err)
	}
	scan("edgestock/wh1/devices/scan1/scan/receive", "4006381333931", "s-1")
	scan("edgestock/wh1/devices/scan1/scan/receive", "4006381333931", "s-1") // redelivery
	scan("edgestock/wh1/devices/scan1/scan/receive", "(01)09506000134352(30)10", "s-2")
	scan("edgestock/wh1/devices/scan2/scan", "]d2010950600013435221SN1", "") // mode pick, id from serial
	scan("edgestock/wh1/devices/scan2/scan", "]d2010950600013435221SN1", "") // the same unit again
	scan("edgestock/wh1/devices/scan1/scan/receive", "4006381333932", "s-3") // bad check digit
	scan("edgestock/wh1/devices/scan1/scan/receive", "4006381333931", "")    // no id
	require.Equal(t, int64(1), a.OnHand(t, "SKU-S"))
	require.Equal(t, int64(9), a.OnHand(t, "SKU-G"))
	var reasons []string
	require.Eventually(t, func() bool {
		for len(c.Received) > 0 {
			var r ingest.Result
			require.NoError(t, json.Unmarshal((<-c.Received).Payload, &r))
			reasons = append(reasons, r.Status+" "+string(r.Reason))
		}
		return len(reasons) == 3
	}, 5*time.Second, 10*time.Millisecond)
	// The serialised unit scanned twice for one pick is told to the device,
	// though it asked only for rejections: it is a physical anomaly.
	require.ElementsMatch(t, []string{"rejected bad_barcode", "rejected missing_id", "duplicate "}, reasons)
}

// A serialised unit sold, returned and sold again over MQTT is three
// movements; a redelivered scan is one, and its duplicate is published on
// the device's results topic.
func TestAgent_SerialScanMovements(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "barcodes.csv"), []byte("gtin,sku\n09506000134352,SKU-G\n"), 0o644))
	a := startAgent(t, dir, nil)
	status, _ := a.Post(t, "/v1/events?device=erp", `{"id":"r1","type":"receive","sku":"SKU-G","qty":10}`)
	require.Equal(t, http.StatusOK, status)
	c := testenv.Dial(t, a.MQTTAddr(), "pos1")
	c.SubscribeQoS1(t, "edgestock/wh1/devices/+/results")
	scan := func(device, typ string) {
		require.NoError(t, c.PublishQoS1(t.Context(), "edgestock/wh1/devices/"+device+"/scan/"+typ, []byte("]d2010950600013435221SN-7")))
	}
	scan("pos1", "sale")
	scan("pos1", "sale") // redelivery
	require.Equal(t, int64(9), a.OnHand(t, "SKU-G"))
	scan("desk", "return")
	require.Equal(t, int64(10), a.OnHand(t, "SKU-G"))
	scan("pos1", "sale")
	require.Equal(t, int64(9), a.OnHand(t, "SKU-G"), "sold again after its return")

	var r ingest.Result
	select {
	case m := <-c.Received:
		require.Equal(t, "edgestock/wh1/devices/pos1/results", m.Topic)
		require.NoError(t, json.Unmarshal(m.Payload, &r))
	case <-time.After(5 * time.Second):
		t.Fatal("the repeated scan was not told to the device")
	}
	require.Equal(t, ingest.StatusDuplicate, r.Status)
	require.Equal(t, "09506000134352/SN-7/sale/1", r.ID)
	require.Contains(t, r.Message, "serial 09506000134352/SN-7 was already sold")
}

// A sale ticket then its void restores stock exactly; voiding it again,
// under the same or another id, changes nothing; a void of an unknown
// ticket is quarantined, not guessed.
func TestAgent_POSVoid(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil)
	c := testenv.Dial(t, a.MQTTAddr(), "pos1")
	c.SubscribeQoS1(t, "edgestock/wh1/devices/+/results")
	pos := func(ticket string) {
		require.NoError(t, c.PublishQoS1(t.Context(), "edgestock/wh1/devices/pos1/pos", []byte(ticket)))
	}
	status, _ := a.Post(t, "/v1/events?device=erp", `[{"id":"r1","type":"receive","sku":"SKU-P","qty":10},{"id":"r2","type":"receive","sku":"SKU-Q","qty":10,"location":"back"}]`)
	require.Equal(t, http.StatusOK, status)
	pos(`{"id":"T-1000","type":"sale","lines":[{"sku":"SKU-P","qty":3},{"sku":"SKU-Q","qty":2,"location":"back"},{"sku":"SKU-P","qty":1}]}`)
	require.Equal(t, int64(6), a.OnHand(t, "SKU-P"))
	require.Equal(t, int64(8), a.OnHand(t, "SKU-Q"))

	pos(`{"id":"T-1001","type":"void","voids":"T-1000"}`)
	require.Equal(t, int64(10), a.OnHand(t, "SKU-P"), "the void restores stock exactly")
	require.Equal(t, int64(10), a.OnHand(t, "SKU-Q"))

	pos(`{"id":"T-1001","type":"void","voids":"T-1000"}`) // redelivery
	pos(`{"id":"T-1002","type":"void","voids":"T-1000"}`) // a second void of the same ticket
	require.Equal(t, int64(10), a.OnHand(t, "SKU-P"))
	require.Equal(t, int64(10), a.OnHand(t, "SKU-Q"))

	pos(`{"id":"T-1003","type":"void","voids":"T-0999"}`)
	var r ingest.Result
	select {
	case m := <-c.Received:
		require.NoError(t, json.Unmarshal(m.Payload, &r))
	case <-time.After(5 * time.Second):
		t.Fatal("no result for the unknown void")
	}
	require.Equal(t, ingest.Result{ID: "T-1003", Status: ingest.StatusRejected, Reason: "unknown_ticket",
		Message: "the voided ticket was never received from this device"}, r)
	var q struct{ Items []agent.QuarantineView }
	a.Get(t, "/v1/quarantine", &q)
	require.Len(t, q.Items, 1)
	require.Equal(t, "unknown_ticket", q.Items[0].Reason)
	require.Contains(t, *q.Items[0].Payload, `"voids":"T-0999"`)

	var log struct{ Events []agent.LoggedEventView }
	a.Get(t, "/v1/events?limit=100", &log)
	var voids []string
	for _, e := range log.Events {
		if e.Type == "void" {
			voids = append(voids, fmt.Sprintf("%s %s %d", e.ID, e.SKU, e.Delta))
		}
		if e.ID == "T-1001" || e.ID == "T-1002" {
			require.Zero(t, e.Delta, "a void's own row changes nothing")
		}
	}
	require.Equal(t, []string{"T-1001  0", "void:T-1000/1 SKU-P 3", "void:T-1000/2 SKU-Q 2", "void:T-1000/3 SKU-P 1", "T-1002  0"}, voids)

	// The same void id naming another ticket is a reused id, not a second void.
	pos(`{"id":"T-1003","type":"sale","lines":[{"sku":"SKU-P","qty":1}]}`)
	pos(`{"id":"T-1001","type":"void","voids":"T-1003"}`)
	require.Equal(t, int64(9), a.OnHand(t, "SKU-P"))
}

// A file read again after a crash (the agent died after the last commit,
// before the file moved) counts nothing twice and quarantines nothing
// twice: not its rejected lines, not a line whose id was reused. The crash
// is staged by putting the processed file back, unmodified since: what a
// restarted agent finds. (cmd/edgestock's crash tests SIGKILL real ones.)
func TestAgent_FiledropRereadAfterCrash(t *testing.T) {
	drop := t.TempDir()
	a := startAgent(t, t.TempDir(), func(c *agent.Config) {
		c.Filedrop.Dir, c.Filedrop.Settle = drop, 50*time.Millisecond
	})
	for _, tc := range []struct{ name, content string }{
		{"export.csv", "id,type,sku,qty\nc1,receive,SKU-C,10\nc2,sale,SKU-C,many\nc1,receive,SKU-C,11\nc3,steal,SKU-C,1\n"},
		{"export.jsonl", `{"id":"j1","type":"receive","sku":"SKU-J","qty":10}` + "\n" + `{"type":"sale","sku":"SKU-J","qty":"x"}` + "\n" +
			`{"id":"j1","type":"receive","sku":"SKU-J","qty":2}` + "\nnot json\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(a.Quarantine(t))
			dropFile(t, drop, tc.name, tc.content)
			done := filepath.Join(drop, "done", tc.name)
			require.Eventually(t, func() bool { _, err := os.Stat(done); return err == nil }, 10*time.Second, 20*time.Millisecond)
			first := readReport(t, done+".report.json")
			require.Equal(t, 1, first.Applied)
			require.Len(t, first.Rejected, 3)
			quarantined := a.Quarantine(t)[before:]
			require.Len(t, quarantined, 3)

			info, err := os.Stat(done)
			require.NoError(t, err)
			back := filepath.Join(drop, "."+tc.name+".back")
			require.NoError(t, os.WriteFile(back, []byte(tc.content), 0o644))
			require.NoError(t, os.Chtimes(back, info.ModTime(), info.ModTime()))
			require.NoError(t, os.Rename(back, filepath.Join(drop, tc.name)))
			require.Eventually(t, func() bool { _, err := os.Stat(filepath.Join(drop, tc.name)); return err != nil }, 10*time.Second, 20*time.Millisecond)

			require.Len(t, a.Quarantine(t)[before:], 3, "the re-read quarantines nothing again")
			entries, err := os.ReadDir(filepath.Join(drop, "done"))
			require.NoError(t, err)
			var second agent.FileReport
			for _, e := range entries {
				n := e.Name()
				if strings.HasSuffix(n, filepath.Ext(tc.name)+".report.json") && n != tc.name+".report.json" {
					second = readReport(t, filepath.Join(drop, "done", n))
				}
			}
			require.Equal(t, 0, second.Applied)
			require.Equal(t, 1, second.Duplicates)
			require.Len(t, second.Rejected, 3, "the report still lists every rejected line")
			for i := range second.Rejected {
				require.Equal(t, first.Rejected[i].Line, second.Rejected[i].Line)
				require.Equal(t, first.Rejected[i].Reason, second.Rejected[i].Reason)
			}
		})
	}
	require.Equal(t, int64(10), a.OnHand(t, "SKU-C"))
	require.Equal(t, int64(10), a.OnHand(t, "SKU-J"))
}

// dropFile writes a file next to the watched folder and renames it in, as
// exporters should.
func dropFile(t *testing.T, dir, name, content string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".part")
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o644))
	require.NoError(t, os.Rename(tmp, filepath.Join(dir, name)))
}

func readReport(t *testing.T, path string) agent.FileReport {
	t.Helper()
	var r agent.FileReport
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &r))
	return r
}

func TestAgent_Filedrop(t *testing.T) {
	drop := t.TempDir()
	a := startAgent(t, t.TempDir(), func(c *agent.Config) {
		c.Filedrop.Dir, c.Filedrop.Settle = drop, 50*time.Millisecond
	})
	csv := "type,sku,qty,location\nreceive,SKU-F,10,\nsale,SKU-F,3,\nsale,SKU-F,many,\nreceive,SKU-F,1,A 1\n"
	dropFile(t, drop, "pos-2026-11-27.csv", csv)
	done := filepath.Join(drop, "done", "pos-2026-11-27.csv")
	require.Eventually(t, func() bool { _, err := os.Stat(done); return err == nil }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, int64(7), a.OnHand(t, "SKU-F"))
	r := readReport(t, done+".report.json")
	require.Equal(t, 4, r.Lines)
	require.Equal(t, 2, r.Applied)
	require.Len(t, r.Rejected, 2)
	require.Equal(t, agent.RejectedLine{Line: 4, ID: "pos-2026-11-27.csv:4", Reason: "bad_field", Message: "line 4: qty: must be an integer, got \"many\""}, r.Rejected[0])
	require.Equal(t, 5, r.Rejected[1].Line)

	// The same export dropped again counts nothing twice.
	dropFile(t, drop, "pos-2026-11-27.csv", csv)
	require.Eventually(t, func() bool {
		entries, _ := os.ReadDir(filepath.Join(drop, "done"))
		return len(entries) == 4
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, int64(7), a.OnHand(t, "SKU-F"))

	// A file whose header is wrong fails as a whole, with the reason.
	dropFile(t, drop, "broken.jsonl.csv", "colour,qty\nred,1\n")
	failed := filepath.Join(drop, "failed", "broken.jsonl.csv")
	require.Eventually(t, func() bool { _, err := os.Stat(failed); return err == nil }, 10*time.Second, 20*time.Millisecond)
	require.Contains(t, readReport(t, failed+".report.json").Error, `unknown column "colour"`)

	var q struct{ Items []agent.QuarantineView }
	a.Get(t, "/v1/quarantine?limit=100", &q)
	require.Len(t, q.Items, 4, "rejected lines are quarantined (twice: the file came twice)")
	require.Equal(t, "file", q.Items[0].Source)
	require.Equal(t, "sale,SKU-F,many,", *q.Items[0].Payload)
}

// /metrics agrees with what happened.
func TestAgent_Metrics(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil)
	a.Post(t, "/v1/events?device=d1", `[{"id":"1","type":"receive","sku":"S","qty":1},{"id":"1","type":"receive","sku":"S","qty":1},{"id":"2","type":"nope","sku":"S","qty":1}]`)
	resp, err := http.Get(a.Base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, line := range []string{
		`edgestock_events_total{driver="events",source="http",status="applied"} 1`,
		`edgestock_events_total{driver="events",source="http",status="duplicate"} 1`,
		`edgestock_events_total{driver="events",source="http",status="rejected"} 1`,
		`edgestock_rejections_total{reason="unknown_type"} 1`,
		`edgestock_quarantine_size 1`,
		`edgestock_store_ok 1`,
		`edgestock_active_holds 0`,
		`edgestock_sync_pending_deltas 1`,
		`edgestock_hub_contact_age_seconds -1`,
	} {
		require.Contains(t, string(body), line)
	}
	require.Regexp(t, `edgestock_commit_batch_items_count [1-9]`, string(body))
}

// A dropped file's rows may name a barcode instead of a SKU: the file-drop
// driver resolves it with the same barcode table as scanners.
func TestAgent_FiledropBarcodes(t *testing.T) {
	dir, drop := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "barcodes.csv"), []byte("gtin,sku\n4006381333931,SKU-FB\n"), 0o644))
	a := startAgent(t, dir, func(c *agent.Config) { c.Filedrop.Dir, c.Filedrop.Settle = drop, 0 })
	tmp := filepath.Join(drop, ".count.csv.part")
	require.NoError(t, os.WriteFile(tmp, []byte("id,type,barcode,qty\nf1,receive,4006381333931,4\n"), 0o644))
	require.NoError(t, os.Rename(tmp, filepath.Join(drop, "count.csv")))
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(drop, "done", "count.csv"))
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "the file is processed")
	require.Equal(t, int64(4), a.OnHand(t, "SKU-FB"), "the barcode row is applied, not rejected unknown_barcode")
}

// Two agents on one data dir: the second refuses to start, naming the data
// dir and the first one's PID; the first keeps running.
func TestAgent_DataDirLocked(t *testing.T) {
	dir := t.TempDir()
	first := startAgent(t, dir, nil)
	cfg := first.Config
	cfg.HTTP.Listen, cfg.MQTT.Listen = "127.0.0.1:0", "127.0.0.1:0"
	second := agent.New(cfg, testLogger(t))
	err := second.Open(t.Context())
	require.ErrorIs(t, err, store.ErrDirLocked)
	require.ErrorContains(t, err, dir)
	require.ErrorContains(t, err, fmt.Sprintf("pid %d", os.Getpid()))
	require.Equal(t, http.StatusOK, first.Get(t, "/readyz", nil))
}
