package agent

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/internal/httpjson"
	"github.com/edgestock/edgestock/internal/ingest"
	"github.com/edgestock/edgestock/internal/store"
)

// Reservation limits and defaults.
const (
	defaultHoldTTL = 15 * time.Minute
	minHoldTTL     = time.Second
	maxHoldTTL     = 24 * time.Hour
	// expirySweep is how often ended holds are looked for: an expired hold
	// gives its units back within this (SPEC: within 1 s).
	expirySweep = 250 * time.Millisecond
	// holdEventPrefix+{hold id} are the ids of committed holds' sale
	// events, written as ingest.HoldsDevice: a reserved device name, so no
	// input can pre-claim the id of a hold's sale and block the commit.
	holdEventPrefix = "hold:"
	// maxHoldIDLen leaves room for holdEventPrefix in the sale's event id.
	maxHoldIDLen = drivers.MaxEventIDLen - len(holdEventPrefix)
)

// validHoldID reports whether id is a hold id: an event id (SPEC §2) of at
// most maxHoldIDLen characters without '/', since it is a path segment of
// /v1/reservations/{id}.
func validHoldID(id string) bool {
	return len(id) <= maxHoldIDLen && drivers.ValidEventID(id) && !strings.Contains(id, "/")
}

// holdID is the stored id of the reservation a request names: a local
// one, or else an order line's (stored under store.LinePrefix).
func (a *Agent) holdID(ctx context.Context, id string) (string, error) {
	if _, found, err := a.store.GetHold(ctx, id); err != nil || found || strings.HasPrefix(id, store.LinePrefix) {
		return id, err
	}
	line := store.LineHoldID(id)
	if _, found, err := a.store.GetHold(ctx, line); err != nil || found {
		return line, err
	}
	return id, nil
}

// HoldView is a reservation as the API shows it.
type HoldView struct {
	ID        string    `json:"id"`
	SKU       string    `json:"sku"`
	Warehouse string    `json:"warehouse"`
	Location  string    `json:"location"`
	Qty       int64     `json:"qty"`
	Holder    string    `json:"holder"`
	Channel   string    `json:"channel,omitempty"`
	State     string    `json:"state"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"` // none for an order line's hold
	EventID   string    `json:"event_id,omitempty"`
	EventSeq  int64     `json:"event_seq,omitempty"`
}

func holdView(h store.Hold, at time.Time) HoldView {
	h.ID = strings.TrimPrefix(h.ID, store.LinePrefix) // an order line shows as the hub named it
	state := string(h.State)
	if h.State == store.HoldActive && !at.Before(h.ExpiresAt) {
		state = string(store.HoldExpired) // about to be swept
	}
	return HoldView{ID: h.ID, SKU: h.SKU, Warehouse: h.Warehouse, Location: h.Location, Qty: h.Qty, Holder: h.Holder,
		Channel: h.Channel, State: state, CreatedAt: h.CreatedAt, ExpiresAt: h.ExpiresAt, EventID: h.EventID, EventSeq: h.EventSeq}
}

// holdRequest is the body of POST /v1/reservations.
type holdRequest struct {
	ID       string `json:"id"`
	SKU      string `json:"sku"`
	Location string `json:"location"`
	Qty      int64  `json:"qty"`
	TTL      string `json:"ttl"`
	Holder   string `json:"holder"`
	Channel  string `json:"channel"`
}

func (req *holdRequest) validate() (time.Duration, error) {
	if req.Location == "" {
		req.Location = drivers.DefaultLocation
	}
	ttl := defaultHoldTTL
	if req.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(req.TTL); err != nil {
			return 0, fmt.Errorf("ttl: %q is not a duration like 15m", req.TTL)
		}
	}
	switch {
	case req.ID != "" && !validHoldID(req.ID):
		return 0, fmt.Errorf("id: %q is not a reservation id: 1-%d printable characters, no '/'", req.ID, maxHoldIDLen)
	case strings.HasPrefix(req.ID, store.LinePrefix):
		return 0, fmt.Errorf("id: %q: ids starting with %q are the hub's order lines", req.ID, store.LinePrefix)
	case !drivers.ValidID(req.SKU):
		return 0, fmt.Errorf("sku: must be 1-64 chars of [A-Za-z0-9._-]")
	case !drivers.ValidID(req.Location):
		return 0, fmt.Errorf("location: must be 1-64 chars of [A-Za-z0-9._-]")
	case req.Qty < 1 || req.Qty > drivers.MaxQty:
		return 0, fmt.Errorf("qty: must be 1..%d", drivers.MaxQty)
	case ttl < minHoldTTL || ttl > maxHoldTTL:
		return 0, fmt.Errorf("ttl: must be between %s and %s", minHoldTTL, maxHoldTTL)
	case len(req.Holder) > 128:
		return 0, fmt.Errorf("holder: at most 128 characters")
	case req.Channel != "" && !drivers.ValidID(req.Channel):
		return 0, fmt.Errorf("channel: must be 1-64 chars of [A-Za-z0-9._-]")
	}
	return ttl, nil
}

// hash identifies the request's content for idempotent retries.
func (req *holdRequest) hash() []byte {
	h := sha256.Sum256(fmt.Appendf(nil, "%q|%q|%d|%q|%q|%q", req.SKU, req.Location, req.Qty, req.TTL, req.Holder, req.Channel))
	return h[:16]
}

// applyHold runs one reservation change through the group commit; false
// means it did not commit and the response is written.
func (a *Agent) applyHold(w http.ResponseWriter, r *http.Request, op *store.HoldOp) bool {
	op.Now = now()
	return a.apply(w, r, &store.Batch{Holds: []*store.HoldOp{op}})
}

func (a *Agent) handleCreateHold(w http.ResponseWriter, r *http.Request) {
	var req holdRequest
	if err := httpjson.Decode(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "%v", err)
		return
	}
	ttl, err := req.validate()
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_field", "%v", err)
		return
	}
	if req.ID == "" {
		req.ID = "h-" + randomID()
	}
	at := now()
	op := &store.HoldOp{Kind: store.HoldCreate, BodyHash: req.hash(), Hold: store.Hold{ID: req.ID, Warehouse: a.cfg.Warehouse,
		Location: req.Location, SKU: req.SKU, Qty: req.Qty, Holder: req.Holder, Channel: req.Channel, ExpiresAt: at.Add(ttl)}}
	if !a.applyHold(w, r, op) {
		return
	}
	res := op.Result
	switch res.Status {
	case store.HoldOK:
		writeJSON(w, http.StatusCreated, holdView(res.Hold, op.Now))
	case store.HoldExisted:
		writeJSON(w, http.StatusOK, holdView(res.Hold, op.Now))
	case store.HoldIDReused:
		writeError(w, http.StatusConflict, "id_reused", "reservation %q exists with another body", req.ID)
	case store.HoldInsufficient:
		writeJSON(w, http.StatusConflict, map[string]any{
			"error":     map[string]string{"code": "insufficient_stock", "message": fmt.Sprintf("%d of %s requested, %d available", req.Qty, req.SKU, res.Available)},
			"available": res.Available,
		})
	default:
		writeError(w, http.StatusInternalServerError, "internal", "unexpected hold status %s", res.Status)
	}
}

func (a *Agent) handleGetHold(w http.ResponseWriter, r *http.Request) {
	id, err := a.holdID(r.Context(), r.PathValue("id"))
	var h store.Hold
	var ok bool
	if err == nil {
		h, ok, err = a.store.GetHold(r.Context(), id)
	}
	switch {
	case err != nil:
		writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
	case !ok:
		writeError(w, http.StatusNotFound, "not_found", "no reservation %q", r.PathValue("id"))
	default:
		writeJSON(w, http.StatusOK, holdView(h, now()))
	}
}

// holdChange handles renew, commit and release: they differ in the op and
// what a hold that has ended means for them.
func (a *Agent) holdChange(w http.ResponseWriter, r *http.Request, op *store.HoldOp) {
	id, err := a.holdID(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
		return
	}
	op.Hold.ID = id
	if !a.applyHold(w, r, op) {
		return
	}
	res := op.Result
	switch res.Status {
	case store.HoldOK:
		writeJSON(w, http.StatusOK, holdView(res.Hold, op.Now))
	case store.HoldNotFound:
		writeError(w, http.StatusNotFound, "not_found", "no reservation %q", op.Hold.ID)
	case store.HoldNotActive:
		h := res.Hold
		code := "hold_" + string(h.State)
		msg := fmt.Sprintf("reservation %s is %s", h.ID, h.State)
		if h.State == store.HoldExpired {
			msg = fmt.Sprintf("reservation %s expired at %s: its units are back in stock; create a new reservation", h.ID, h.ExpiresAt.Format(time.RFC3339Nano))
		}
		writeError(w, http.StatusConflict, code, "%s", msg)
	case store.HoldEventExists:
		writeError(w, http.StatusConflict, "event_exists", "event id %q of device %s is already in the event log: commit with another event_id",
			op.EventID, op.EventDevice)
	default:
		writeError(w, http.StatusInternalServerError, "internal", "unexpected hold status %s", res.Status)
	}
}

func (a *Agent) handleRenewHold(w http.ResponseWriter, r *http.Request) {
	var body struct {
		TTL string `json:"ttl"`
	}
	if err := httpjson.Decode(w, r, &body); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "%v", err)
		return
	}
	req := holdRequest{SKU: "x", Qty: 1, TTL: body.TTL}
	ttl, err := req.validate()
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_field", "%v", err)
		return
	}
	a.holdChange(w, r, &store.HoldOp{Kind: store.HoldRenew, Hold: store.Hold{ExpiresAt: now().Add(ttl)}})
}

func (a *Agent) handleCommitHold(w http.ResponseWriter, r *http.Request) {
	var body struct {
		EventID string `json:"event_id"`
	}
	if err := httpjson.Decode(w, r, &body); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "%v", err)
		return
	}
	if body.EventID != "" && !drivers.ValidEventID(body.EventID) {
		writeError(w, http.StatusBadRequest, "bad_field", "event_id: %q is not an event id: 1-%d printable characters", body.EventID, drivers.MaxEventIDLen)
		return
	}
	id := r.PathValue("id")
	if !validHoldID(id) {
		writeError(w, http.StatusNotFound, "not_found", "no reservation %q: reservation ids are 1-%d printable characters, no '/'", id, maxHoldIDLen)
		return
	}
	if body.EventID == "" { // named here, so a conflict can say which id
		body.EventID = holdEventPrefix + id
	}
	a.holdChange(w, r, &store.HoldOp{Kind: store.HoldCommit, EventDevice: ingest.HoldsDevice, EventID: body.EventID, Source: "http"})
}

func (a *Agent) handleReleaseHold(w http.ResponseWriter, r *http.Request) {
	a.holdChange(w, r, &store.HoldOp{Kind: store.HoldRelease})
}

// startExpirer ends holds past their expiry so their units return to
// stock. It writes only when a hold is due, and logs each distinct error once.
func (a *Agent) startExpirer() *loop {
	var errs distinct
	return every(expirySweep, func(ctx context.Context) {
		next, ok, err := a.store.NextExpiry(ctx)
		if err == nil && ok && !now().Before(next) {
			op := &store.HoldOp{Kind: store.HoldExpire, Now: now()}
			_, err = a.store.Apply(ctx, &store.Batch{Holds: []*store.HoldOp{op}})
		}
		if ctx.Err() != nil {
			return // stopped mid-run: not a failure
		}
		if errs.changed(err) {
			a.logger.Error("expiring reservations", "err", err)
		}
	})
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
