package hub

import (
	"context"
	"net/http"
	"strings"

	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/internal/sse"
	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/sync"
)

// streamPage is how many deltas one read of a stream takes.
const streamPage = 500

// handleStream is the hub's live stream (SPEC §10): `stock` events (a
// warehouse's level of a SKU and its total, as /v1/feed has them) and,
// with ?channel=, `ats` events (the channel's ATS of a SKU, as /v1/ats has
// them), read from the durable change sequence, so Last-Event-ID resumes
// with no gap. A token bound to a channel gets its channel's ATS alone.
func (a *API) handleStream(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	filter, err := sse.ParseFilter(q, drivers.ValidID)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_query", "%v", err)
		return
	}
	channel, stock := q.Get("channel"), true
	if c, ok := auth.ClaimsOf(r); ok && c.Channel != "" {
		if channel == "" {
			channel = c.Channel
		}
		stock = false // a connector's token: its channel's ATS alone
	}
	if channel != "" && !drivers.ValidChannel(channel) {
		writeError(w, http.StatusBadRequest, "bad_query", "channel: %q is not a channel", channel)
		return
	}
	if channel != "" && !channelAllowed(w, r, channel) {
		return
	}
	sse.Serve(w, r, a.changeSource(stock, channel, filter), sse.Options{Changed: a.Hub.changed.Wait, Done: a.stopping()})
}

// changeSource reads the hub's changes past a cursor: stock events (when
// stock) and ats events of channel (when not ""), of the SKUs filter
// keeps. The streams and the webhooks read it alike.
func (a *API) changeSource(stock bool, channel string, filter sse.Filter) sse.Source {
	replica := a.Hub.store.CursorID()
	return func(ctx context.Context, cursor string) ([]sse.Event, string, bool, error) {
		since, err := sync.ParseCursor(cursor, replica)
		if err != nil || cursor != "" && !strings.HasPrefix(cursor, replica+"@") {
			return nil, "", false, sse.ErrReset // another database's: from the start
		}
		var page store.DeltaPage
		var ceiling int64
		if channel != "" { // holds matter to ats events alone
			page, ceiling, err = a.deltasWithHolds(ctx, since, streamPage)
		} else {
			page, err = a.Hub.store.Deltas(ctx, since, streamPage, "")
		}
		if err != nil {
			return nil, "", false, err
		}
		var events []sse.Event
		next := page.Next
		if stock {
			changes, err := a.feedChanges(ctx, page, filter.Keep)
			if err != nil {
				return nil, "", false, err
			}
			for _, c := range changes {
				events = append(events, sse.Event{Type: "stock", Data: c})
			}
		}
		if channel != "" {
			changes, after, err := a.atsChanges(ctx, channel, since, page, ceiling)
			if err != nil {
				return nil, "", false, err
			}
			for _, c := range changes {
				if filter.Keep(c.SKU) {
					events = append(events, sse.Event{Type: "ats", Data: c})
				}
			}
			next = max(next, after)
		}
		return events, sync.FormatCursor(replica, next), page.More, nil
	}
}
