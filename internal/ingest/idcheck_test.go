package ingest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/drivers"
	_ "github.com/edgestock/edgestock/drivers/all"
	"github.com/edgestock/edgestock/internal/store"
)

type gtinTable map[string]string

func (t gtinTable) SKUForGTIN(gtin string) (string, bool) { s, ok := t[gtin]; return s, ok }

// newTestIngester is an Ingester on a real store in a temp dir.
func newTestIngester(t *testing.T) (*Ingester, *store.DB) {
	t.Helper()
	db, err := store.Open(t.Context(), t.TempDir(), store.Options{Warehouse: "wh1"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	in, err := NewIngester(db, "wh1", drivers.Env{Barcodes: gtinTable{"09506000134352": "SKU-G"}})
	require.NoError(t, err)
	return in, db
}

// ingestAll submits every message at once, in order, without waiting for
// any commit (so later ones are checked against pending earlier ones), then
// returns each message's results.
func ingestAll(t *testing.T, in *Ingester, kind string, msgs []drivers.Message) [][]Result {
	t.Helper()
	out := make([][]Result, len(msgs))
	var wg sync.WaitGroup
	for i, m := range msgs {
		wg.Add(1)
		in.Ingest(kind, m, func(res []Result, err error) {
			defer wg.Done()
			require.NoError(t, err)
			out[i] = res
		})
	}
	wg.Wait()
	return out
}

func scanMsg(device, typ, text string) drivers.Message {
	return drivers.Message{Source: "mqtt", Warehouse: "wh1", Device: device, DeviceFixed: true, Subtopic: typ, Payload: []byte(text)}
}

func onHand(t *testing.T, db *store.DB, sku string) int64 {
	t.Helper()
	levels, err := db.SKUsStock(t.Context(), []string{sku})
	require.NoError(t, err)
	var n int64
	for _, l := range levels {
		n += l.OnHand
	}
	return n
}

// A serialised unit (GS1 AI 21, no id) sold, returned and sold again is
// three movements; the same scan redelivered is one, whether it comes
// after the commit or while the first is still pending; a repeat is told
// to the device (notify).
func TestIngester_SerialMovements(t *testing.T) {
	const unit = "(01)09506000134352(21)SN-1"
	type step struct {
		device, typ string
		status      string
		id          string
	}
	for _, tc := range []struct {
		name    string
		steps   []step
		pending bool // submit all at once instead of one after another
		onHand  int64
	}{
		{"sale return sale", []step{
			{"pos1", "sale", StatusApplied, "09506000134352/SN-1/sale/1"},
			{"pos1", "return", StatusApplied, "09506000134352/SN-1/return/1"},
			{"pos1", "sale", StatusApplied, "09506000134352/SN-1/sale/2"},
		}, false, -1},
		{"sale return sale, all pending", []step{
			{"pos1", "sale", StatusApplied, "09506000134352/SN-1/sale/1"},
			{"pos1", "return", StatusApplied, "09506000134352/SN-1/return/1"},
			{"pos1", "sale", StatusApplied, "09506000134352/SN-1/sale/2"},
			{"pos1", "return", StatusApplied, "09506000134352/SN-1/return/2"},
		}, true, 0},
		{"redelivery after commit", []step{
			{"pos1", "sale", StatusApplied, "09506000134352/SN-1/sale/1"},
			{"pos1", "sale", StatusDuplicate, "09506000134352/SN-1/sale/1"},
		}, false, -1},
		{"redelivery while pending", []step{
			{"pos1", "sale", StatusApplied, "09506000134352/SN-1/sale/1"},
			{"pos1", "sale", StatusDuplicate, "09506000134352/SN-1/sale/1"},
			{"pos1", "sale", StatusDuplicate, "09506000134352/SN-1/sale/1"},
		}, true, -1},
		{"returned at another device, sold again", []step{
			{"pos1", "sale", StatusApplied, "09506000134352/SN-1/sale/1"},
			{"desk", "return", StatusApplied, "09506000134352/SN-1/return/1"},
			{"pos1", "sale", StatusApplied, "09506000134352/SN-1/sale/2"},
		}, false, -1},
		{"sold at two devices", []step{
			{"pos1", "sale", StatusApplied, "09506000134352/SN-1/sale/1"},
			{"pos2", "sale", StatusDuplicate, "09506000134352/SN-1/sale/1"},
		}, false, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, db := newTestIngester(t)
			var results [][]Result
			if tc.pending {
				msgs := make([]drivers.Message, len(tc.steps))
				for i, s := range tc.steps {
					msgs[i] = scanMsg(s.device, s.typ, unit)
				}
				results = ingestAll(t, in, "scan", msgs)
			} else {
				for _, s := range tc.steps {
					res, err := in.IngestWait(t.Context(), "scan", scanMsg(s.device, s.typ, unit))
					require.NoError(t, err)
					results = append(results, res)
				}
			}
			for i, s := range tc.steps {
				require.Len(t, results[i], 1)
				r := results[i][0]
				require.Equal(t, s.status, r.Status, "step %d: %+v", i, r)
				require.Equal(t, s.id, r.ID, "step %d", i)
				require.Equal(t, s.status == StatusDuplicate, r.Notify, "step %d: a repeated unit is told to the device", i)
			}
			require.Equal(t, tc.onHand, onHand(t, db, "SKU-G"))
		})
	}
}

// The same redelivered scan, many times at once: one movement.
func TestIngester_SerialRedeliveryConcurrent(t *testing.T) {
	in, db := newTestIngester(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[string]int{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := in.IngestWait(context.Background(), "scan", scanMsg("pos1", "sale", "(01)09506000134352(21)SN-9"))
			if err == nil {
				mu.Lock()
				statuses[res[0].Status]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Equal(t, map[string]int{StatusApplied: 1, StatusDuplicate: 7}, statuses)
	require.Equal(t, int64(-1), onHand(t, db, "SKU-G"))
}

func ticketMsg(device, body string) drivers.Message {
	return drivers.Message{Source: "mqtt", Warehouse: "wh1", Device: device, DeviceFixed: true, Payload: []byte(body)}
}

// A POS ticket is all or nothing: the same id with another body (an extra
// line, a changed line, a line less) applies nothing and is id_reused for
// every line, with its payload quarantined once; the same body again is
// duplicate. Also while the first is still pending.
func TestIngester_TicketAllOrNothing(t *testing.T) {
	const first = `{"id":"T-1","type":"sale","lines":[{"sku":"SKU-A","qty":1},{"sku":"SKU-B","qty":2}]}`
	for _, tc := range []struct {
		name, second string
		want         []string // statuses of the second ticket's lines
		a, b, c      int64    // on_hand after both
	}{
		{"same body", first, []string{StatusDuplicate, StatusDuplicate}, -1, -2, 0},
		{"extra line", `{"id":"T-1","type":"sale","lines":[{"sku":"SKU-A","qty":1},{"sku":"SKU-B","qty":2},{"sku":"SKU-C","qty":5}]}`,
			[]string{StatusRejected, StatusRejected, StatusRejected}, -1, -2, 0},
		{"line changed", `{"id":"T-1","type":"sale","lines":[{"sku":"SKU-A","qty":1},{"sku":"SKU-B","qty":3}]}`,
			[]string{StatusRejected, StatusRejected}, -1, -2, 0},
		{"line less", `{"id":"T-1","type":"sale","lines":[{"sku":"SKU-A","qty":1}]}`,
			[]string{StatusRejected}, -1, -2, 0},
	} {
		for _, pending := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/pending=%v", tc.name, pending), func(t *testing.T) {
				in, db := newTestIngester(t)
				var second []Result
				if pending {
					second = ingestAll(t, in, "pos", []drivers.Message{ticketMsg("pos1", first), ticketMsg("pos1", tc.second)})[1]
				} else {
					_, err := in.IngestWait(t.Context(), "pos", ticketMsg("pos1", first))
					require.NoError(t, err)
					second, err = in.IngestWait(t.Context(), "pos", ticketMsg("pos1", tc.second))
					require.NoError(t, err)
				}
				var got []string
				for _, r := range second {
					got = append(got, r.Status)
					if r.Rejected() {
						require.Equal(t, drivers.ReasonIDReused, r.Reason)
						require.Contains(t, r.Message, `ticket "T-1"`)
					}
				}
				require.Equal(t, tc.want, got)
				require.Equal(t, tc.a, onHand(t, db, "SKU-A"))
				require.Equal(t, tc.b, onHand(t, db, "SKU-B"))
				require.Equal(t, tc.c, onHand(t, db, "SKU-C"))
				q, err := db.Quarantine(t.Context(), 0, 100)
				require.NoError(t, err)
				if tc.want[0] == StatusRejected {
					require.Len(t, q, 1, "the ticket's payload, once")
					require.Equal(t, tc.second, string(q[0].Payload))
				} else {
					require.Empty(t, q)
				}
			})
		}
	}
}
