package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/edgestock/edgestock/internal/ingest"
	"github.com/stretchr/testify/require"
)

// publishedTo records the topics a reporter publishes to.
type publishedTo []string

func (p *publishedTo) Publish(m outbound) { *p = append(*p, m.Topic) }

// SPEC §3: a rejection always goes to the device's results topic (and to
// its Response Topic when it gave one); a success only when the device
// asked: devices.results all or results-all, or a Response Topic, which is
// then the only place it goes.
func TestReporter_Routing(t *testing.T) {
	const results, reply = "edgestock/wh1/devices/d1/results", "edgestock/wh1/devices/d1/replies/7"
	for _, c := range []struct {
		results    string   // devices.results
		resultsAll []string // devices.results-all
		reply      bool     // a Response Topic on the publish
		rejected   bool
		want       []string
	}{
		{"errors", nil, false, true, []string{results}},
		{"errors", nil, false, false, nil},
		{"all", nil, false, false, []string{results}},
		{"errors", []string{"d1"}, false, false, []string{results}},
		{"errors", []string{"d2"}, false, false, nil},
		{"errors", nil, true, false, []string{reply}},
		{"all", nil, true, false, []string{reply}},
		{"errors", nil, true, true, []string{reply, results}},
	} {
		t.Run(fmt.Sprintf("results=%s,all=%v,reply=%t,rejected=%t", c.results, c.resultsAll, c.reply, c.rejected), func(t *testing.T) {
			var got publishedTo
			r := &reporter{prefix: "edgestock", warehouse: "wh1", pub: &got, ingests: func(kind string) bool { return kind == "events" }}
			r.devices.Store(&Devices{Results: c.results, ResultsAll: c.resultsAll})
			res := ingest.Result{ID: "e1", Status: ingest.StatusApplied}
			if c.rejected {
				res = ingest.Result{ID: "e1", Status: ingest.StatusRejected, Reason: "bad_field"}
			}
			var to replyTo
			if c.reply {
				to = replyTo{ResponseTopic: reply, Correlation: []byte("c7")}
			}
			r.report("d1", []ingest.Result{res}, to)
			require.Equal(t, c.want, []string(got))
		})
	}
}

// Close while a flush is reading: the SKUs it had not published yet get
// their final level from the final flush, none is lost and none is sent
// twice. The flush reads its second page until Close.
func TestLiveStock_CloseMidFlush(t *testing.T) {
	var got publishedTo
	var pages atomic.Int32
	reading := make(chan struct{})
	l := &liveStock{prefix: "edgestock", warehouse: "wh1", pub: &got, logger: slog.New(slog.DiscardHandler),
		dirty: map[string]struct{}{},
		views: func(ctx context.Context, skus []string) ([]StockView, error) {
			if pages.Add(1) == 2 { // the periodic flush's second read lasts until Close
				close(reading)
				<-ctx.Done()
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			var views []StockView
			for _, sku := range skus {
				views = append(views, StockView{SKU: sku})
			}
			return views, nil
		}}
	var want []string
	for i := range 2*viewPage + 1 {
		sku := fmt.Sprint("SKU-", i)
		l.Mark([]string{sku})
		want = append(want, "edgestock/wh1/stock/"+sku)
	}
	l.Open()
	<-reading
	require.Len(t, got, viewPage, "the first page went out before Close")
	l.Close(t.Context())
	require.ElementsMatch(t, want, []string(got))
}

// A page whose read fails is read again at the next flush: its SKUs are
// published once the store answers, and only then.
func TestLiveStock_RetriesFailedRead(t *testing.T) {
	var got publishedTo
	var fail atomic.Bool
	fail.Store(true)
	l := &liveStock{prefix: "edgestock", warehouse: "wh1", pub: &got, logger: slog.New(slog.DiscardHandler),
		dirty: map[string]struct{}{},
		views: func(_ context.Context, skus []string) ([]StockView, error) {
			if fail.Load() {
				return nil, errors.New("database is locked")
			}
			var views []StockView
			for _, sku := range skus {
				views = append(views, StockView{SKU: sku})
			}
			return views, nil
		}}
	l.Mark([]string{"SKU-1", "SKU-2"})
	l.flush(t.Context())
	l.flush(t.Context())
	require.Empty(t, got)
	fail.Store(false)
	l.flush(t.Context())
	l.flush(t.Context())
	require.Equal(t, publishedTo{"edgestock/wh1/stock/SKU-1", "edgestock/wh1/stock/SKU-2"}, got)
}

// When even the final flush cannot read, Close says how many levels were
// left unpublished, whether or not that error was logged before.
func TestLiveStock_CloseReportsUnpublished(t *testing.T) {
	var logs strings.Builder
	l := &liveStock{prefix: "edgestock", warehouse: "wh1", pub: &publishedTo{}, logger: slog.New(slog.NewTextHandler(&logs, nil)),
		dirty: map[string]struct{}{},
		views: func(context.Context, []string) ([]StockView, error) { return nil, errors.New("database is locked") }}
	l.Mark([]string{"SKU-1", "SKU-2"})
	l.flush(t.Context()) // logs the error
	l.Open()
	l.Close(t.Context())
	require.Contains(t, logs.String(), "levels not published at shutdown")
	require.Contains(t, logs.String(), "skus=2")
}

// The agent publishes past the broker's ACL, so a device's MQTT 5 Response
// Topic is used only inside its own subtree and not on a topic the agent
// ingests; otherwise results follow the rules for a publish without one
// (a rejection to the device's results topic, a success nowhere), and the
// log says why, once per device.
func TestReporter_ResponseTopicConfined(t *testing.T) {
	const results = "edgestock/wh1/devices/d1/results"
	var logs strings.Builder
	var got publishedTo
	r := &reporter{prefix: "edgestock", warehouse: "wh1", pub: &got, ingests: func(kind string) bool { return kind == "events" },
		logger: slog.New(slog.NewTextHandler(&logs, nil))}
	r.devices.Store(&Devices{Results: "errors"})
	for _, c := range []struct {
		reply    string
		rejected bool
		want     []string
	}{
		{"edgestock/wh1/devices/d1/results", false, []string{results}},
		{"edgestock/wh1/devices/d1/replies/7", true, []string{"edgestock/wh1/devices/d1/replies/7", results}},
		{"edgestock/wh1/devices/d2/results", true, []string{results}},
		{"edgestock/wh1/devices/d2/results", false, nil},
		{"edgestock/wh1/stock/SKU-1", false, nil},
		{"edgestock/wh1/status", true, []string{results}},
		{"edgestock/wh1/devices/d1/events", false, nil},
		{"edgestock/wh1/devices/d1/+", false, nil},
		{"edgestock/wh2/devices/d1/results", false, nil},
		{"app/replies/7", true, []string{results}},
	} {
		t.Run(fmt.Sprintf("%s,rejected=%t", c.reply, c.rejected), func(t *testing.T) {
			got = nil
			res := ingest.Result{ID: "e1", Status: ingest.StatusApplied}
			if c.rejected {
				res = ingest.Result{ID: "e1", Status: ingest.StatusRejected, Reason: "bad_field"}
			}
			r.report("d1", []ingest.Result{res}, replyTo{ResponseTopic: c.reply, Correlation: []byte("c7")})
			require.Equal(t, c.want, []string(got))
		})
	}
	require.Equal(t, 1, strings.Count(logs.String(), "Response Topic refused"), "once per device:\n%s", logs.String())
	require.Contains(t, logs.String(), "device=d1")
	require.Contains(t, logs.String(), "response_topic=edgestock/wh1/devices/d2/results")
}
