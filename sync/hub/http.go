package hub

import (
	"context"
	"net/http"
	"strings"
	stdsync "sync"
	"time"

	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/internal/apidoc"
	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/internal/dashboard"
	"github.com/edgestock/edgestock/internal/httpjson"
	"github.com/edgestock/edgestock/internal/ingest"
	"github.com/edgestock/edgestock/internal/sse"
	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/sync"
)

// Reader is what the HTTP API reads; *store.DB provides it.
type Reader interface {
	SKUsStock(ctx context.Context, skus []string) ([]store.StockLevel, error)
	SKUPage(ctx context.Context, prefix, after string, limit int) ([]string, error)
	Ping(ctx context.Context) error
	Err() error
}

var _ Reader = (*store.DB)(nil)

// API serves the hub's HTTP endpoints (SPEC §5).
type API struct {
	Hub    *Hub
	Store  Reader
	Guard  *auth.Guard                                      // nil: no token checks (tests of other concerns)
	Ingest func(warehouse string) (*ingest.Ingester, error) // central writes on the hub's replica
	Sell   Seller                                           // orders and releases on channels (SPEC §9)
	// Webhooks, when set, are the hub's webhook deliveries (SPEC §10).
	Webhooks *webhooks

	mu        stdsync.Mutex
	ingesters map[string]*ingest.Ingester
	stop      chan struct{} // closed by Shutdown: the streams end
	stopOnce  stdsync.Once
}

// stopping is closed when the server shuts down.
func (a *API) stopping() chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stop == nil {
		a.stop = make(chan struct{})
	}
	return a.stop
}

// Shutdown ends the open streams, which would otherwise hold the HTTP
// server's shutdown until their clients leave (http.Server.RegisterOnShutdown).
func (a *API) Shutdown() {
	stop := a.stopping()
	a.stopOnce.Do(func() { close(stop) })
}

// Routes returns the handler: a mux that remembers its patterns, which a
// test holds to internal/apidoc/hub.openapi.yaml. Every route but /healthz
// is guarded: beyond loopback (or with auth: required) it needs a hub
// token with its scope.
func (a *API) Routes() http.Handler {
	mux := apidoc.NewMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok", "role": "hub"})
	})
	// The dashboard's page and assets hold no data (they read the API
	// with the operator's token), so they are open like /healthz.
	mux.HandleFunc("GET /{$}", dashboard.Page(dashboard.Hub))
	mux.HandleFunc("GET /ui/{file}", dashboard.Assets)
	mux.HandleFunc("GET /v1/uplink", a.handleUplink) // checks its own token: an uplink token
	for _, r := range []struct {
		pattern, scope string
		handler        http.HandlerFunc
		channel        bool // open to a channel-bound token (SPEC §9)
	}{
		{"GET /readyz", "", a.handleReady, false},
		{"GET /v1/openapi.yaml", "", apidoc.Handler(apidoc.Hub), true},
		{"GET /metrics", "", a.Hub.metricsHandler().ServeHTTP, false},
		{"GET /v1/stock/{sku}", auth.ScopeStockRead, a.handleStock, false},
		{"GET /v1/stock", auth.ScopeStockRead, a.handleStockList, false},
		{"GET /v1/warehouses", auth.ScopeStockRead, func(w http.ResponseWriter, r *http.Request) {
			a.Hub.discover(r.Context(), false) // uplink tokens issued since
			httpjson.Write(w, http.StatusOK, map[string]any{"warehouses": a.Hub.Warehouses()})
		}, false},
		{"GET /v1/feed", auth.ScopeStockRead, a.handleFeed, false},
		{"GET /v1/replenishment", auth.ScopeStockRead, a.handleReplenishment, false},
		{"GET /v1/webhooks/deliveries", auth.ScopeAdmin, a.handleWebhookDeliveries, false},
		{"POST /v1/events", auth.ScopeEventsWrite, a.handleEvents, false},
		{"GET /v1/ats/{sku}", auth.ScopeStockRead, a.handleATS, true},
		{"GET /v1/ats", auth.ScopeStockRead, a.handleATSFeed, true},
		{"POST /v1/orders", auth.ScopeOrdersWrite, a.handleOrder, true},
		{"GET /v1/orders/{id}", auth.ScopeStockRead, a.handleGetOrder, true},
		{"POST /v1/orders/{id}/cancel", auth.ScopeOrdersWrite, a.handleCancel, true},
		{"POST /v1/releases", auth.ScopeOrdersWrite, a.handleRelease, true},
		{"POST /v1/allotments", auth.ScopeAdmin, a.handleAllot, false},
		{"POST /v1/holds", auth.ScopeOrdersWrite, a.handleCreateHold, true},
		{"GET /v1/holds/{id}", auth.ScopeStockRead, a.handleGetHold, true},
		{"POST /v1/holds/{id}/renew", auth.ScopeOrdersWrite, a.handleRenewHold, true},
		{"POST /v1/holds/{id}/commit", auth.ScopeOrdersWrite, a.handleCommitHold, true},
		{"DELETE /v1/holds/{id}", auth.ScopeOrdersWrite, a.handleReleaseHold, true},
	} {
		mux.HandleFunc(r.pattern, a.guarded(r.scope, r.channel, r.handler))
	}
	// The one route that takes its token from the URL too: a browser's
	// EventSource cannot set headers.
	mux.HandleFunc("GET /v1/stream", sse.QueryToken(a.guarded(auth.ScopeStockRead, true, a.handleStream)))
	return mux
}

// guarded wraps h in the token checks of a route needing scope (SPEC §6);
// channel says whether a channel-bound token may use it.
func (a *API) guarded(scope string, channel bool, h http.HandlerFunc) http.HandlerFunc {
	if !channel {
		h = refuseChannelBound(h)
	}
	if a.Guard != nil {
		h = a.Guard.Require(scope, h)
	}
	return h
}

// refuseChannelBound wraps a route a channel-bound token does not open:
// such a token sells and reads ATS on its channel, nothing else.
func refuseChannelBound(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c, ok := auth.ClaimsOf(r); ok && c.Channel != "" {
			writeError(w, http.StatusForbidden, "forbidden", "token %s is bound to channel %s: it opens its channel's ATS, orders, holds, releases and stream only", c.ID, c.Channel)
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) { httpjson.Write(w, status, v) }

func writeError(w http.ResponseWriter, status int, code, format string, args ...any) {
	httpjson.Error(w, status, code, format, args...)
}

func (a *API) handleReady(w http.ResponseWriter, r *http.Request) {
	err := a.Store.Ping(r.Context())
	if err == nil {
		err = a.Store.Err()
	}
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "checks": map[string]string{"store": err.Error()}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ready": true, "checks": map[string]string{"store": "ok"}})
}

// WarehouseStock is one warehouse's part of a SKU.
type WarehouseStock struct {
	OnHand    int64            `json:"on_hand"`
	Locations map[string]int64 `json:"locations"`
}

// StockView is the global stock of a SKU.
type StockView struct {
	SKU        string                    `json:"sku"`
	OnHand     int64                     `json:"on_hand"`
	Warehouses map[string]WarehouseStock `json:"warehouses"`
	UpdatedAt  time.Time                 `json:"updated_at"`
}

func view(sku string, levels []store.StockLevel) StockView {
	v := StockView{SKU: sku, Warehouses: map[string]WarehouseStock{}}
	for _, l := range levels {
		v.OnHand += l.OnHand
		v.Warehouses[l.Warehouse] = WarehouseStock{OnHand: l.OnHand, Locations: l.Locations}
		if l.UpdatedAt.After(v.UpdatedAt) {
			v.UpdatedAt = l.UpdatedAt
		}
	}
	return v
}

// views reads the view of each of skus with one query.
func (a *API) views(ctx context.Context, skus []string) (map[string]StockView, error) {
	levels, err := a.Store.SKUsStock(ctx, skus)
	if err != nil {
		return nil, err
	}
	bySKU := store.BySKU(levels)
	out := make(map[string]StockView, len(skus))
	for _, sku := range skus {
		out[sku] = view(sku, bySKU[sku])
	}
	return out, nil
}

func (a *API) handleStock(w http.ResponseWriter, r *http.Request) {
	sku := r.PathValue("sku")
	levels, err := a.Store.SKUsStock(r.Context(), []string{sku})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
		return
	}
	if len(levels) == 0 {
		writeError(w, http.StatusNotFound, "not_found", "sku %q has never been seen", sku)
		return
	}
	writeJSON(w, http.StatusOK, view(sku, levels))
}

func (a *API) handleStockList(w http.ResponseWriter, r *http.Request) {
	limit, err := httpjson.QueryInt(r, "limit", 100, 1, 1000)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_query", "%v", err)
		return
	}
	skus, err := a.Store.SKUPage(r.Context(), r.URL.Query().Get("prefix"), r.URL.Query().Get("after"), int(limit))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
		return
	}
	views, err := a.views(r.Context(), skus)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
		return
	}
	items := make([]StockView, 0, len(skus))
	for _, sku := range skus {
		items = append(items, views[sku])
	}
	next := ""
	if len(skus) == int(limit) {
		next = skus[len(skus)-1]
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "next": next})
}

// FeedChange is one reconciled change: a key's new totals.
type FeedChange struct {
	Warehouse string `json:"warehouse"`
	SKU       string `json:"sku"`
	OnHand    int64  `json:"on_hand"` // in this warehouse
	Total     int64  `json:"total"`   // in all warehouses
}

// feedChanges is one change per (warehouse, SKU) of page's counter
// entries that keep says to (nil: every SKU), with the levels now.
func (a *API) feedChanges(ctx context.Context, page store.DeltaPage, keep func(sku string) bool) ([]FeedChange, error) {
	type key struct{ wh, sku string }
	var keys []key
	var skus []string
	seen, seenSKU := map[key]bool{}, map[string]bool{}
	for _, e := range page.Entries {
		if keep != nil && !keep(e.SKU) {
			continue
		}
		if k := (key{e.Warehouse, e.SKU}); !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
		if !seenSKU[e.SKU] {
			seenSKU[e.SKU] = true
			skus = append(skus, e.SKU)
		}
	}
	views, err := a.views(ctx, skus)
	if err != nil {
		return nil, err
	}
	changes := make([]FeedChange, 0, len(keys))
	for _, k := range keys {
		v := views[k.sku]
		changes = append(changes, FeedChange{Warehouse: k.wh, SKU: k.sku, OnHand: v.Warehouses[k.wh].OnHand, Total: v.OnHand})
	}
	return changes, nil
}

// handleFeed is the reconciled change feed for OMS and marketplace
// connectors: keys changed since the cursor with their new totals, long
// polling like the agents' deltas.
func (a *API) handleFeed(w http.ResponseWriter, r *http.Request) {
	replica := a.Hub.store.CursorID()
	since, err := sync.ParseCursor(r.URL.Query().Get("since"), replica)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_cursor", "%v", err)
		return
	}
	limit, err := httpjson.QueryInt(r, "limit", 1000, 1, 10000)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_query", "%v", err)
		return
	}
	wait, err := sync.ParseWait(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_query", "%v", err)
		return
	}
	var page store.DeltaPage
	if err := sync.LongPoll(r.Context(), a.Hub.changed, wait, func() (bool, error) {
		page, err = a.Hub.store.Deltas(r.Context(), since, int(limit), "")
		return len(page.Entries) > 0, err
	}); err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
		return
	}
	changes, err := a.feedChanges(r.Context(), page, nil)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"changes": changes, "next": sync.FormatCursor(replica, page.Next), "more": page.More})
}

// handleEvents takes central writes (an ERP adjustment, a marketplace
// order booked against a warehouse): ?warehouse= names the target, the
// body is events as on an agent, recorded on the hub's own replica and
// pushed down to the agents.
func (a *API) handleEvents(w http.ResponseWriter, r *http.Request) {
	wh := r.URL.Query().Get("warehouse")
	device := r.URL.Query().Get("device")
	if device == "" {
		device = "hub"
	}
	if !drivers.ValidID(wh) || !drivers.ValidID(device) {
		writeError(w, http.StatusBadRequest, "bad_query", "warehouse and device must be 1-64 chars of [A-Za-z0-9._-]")
		return
	}
	if !a.Hub.Knows(wh) {
		// A write for a warehouse no agent runs would show up in the
		// global view as stock that exists nowhere.
		writeError(w, http.StatusNotFound, "unknown_warehouse", "warehouse %q is not one of this hub's agents (%s)", wh, strings.Join(a.Hub.WarehouseIDs(), ", "))
		return
	}
	in, err := a.ingester(wh)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "%v", err)
		return
	}
	in.ServeEvents(w, r, drivers.Message{Source: "http", Warehouse: wh, Device: device, ReceivedAt: time.Now().UTC()}, a.Store)
}

func (a *API) ingester(wh string) (*ingest.Ingester, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if in, ok := a.ingesters[wh]; ok {
		return in, nil
	}
	in, err := a.Ingest(wh)
	if err != nil {
		return nil, err
	}
	if a.ingesters == nil {
		a.ingesters = map[string]*ingest.Ingester{}
	}
	a.ingesters[wh] = in
	return in, nil
}
