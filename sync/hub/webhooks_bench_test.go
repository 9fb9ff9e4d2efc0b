package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/sync/hub"
)

// BenchmarkHub_Webhooks: each iteration receives batch SKUs at the agent
// in one request and waits until a webhook receiver that answers 200 at
// once has every SKU's new level. Reports stock events and signed
// deliveries (POSTs, a page of up to 500 events each) per second, end to
// end from the agent's acknowledgement: batch=1 is one change at a time
// (each delivery waits for the last), batch=1000 a burst.
func BenchmarkHub_Webhooks(b *testing.B) {
	for _, batch := range []int{1, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchWebhooks(b, batch) })
	}
}

func benchWebhooks(b *testing.B, batch int) {
	var mu stdsync.Mutex
	got := map[string]int64{} // sku → level delivered
	posts := 0
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p struct {
			Events []struct {
				Data hub.FeedChange `json:"data"`
			} `json:"events"`
		}
		if json.Unmarshal(body, &p) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		posts++
		for _, e := range p.Events {
			got[e.Data.SKU] = e.Data.OnHand
		}
		mu.Unlock()
		select {
		case arrived <- struct{}{}:
		default:
		}
	}))
	defer srv.Close()

	a := startAgent(b, "wh1", b.TempDir())
	cfg := hub.Config{DataDir: b.TempDir(), HTTP: "127.0.0.1:0", Agents: []hub.Agent{{Warehouse: "wh1", URL: a.Base}},
		Webhooks: []hub.Webhook{{Name: "oms", URL: srv.URL, Secret: "s3cret", MaxAttempts: 10}},
		Timing:   hub.Timing{PollWait: 20 * time.Second, RetryMax: time.Second}}
	h := hub.NewServer(cfg, logger())
	require.NoError(b, h.Open(context.Background()))
	defer h.Close(context.Background())

	events, deliveries := 0, 0
	var took time.Duration
	for i := 0; b.Loop(); i++ {
		var body []string
		for s := range batch {
			body = append(body, fmt.Sprintf(`{"id":"r%d-%d","type":"receive","sku":"W-%d","qty":1}`, i, s, s))
		}
		mu.Lock()
		before := posts
		mu.Unlock()
		postJSON(b, a.Base+"/v1/events", "["+strings.Join(body, ",")+"]")
		start := time.Now()
		for done := false; !done; {
			<-arrived
			mu.Lock()
			done = len(got) == batch
			for _, n := range got {
				done = done && n == int64(i+1)
			}
			if done {
				deliveries += posts - before
			}
			mu.Unlock()
		}
		took += time.Since(start)
		events += batch
	}
	b.ReportMetric(float64(events)/took.Seconds(), "events/s")
	b.ReportMetric(float64(deliveries)/took.Seconds(), "deliveries/s")
}
