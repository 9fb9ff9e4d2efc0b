package agent

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/edgestock/edgestock/crdt"
	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/internal/httpjson"
	"github.com/edgestock/edgestock/internal/ingest"
	"github.com/edgestock/edgestock/internal/store"
)

// allotmentPrefix keeps allotment ids apart from other promises' in the
// store's promise table.
const allotmentPrefix = "allotment:"

// Allotment is what POST /v1/allotments answers: qty units of sku the
// channel may sell, moved from the warehouse's own stock (SPEC §9).
type Allotment struct {
	ID        string `json:"id"`
	Warehouse string `json:"warehouse"`
	SKU       string `json:"sku"`
	Channel   string `json:"channel"`
	Qty       int64  `json:"qty"`
}

// ChannelRights is one channel's share of a SKU (GET /v1/allotments).
type ChannelRights struct {
	Channel   string `json:"channel"`
	Allotted  int64  `json:"allotted"`  // what it may still sell
	Committed int64  `json:"committed"` // sold and not picked yet
}

// apply commits b through the group commit; false means it did not
// commit and the response is written (503 while the store fails).
func (a *Agent) apply(w http.ResponseWriter, r *http.Request, b *store.Batch) bool {
	ctx, cancel, ok := ingest.StoreWrite(w, r, a.store)
	if !ok {
		return false
	}
	defer cancel()
	if _, err := a.store.Apply(ctx, b); err != nil {
		ingest.WriteStoreError(w, err, a.store)
		return false
	}
	return true
}

func (a *Agent) handleSetSafety(w http.ResponseWriter, r *http.Request) {
	sku := r.PathValue("sku")
	var req struct {
		Qty *int64 `json:"qty"`
	}
	if err := httpjson.Decode(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "%v", err)
		return
	}
	switch {
	case !drivers.ValidID(sku):
		writeError(w, http.StatusBadRequest, "bad_sku", "sku %q must be 1-64 chars of [A-Za-z0-9._-]", sku)
		return
	case req.Qty == nil || *req.Qty < 0 || *req.Qty > drivers.MaxQty:
		writeError(w, http.StatusBadRequest, "bad_field", "qty: required, 0..%d", drivers.MaxQty)
		return
	}
	if !a.apply(w, r, &store.Batch{Safety: []store.Safety{{Warehouse: a.cfg.Warehouse, SKU: sku, Qty: *req.Qty}}}) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sku": sku, "warehouse": a.cfg.Warehouse, "safety": *req.Qty})
}

func (a *Agent) handleAllot(w http.ResponseWriter, r *http.Request) {
	var req Allotment
	if err := httpjson.Decode(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "%v", err)
		return
	}
	if req.ID == "" {
		req.ID = "a-" + randomID()
	}
	switch {
	case !validHoldID(req.ID):
		writeError(w, http.StatusBadRequest, "bad_field", "id: %q is not an allotment id: 1-%d printable characters, no '/'", req.ID, maxHoldIDLen)
		return
	case req.Warehouse != "" && req.Warehouse != a.cfg.Warehouse:
		writeError(w, http.StatusBadRequest, "bad_field", "warehouse: this agent runs warehouse %s, not %s", a.cfg.Warehouse, req.Warehouse)
		return
	case !drivers.ValidID(req.SKU):
		writeError(w, http.StatusBadRequest, "bad_field", "sku: must be 1-64 chars of [A-Za-z0-9._-]")
		return
	case !drivers.ValidChannel(req.Channel):
		writeError(w, http.StatusBadRequest, "bad_field", "channel: must be 1-64 chars of [A-Za-z0-9._-], not %q", store.LocalHolder)
		return
	case req.Qty < 1 || req.Qty > drivers.MaxQty:
		writeError(w, http.StatusBadRequest, "bad_field", "qty: must be 1..%d", drivers.MaxQty)
		return
	}
	req.Warehouse = a.cfg.Warehouse
	body, _ := json.Marshal(req) // a struct of strings and ints always marshals
	hash := sha256.Sum256(fmt.Appendf(nil, "%q|%q|%d", req.SKU, req.Channel, req.Qty))
	p := &store.Promise{ID: allotmentPrefix + req.ID, BodyHash: hash[:16], Body: body, Ops: []store.EscrowOp{{
		Warehouse: a.cfg.Warehouse, SKU: req.SKU, Kind: crdt.Move, Holder: store.LocalHolder, To: req.Channel, Qty: uint64(req.Qty)}}}
	if !a.apply(w, r, &store.Batch{Promises: []*store.Promise{p}}) {
		return
	}
	switch p.Result.Status {
	case store.PromiseOK:
		httpjson.Raw(w, http.StatusCreated, body)
	case store.PromiseExisted:
		httpjson.Raw(w, http.StatusOK, p.Result.Body)
	case store.PromiseIDReused:
		writeError(w, http.StatusConflict, "id_reused", "allotment %q exists with another body", req.ID)
	case store.PromiseInsufficient:
		writeJSON(w, http.StatusConflict, map[string]any{
			"error": map[string]string{"code": "insufficient_stock", "message": fmt.Sprintf("%d of %s requested for %s, %d available",
				req.Qty, req.SKU, req.Channel, p.Result.Rights)},
			"available": p.Result.Rights,
		})
	default:
		writeError(w, http.StatusInternalServerError, "internal", "unexpected promise status %s", p.Result.Status)
	}
}

func (a *Agent) handleAllotments(w http.ResponseWriter, r *http.Request) {
	sku := r.URL.Query().Get("sku")
	if !drivers.ValidID(sku) {
		writeError(w, http.StatusBadRequest, "bad_query", "sku: required, 1-64 chars of [A-Za-z0-9._-]")
		return
	}
	rights, err := a.store.RightsOf(r.Context(), a.cfg.Warehouse, []string{sku})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
		return
	}
	e := rights[sku]
	channels := []ChannelRights{}
	for _, h := range e.Holders() {
		if h != store.LocalHolder {
			channels = append(channels, ChannelRights{Channel: h, Allotted: e.Rights(h), Committed: e.Committed(h)})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sku": sku, "warehouse": a.cfg.Warehouse, "channels": channels})
}
