package hub

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/internal/sse"
	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/sync"
)

// Stream page sizes.
const (
	streamPage   = 500 // deltas per read
	streamAlerts = 100 // alerts per read
)

// AlertView is an `alert` event of the hub's stream and of
// {prefix}/hub/alerts: an agent's link went down or came back.
type AlertView struct {
	ID        string    `json:"id"` // "hub:{seq}", stable: dedupe on it
	Kind      string    `json:"kind"`
	Warehouse string    `json:"warehouse"`
	At        time.Time `json:"at"`
}

// warehouseRefresh is how often a stream resends a warehouse whose only
// news is a later exchange (its lag): a busy agent is pulled many times a
// second, and its lag moves every second; the client computes lag from
// last_contact in between.
const warehouseRefresh = 5 * time.Second

// LineEvent is an `order` event: an order line as booked at a warehouse,
// sent again when it is cancelled.
type LineEvent struct {
	ID        string `json:"id"` // "{order}.{n}"
	Order     string `json:"order"`
	Warehouse string `json:"warehouse"`
	SKU       string `json:"sku"`
	Channel   string `json:"channel"`
	Qty       int64  `json:"qty"`
	Cancelled bool   `json:"cancelled"`
}

// handleStream is the hub's live stream (SPEC §10), read from the durable
// change sequence, so Last-Event-ID resumes with no gap:
//   - `stock`: a warehouse's level of a SKU and its total, as /v1/feed;
//   - `ats`, with ?channel= (repeatable): a channel's ATS of a SKU, as
//     /v1/ats;
//   - `order`: an order line booked or cancelled;
//   - `alert`: warehouse_offline, warehouse_online, from the hub's alert
//     outbox;
//   - `warehouse`: an agent's link (online, lag, errors), as
//     /v1/warehouses, at the start and when it changes; it is state, and
//     carries no id.
//
// A token bound to a channel gets its channel's ATS and order lines alone.
func (a *API) handleStream(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	filter, err := sse.ParseFilter(q, drivers.ValidID)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_query", "%v", err)
		return
	}
	src := sourceOptions{stock: true, orders: true, alerts: true, ats: true, channels: q["channel"], filter: filter}
	c, bound := auth.ClaimsOf(r)
	bound = bound && c.Channel != ""
	if bound { // a connector's token: its channel's ATS and lines alone
		src.stock, src.alerts = false, false
		if len(src.channels) == 0 {
			src.channels = []string{c.Channel}
		}
	}
	for _, ch := range src.channels {
		if !drivers.ValidChannel(ch) {
			writeError(w, http.StatusBadRequest, "bad_query", "channel: %q is not a channel", ch)
			return
		}
		if !channelAllowed(w, r, ch) {
			return
		}
	}
	slices.Sort(src.channels)
	src.channels = slices.Compact(src.channels)
	opts := sse.Options{Changed: a.Hub.changed.Wait, Done: a.stopping()}
	if !bound {
		opts.NewState = a.warehouseState
	}
	sse.Serve(w, r, a.changeSource(src), opts)
}

// sourceOptions says what a change source reads.
type sourceOptions struct {
	stock    bool       // stock events
	orders   bool       // order events (of channels only, when set)
	alerts   bool       // alert events (their seq joins the cursor)
	ats      bool       // ats events of the channels
	channels []string   // the channels of ats and order events
	filter   sse.Filter // of these SKUs
}

// stockOrATS is what a webhook or the MQTT publisher reads: the stock
// events, or with a channel that channel's ats events.
func stockOrATS(channel string) sourceOptions {
	if channel == "" {
		return sourceOptions{stock: true}
	}
	return sourceOptions{ats: true, channels: []string{channel}}
}

// changeSource reads the hub's changes past a cursor, as o says. The
// streams and the webhooks read it alike.
func (a *API) changeSource(o sourceOptions) sse.Source {
	replica := a.Hub.store.CursorID()
	return func(ctx context.Context, cursor string) ([]sse.Event, string, bool, error) {
		// "{db}@{version}~{alert seq}" when it reads alerts
		since, seq, _, ok := sync.ParseStreamCursor(cursor, replica)
		if !ok {
			return nil, "", false, sse.ErrReset // another database's: from the start
		}
		var page store.DeltaPage
		var ceiling int64
		var err error
		if o.ats && len(o.channels) > 0 { // holds matter to ats events alone
			page, ceiling, err = a.deltasWithHolds(ctx, since, streamPage)
		} else {
			page, err = a.Hub.store.Deltas(ctx, since, streamPage, "")
		}
		if err != nil {
			return nil, "", false, err
		}
		var events []sse.Event
		next := page.Next
		if o.stock {
			changes, err := a.feedChanges(ctx, page, o.filter.Keep)
			if err != nil {
				return nil, "", false, err
			}
			for _, c := range changes {
				events = append(events, sse.Event{Type: "stock", Data: c})
			}
		}
		if o.ats {
			for _, ch := range o.channels {
				changes, after, err := a.atsChanges(ctx, ch, since, page, ceiling)
				if err != nil {
					return nil, "", false, err
				}
				for _, c := range changes {
					if o.filter.Keep(c.SKU) {
						events = append(events, sse.Event{Type: "ats", Data: c})
					}
				}
				next = max(next, after)
			}
		}
		if o.orders {
			for _, l := range page.Lines {
				if o.filter.Keep(l.SKU) && (len(o.channels) == 0 || slices.Contains(o.channels, l.Channel)) {
					events = append(events, sse.Event{Type: "order", Data: lineEvent(l)})
				}
			}
		}
		more := page.More
		if o.alerts {
			var alerts []store.Alert
			if seq < a.Hub.alertTop.Load() { // most changes raise none: no read
				if alerts, err = a.Hub.store.Alerts(ctx, seq, streamAlerts); err != nil {
					return nil, "", false, err
				}
			}
			for _, al := range alerts {
				seq = al.Seq
				events = append(events, sse.Event{Type: "alert", Data: hubAlert(al)})
			}
			more = more || len(alerts) == streamAlerts
			return events, sync.FormatStreamCursor(replica, next, seq), more, nil
		}
		return events, sync.FormatCursor(replica, next), more, nil
	}
}

func hubAlert(a store.Alert) AlertView {
	return AlertView{ID: "hub:" + strconv.FormatInt(a.Seq, 10), Kind: a.Kind, Warehouse: a.Warehouse, At: a.CreatedAt}
}

func lineEvent(l store.OrderLine) LineEvent {
	order := l.ID
	if i := strings.LastIndexByte(l.ID, '.'); i >= 0 { // "{order}.{n}"
		order = l.ID[:i]
	}
	return LineEvent{ID: l.ID, Order: order, Warehouse: l.Warehouse, SKU: l.SKU, Channel: l.Channel, Qty: l.Qty, Cancelled: l.Cancelled}
}

// warehouseState makes a stream's reader of its warehouse events: each
// agent's link at the start, then again when it goes online or offline,
// starts or stops catching up, fails or recovers, or names another
// replica; and at most every warehouseRefresh when it only exchanged
// again.
func (a *API) warehouseState() func() []sse.Event {
	type sent struct {
		key  WarehouseStatus // the fields that matter, the rest zeroed
		at   time.Time
		seen *time.Time
	}
	last := map[string]sent{}
	return func() []sse.Event {
		var out []sse.Event
		now := time.Now()
		for _, w := range a.Hub.Warehouses() {
			key := WarehouseStatus{Warehouse: w.Warehouse, Replica: w.Replica, Online: w.Online, Pending: w.Pending, LastError: w.LastError}
			prev, ok := last[w.Warehouse]
			contactMoved := w.LastContact != nil && (prev.seen == nil || !w.LastContact.Equal(*prev.seen))
			if ok && prev.key == key && (!contactMoved || now.Sub(prev.at) < warehouseRefresh) {
				continue
			}
			last[w.Warehouse] = sent{key: key, at: now, seen: w.LastContact}
			out = append(out, sse.Event{Type: "warehouse", Data: w})
		}
		return out
	}
}
