package agent

import (
	"context"
	"encoding/base64"
	"errors"
	"math"
	"net/http"
	"net/http/pprof"
	"os"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/edgestock/edgestock/crdt"
	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/internal/apidoc"
	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/internal/dashboard"
	"github.com/edgestock/edgestock/internal/httpjson"
	"github.com/edgestock/edgestock/internal/sse"
	"github.com/edgestock/edgestock/internal/store"
)

// Page sizes for list endpoints.
const (
	defaultPage = 100
	maxPage     = 1000
)

// routes registers the API on a mux that remembers its patterns: a test
// holds them to internal/apidoc/agent.openapi.yaml.
func (a *Agent) routes() http.Handler {
	mux := apidoc.NewMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "role": "agent"})
	})
	// The dashboard's page and assets hold no data (they read the API
	// with the operator's token), so they are open like /healthz.
	mux.HandleFunc("GET /{$}", dashboard.Page(dashboard.Agent))
	mux.HandleFunc("GET /ui/{file}", dashboard.Assets)
	mux.HandleFunc("GET /readyz", a.requireScope("", a.handleReady))
	mux.HandleFunc("GET /metrics", a.requireScope("", a.metrics.handler().ServeHTTP))
	for _, r := range []struct {
		pattern, scope string
		handler        http.HandlerFunc
	}{
		{"GET /v1/openapi.yaml", "", apidoc.Handler(apidoc.Agent)},
		{"GET /v1/status", auth.ScopeStockRead, a.handleStatus},
		{"GET /v1/stock/{sku}", auth.ScopeStockRead, a.handleStock},
		{"GET /v1/stock", auth.ScopeStockRead, a.handleStockList},
		{"POST /v1/events", auth.ScopeEventsWrite, a.handlePostEvents},
		{"GET /v1/events", auth.ScopeStockRead, a.handleEvents},
		{"GET /v1/quarantine", auth.ScopeAdmin, a.handleQuarantine},
		{"GET /v1/devices", auth.ScopeStockRead, a.handleDevices},
		{"GET /v1/replenishment", auth.AnyOf(auth.ScopeStockRead, auth.ScopeSync), a.handleReplenishment}, // or the hub, asking
		{"GET /v1/alerts", auth.ScopeStockRead, a.handleAlerts},
		{"GET /v1/sync/deltas", auth.ScopeSync, a.handleSyncDeltas},
		{"POST /v1/sync/merge", auth.ScopeSync, a.handleSyncMerge},
		{"GET /v1/sync/state", auth.ScopeSync, a.handleSyncState},
		{"POST /v1/reservations", auth.ScopeReservationsWrite, a.handleCreateHold},
		{"GET /v1/reservations/{id}", auth.ScopeStockRead, a.handleGetHold},
		{"POST /v1/reservations/{id}/renew", auth.ScopeReservationsWrite, a.handleRenewHold},
		{"POST /v1/reservations/{id}/commit", auth.ScopeReservationsWrite, a.handleCommitHold},
		{"DELETE /v1/reservations/{id}", auth.ScopeReservationsWrite, a.handleReleaseHold},
		{"PUT /v1/safety/{sku}", auth.ScopeAdmin, a.handleSetSafety},
		{"POST /v1/allotments", auth.ScopeSync, a.handleAllot}, // admin, or the hub relaying one
		{"GET /v1/allotments", auth.ScopeStockRead, a.handleAllotments},
		// Profiles (docs/BENCHMARKS.md): admin, as they show the code's
		// hot paths and cost CPU while they run.
		{"GET /debug/pprof/", auth.ScopeAdmin, pprof.Index},
		{"GET /debug/pprof/profile", auth.ScopeAdmin, pprof.Profile},
		{"GET /debug/pprof/trace", auth.ScopeAdmin, pprof.Trace},
	} {
		mux.HandleFunc(r.pattern, a.requireScope(r.scope, r.handler))
	}
	// The one route that takes its token from the URL too: a browser's
	// EventSource cannot set headers.
	mux.HandleFunc("GET /v1/stream", sse.QueryToken(a.requireScope(auth.ScopeStockRead, a.handleStream)))
	return mux
}

func writeError(w http.ResponseWriter, status int, code, format string, args ...any) {
	httpjson.Error(w, status, code, format, args...)
}

func writeJSON(w http.ResponseWriter, status int, v any) { httpjson.Write(w, status, v) }

func (a *Agent) handleReady(w http.ResponseWriter, r *http.Request) {
	checks := map[string]string{}
	ok := true
	check := func(name string, err error) {
		if err != nil {
			checks[name], ok = err.Error(), false
		} else {
			checks[name] = "ok"
		}
	}
	storeErr := a.store.Ping(r.Context())
	if storeErr == nil {
		storeErr = a.store.Err()
	}
	check("store", storeErr)
	check("broker", a.broker.Ready())
	check("disk", diskWritable(a.cfg.DataDir))
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": ok, "checks": checks})
}

// diskWritable creates and syncs a small file in dir.
func diskWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".readyz-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Write([]byte("ok")); err != nil {
		return err
	}
	return f.Sync()
}

// StockView is the stock of one SKU (SPEC §4).
type StockView struct {
	SKU       string `json:"sku"`
	Warehouse string `json:"warehouse"`
	OnHand    int64  `json:"on_hand"`
	Reserved  int64  `json:"reserved"`
	Available int64  `json:"available"`
	// Rights (SPEC §9): on_hand = unallotted + Σ allotted + committed.
	Safety     int64            `json:"safety"`
	Unallotted int64            `json:"unallotted"`
	Allotted   map[string]int64 `json:"allotted"`
	Committed  int64            `json:"committed"`
	Locations  map[string]int64 `json:"locations"`
	Global     GlobalView       `json:"global"`
	LowStock   bool             `json:"low_stock"`
	UpdatedAt  time.Time        `json:"updated_at"`
}

// GlobalView is the company-wide stock as far as this agent knows it: this
// warehouse's current value plus every other warehouse's merged state as of
// AsOf, the last merge (null before the first).
type GlobalView struct {
	OnHand     int64            `json:"on_hand"`
	Warehouses map[string]int64 `json:"warehouses"`
	AsOf       *time.Time       `json:"as_of"`
}

// view builds the stock view of a level with reserved units held by active
// reservations, the SKU's rights and its safety stock. Available is what
// the warehouse itself may still promise: its unallotted stock less holds
// and safety stock. A hold never drives it below zero (only granted when
// available covers it); a negative on_hand shows as it is. low is the
// SKU's state in the low-stock alert machine (with its hysteresis).
func (a *Agent) view(l store.StockLevel, reserved, safety int64, rights crdt.Escrow, low bool, global GlobalView) StockView {
	allotted := map[string]int64{}
	var committed int64
	for _, h := range rights.Holders() {
		if h == store.LocalHolder {
			continue
		}
		if n := rights.Rights(h); n != 0 {
			allotted[h] = n
		}
		committed += rights.Committed(h)
	}
	unallotted := l.OnHand - rights.Promised(store.LocalHolder)
	available := max(unallotted-reserved-safety, min(l.OnHand, 0))
	if !a.cfg.Alerts.Enabled { // no alert state: the plain threshold
		low = a.rule.Low(l.SKU, false, available)
	}
	return StockView{
		SKU: l.SKU, Warehouse: l.Warehouse, OnHand: l.OnHand, Reserved: reserved, Available: available, Locations: l.Locations,
		Safety: safety, Unallotted: unallotted, Allotted: allotted, Committed: committed,
		Global:    global,
		LowStock:  low,
		UpdatedAt: l.UpdatedAt,
	}
}

// stockView reads one SKU's view; ok is false if it was never seen.
func (a *Agent) stockView(ctx context.Context, sku string) (StockView, bool, error) {
	views, err := a.stockViews(ctx, []string{sku})
	if err != nil || len(views) == 0 {
		return StockView{}, false, err
	}
	return views[0], true, nil
}

// viewPage is how many SKUs' views one read takes: a live flush's page, the
// start-up republish's, a ?low=true scan's.
const viewPage = 500

// stockViews reads the views of skus, in their order, with one read of
// each kind whatever their number; a SKU never seen in this warehouse is
// left out.
func (a *Agent) stockViews(ctx context.Context, skus []string) ([]StockView, error) {
	levels, err := a.store.SKUsStock(ctx, skus) // this warehouse's, and those the hub sent
	if err != nil || len(levels) == 0 {
		return nil, err
	}
	reserved, err := a.store.ReservedOf(ctx, skus, now())
	if err != nil {
		return nil, err
	}
	rights, err := a.store.RightsOf(ctx, a.cfg.Warehouse, skus)
	if err != nil {
		return nil, err
	}
	safety, err := a.store.SafetyOf(ctx, a.cfg.Warehouse, skus)
	if err != nil {
		return nil, err
	}
	var low map[string]bool
	if a.cfg.Alerts.Enabled { // otherwise view applies the plain threshold
		if low, err = a.store.LowOf(ctx, skus); err != nil {
			return nil, err
		}
	}
	lastMerge, err := a.store.LastMerge(ctx)
	if err != nil {
		return nil, err
	}
	bySKU := store.BySKU(levels)
	views := make([]StockView, 0, len(skus))
	for _, sku := range skus {
		all := bySKU[sku]
		i := slices.IndexFunc(all, func(l store.StockLevel) bool { return l.Warehouse == a.cfg.Warehouse })
		if i < 0 {
			continue
		}
		views = append(views, a.view(all[i], reserved[sku], safety[sku], rights[sku], low[sku], globalOf(all, lastMerge)))
	}
	return views, nil
}

func (a *Agent) handleStock(w http.ResponseWriter, r *http.Request) {
	sku := r.PathValue("sku")
	if !drivers.ValidID(sku) {
		writeError(w, http.StatusBadRequest, "bad_sku", "sku %q must be 1-64 chars of [A-Za-z0-9._-]", sku)
		return
	}
	v, ok, err := a.stockView(r.Context(), sku)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
		return
	}
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "sku %q has never been seen in warehouse %s", sku, a.cfg.Warehouse)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// pageLimit reads ?limit= with a default and a cap.
func pageLimit(r *http.Request) (int, error) {
	n, err := httpjson.QueryInt(r, "limit", defaultPage, 1, maxPage)
	return int(n), err
}

// seqPage reads ?since=SEQ&limit=N of a log endpoint, answering 400 itself
// when they are bad.
func seqPage(w http.ResponseWriter, r *http.Request) (since int64, limit int, ok bool) {
	since, err := querySeq(r, "since")
	limit, err2 := pageLimit(r)
	if err = errors.Join(err, err2); err != nil {
		writeError(w, http.StatusBadRequest, "bad_query", "%v", err)
		return 0, 0, false
	}
	return since, limit, true
}

func querySeq(r *http.Request, name string) (int64, error) {
	return httpjson.QueryInt(r, name, 0, 0, math.MaxInt64)
}

func (a *Agent) handleStockList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := pageLimit(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_query", "%v", err)
		return
	}
	low := q.Get("low") == "true"
	// Pages of this warehouse's SKUs, or with low=true and alerts on, of
	// the low ones alone (low_skus is the alert state). With low=true and
	// the plain threshold few SKUs may be low: larger pages.
	page, size := a.store.StockPage, limit
	switch {
	case low && a.cfg.Alerts.Enabled:
		page = a.store.LowPage
	case low:
		size = max(limit, viewPage)
	}
	items := []StockView{}
	// Keep reading pages until this one is full. next is the last SKU
	// looked at: the client resumes right after it.
	next := q.Get("after")
	for len(items) < limit {
		skus, err := page(r.Context(), q.Get("prefix"), next, size)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
			return
		}
		views, err := a.stockViews(r.Context(), skus)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
			return
		}
		looked := lastSKU(skus, next) // the whole page, unless the list fills first
		for _, v := range views {
			if low && !v.LowStock { // with alerts on: no longer low since the page was read
				continue
			}
			if items = append(items, v); len(items) == limit {
				looked = v.SKU
				break
			}
		}
		next = looked
		if len(skus) < size && next == lastSKU(skus, next) { // the store has nothing after next
			next = ""
			break
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "next": next})
}

func (a *Agent) handlePostEvents(w http.ResponseWriter, r *http.Request) {
	device := r.URL.Query().Get("device")
	if device == "" {
		device = "http"
	}
	if !drivers.ValidID(device) {
		writeError(w, http.StatusBadRequest, "bad_device", "device %q must be 1-64 chars of [A-Za-z0-9._-]", device)
		return
	}
	a.ingest.ServeEvents(w, r, drivers.Message{Source: "http", Warehouse: a.cfg.Warehouse, Device: device, ReceivedAt: now()}, a.store)
}

// LoggedEventView is one entry of GET /v1/events.
type LoggedEventView struct {
	Seq        int64     `json:"seq"`
	Device     string    `json:"device"`
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	Warehouse  string    `json:"warehouse"`
	Location   string    `json:"location"`
	SKU        string    `json:"sku"`
	ToLocation string    `json:"to_location,omitempty"`
	Qty        int64     `json:"qty"`
	Delta      int64     `json:"delta"`
	Channel    string    `json:"channel,omitempty"`
	TS         string    `json:"ts,omitempty"`
	DeviceSeq  int64     `json:"device_seq,omitempty"`
	Source     string    `json:"source"`
	ReceivedAt time.Time `json:"received_at"`
}

func (a *Agent) handleEvents(w http.ResponseWriter, r *http.Request) {
	since, limit, ok := seqPage(w, r)
	if !ok {
		return
	}
	events, err := a.store.Events(r.Context(), since, limit)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
		return
	}
	out := make([]LoggedEventView, len(events))
	next := since
	for i, e := range events {
		out[i] = LoggedEventView{Seq: e.Seq, Device: e.Device, ID: e.ID, Type: e.Type, Warehouse: e.Warehouse, Location: e.Location,
			SKU: e.SKU, ToLocation: e.ToLocation, Qty: e.Qty, Delta: e.Delta, Channel: e.Channel, TS: e.DeviceTS,
			DeviceSeq: e.DeviceSeq, Source: e.Source, ReceivedAt: e.ReceivedAt}
		next = e.Seq
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out, "next": next})
}

// QuarantineView is one entry of GET /v1/quarantine. The payload is text
// when it is valid UTF-8, base64 otherwise.
type QuarantineView struct {
	Seq           int64     `json:"seq"`
	Source        string    `json:"source"`
	Device        string    `json:"device"`
	EventID       string    `json:"event_id,omitempty"`
	Reason        string    `json:"reason"`
	Message       string    `json:"message"`
	Payload       *string   `json:"payload,omitempty"`
	PayloadBase64 string    `json:"payload_base64,omitempty"`
	ReceivedAt    time.Time `json:"received_at"`
}

func (a *Agent) handleQuarantine(w http.ResponseWriter, r *http.Request) {
	since, limit, ok := seqPage(w, r)
	if !ok {
		return
	}
	rows, err := a.store.Quarantine(r.Context(), since, limit)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
		return
	}
	out := make([]QuarantineView, len(rows))
	next := since
	for i, q := range rows {
		v := QuarantineView{Seq: q.Seq, Source: q.Source, Device: q.Device, EventID: q.EventID, Reason: q.Reason,
			Message: q.Message, ReceivedAt: q.ReceivedAt}
		if utf8.Valid(q.Payload) {
			s := string(q.Payload)
			v.Payload = &s
		} else {
			v.PayloadBase64 = base64.StdEncoding.EncodeToString(q.Payload)
		}
		out[i] = v
		next = q.Seq
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out, "next": next})
}

func (a *Agent) handleAlerts(w http.ResponseWriter, r *http.Request) {
	since, limit, ok := seqPage(w, r)
	if !ok {
		return
	}
	alerts, err := a.store.Alerts(r.Context(), since, limit)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
		return
	}
	out := make([]AlertView, len(alerts))
	next := since
	for i, al := range alerts {
		out[i], next = alertView(al), al.Seq
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": out, "next": next})
}

// lastSKU is the SKU of the last level, or def when there is none.
func lastSKU(skus []string, def string) string {
	if len(skus) == 0 {
		return def
	}
	return skus[len(skus)-1]
}
