package agent

import (
	"context"
	"math"
	"net/http"
	"slices"

	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/internal/sse"
	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/sync"
)

// Stream page sizes.
const (
	streamPage   = 500 // deltas per read
	streamAlerts = 100 // alerts per read
)

// streamCursor is where an agent's stream stands: a cursor into the
// store's version sequence (stock, rights, holds) and the last alert's
// seq, written "{replica}@{version}~{seq}".
type streamCursor struct {
	version, seq int64
}

func (c streamCursor) format(replica string) string {
	return sync.FormatStreamCursor(replica, c.version, c.seq)
}

// parseStreamCursor reads a cursor of this replica; false: another
// database's (or not a cursor), which the stream cannot resume. The
// agent's always carry the alert seq.
func parseStreamCursor(s, replica string) (streamCursor, bool) {
	version, seq, hasSeq, ok := sync.ParseStreamCursor(s, replica)
	return streamCursor{version, seq}, ok && (hasSeq || s == "")
}

// handleStream is the agent's live stream (SPEC §10): `stock` events
// (the stock view, as GET /v1/stock/{sku}) when a SKU's counters, rights,
// safety or holds change, and `alert` events (as GET /v1/alerts), read
// from the durable version sequence and the alert outbox, so
// Last-Event-ID resumes with no gap.
func (a *Agent) handleStream(w http.ResponseWriter, r *http.Request) {
	filter, err := sse.ParseFilter(r.URL.Query(), drivers.ValidID)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_query", "%v", err)
		return
	}
	if r.URL.Query().Has("channel") {
		writeError(w, http.StatusBadRequest, "bad_query",
			"channel: the agent's stock events carry every channel's allotment (allotted); ?channel= is the hub's filter, for ats events")
		return
	}
	readGen := int64(-1) // alertGen when this stream last read the outbox to its end
	src := func(ctx context.Context, cursor string) ([]sse.Event, string, bool, error) {
		replica := a.store.CursorID()
		at, ok := parseStreamCursor(cursor, replica)
		if !ok || cursor == "" {
			readGen = -1 // from the start (again, after a reset): read the outbox
		}
		if !ok {
			return nil, "", false, sse.ErrReset
		}
		page, err := a.store.OwnDeltas(ctx, at.version, streamPage)
		if err != nil {
			return nil, "", false, err
		}
		upto := page.Next
		if !page.More {
			upto = math.MaxInt64
		}
		skus, top, err := a.store.LocalHoldChanges(ctx, at.version, upto)
		if err != nil {
			return nil, "", false, err
		}
		for _, e := range page.Entries {
			skus = append(skus, e.SKU)
		}
		for _, e := range page.Escrow {
			skus = append(skus, e.SKU)
		}
		slices.Sort(skus)
		skus = slices.DeleteFunc(slices.Compact(skus), func(s string) bool { return !filter.Keep(s) })
		views, err := a.stockViews(ctx, skus)
		if err != nil {
			return nil, "", false, err
		}
		var events []sse.Event
		for _, v := range views {
			events = append(events, sse.Event{Type: "stock", Data: v})
		}
		// Most commits raise no alert: the outbox is read only when one did.
		var alerts []store.Alert
		if gen := a.alertGen.Load(); gen != readGen {
			if alerts, err = a.store.Alerts(ctx, at.seq, streamAlerts); err != nil {
				return nil, "", false, err
			}
			if len(alerts) < streamAlerts {
				readGen = gen
			}
		}
		next := streamCursor{version: max(page.Next, top), seq: at.seq}
		for _, al := range alerts {
			next.seq = al.Seq
			if al.SKU == "" || filter.Keep(al.SKU) {
				events = append(events, sse.Event{Type: "alert", Data: alertView(al)})
			}
		}
		return events, next.format(replica), page.More || len(alerts) == streamAlerts, nil
	}
	sse.Serve(w, r, src, sse.Options{Changed: a.changes.Wait, Done: a.streamsDone})
}
