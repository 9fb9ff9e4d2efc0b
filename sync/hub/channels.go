package hub

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/edgestock/edgestock/crdt"
	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/internal/httpjson"
	"github.com/edgestock/edgestock/internal/ingest"
	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/sync"
)

// Seller is what selling on channels needs of the hub's store (SPEC §9):
// promises applied within rights, and the rights to read.
type Seller interface {
	Apply(ctx context.Context, b *store.Batch) ([]store.Outcome, error)
	RightsBySKU(ctx context.Context, sku string) (map[string]crdt.Escrow, error)
	PromiseOf(ctx context.Context, id string) (hash, body []byte, found bool, err error)
	HeldBySKU(ctx context.Context, sku, channel string, now time.Time) (map[string]int64, error)
	HubHold(ctx context.Context, id string) (store.HubHold, bool, error)
	HoldChanges(ctx context.Context, channel string, since, upto int64) ([]string, int64, error)
	HoldCeiling(ctx context.Context) (int64, error)
}

var _ Seller = (*store.DB)(nil)

// Order limits.
const (
	maxOrderLines = 100
	// maxPromiseIDLen is the longest order or release id: it is stored
	// with a prefix, and is a path segment of /v1/orders/{id}.
	maxPromiseIDLen = 100
	// decideTries is how often an order is placed again when rights moved
	// between reading them and spending them (another order took them).
	decideTries = 3
)

// Promise ids in the store, by kind.
const (
	orderPrefix   = "order:"
	cancelPrefix  = "cancel:"
	releasePrefix = "release:"
)

// centralSale says why the hub's POST /v1/events takes no sale or pick.
const centralSale = "the hub books no sales against a warehouse's counter, where nothing would check them against what " +
	"was promised elsewhere: sell through POST /v1/orders (SPEC §9); central writes are for corrections"

// OrderLine is one line of an order: the hub names the warehouse when the
// request did not, and splits a line over warehouses when one's rights do
// not cover it. Each booked line has an id, "{order id}.{n}": the id of
// the committed hold it becomes at its warehouse, picked there by
// POST /v1/reservations/{id}/commit.
type OrderLine struct {
	ID        string `json:"id,omitempty"`
	SKU       string `json:"sku"`
	Qty       int64  `json:"qty"`
	Warehouse string `json:"warehouse,omitempty"`
}

// Order is what POST /v1/orders answers.
type Order struct {
	ID        string      `json:"id"`
	Channel   string      `json:"channel"`
	Lines     []OrderLine `json:"lines"`
	CreatedAt time.Time   `json:"created_at"`
	// CancelRequested is when the order was cancelled (GET only): its
	// lines not picked yet end at their warehouses with the next sync.
	CancelRequested *time.Time `json:"cancel_requested_at,omitempty"`
}

// Release is the body and answer of POST /v1/releases: unsold rights a
// channel gives back to the warehouse.
type Release struct {
	ID        string    `json:"id"`
	Warehouse string    `json:"warehouse"`
	SKU       string    `json:"sku"`
	Channel   string    `json:"channel"`
	Qty       int64     `json:"qty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// ATS is a SKU's available-to-sell on one channel (GET /v1/ats/{sku}).
type ATS struct {
	SKU        string                  `json:"sku"`
	Channel    string                  `json:"channel"`
	ATS        int64                   `json:"ats"`
	Warehouses map[string]WarehouseATS `json:"warehouses"`
}

// WarehouseATS is one warehouse's part of an ATS.
type WarehouseATS struct {
	Rights int64      `json:"rights"` // the channel's rights there
	Held   int64      `json:"held"`   // of them, held for carts at the hub
	ATS    int64      `json:"ats"`    // rights − held
	Online bool       `json:"online"`
	AsOf   *time.Time `json:"as_of"` // the hub's last exchange with the warehouse
}

func validPromiseID(id string) bool {
	return len(id) <= maxPromiseIDLen && drivers.ValidEventID(id) && !strings.Contains(id, "/")
}

// channelAllowed answers 403 and false when the request's token is bound
// to another channel than channel.
func channelAllowed(w http.ResponseWriter, r *http.Request, channel string) bool {
	if c, ok := auth.ClaimsOf(r); ok && c.Channel != "" && c.Channel != channel {
		writeError(w, http.StatusForbidden, "forbidden", "token %s is bound to channel %s, not %s", c.ID, c.Channel, channel)
		return false
	}
	return true
}

// rights reads what channel may still sell of sku per warehouse of this
// hub's agents: its rights less its active cart holds.
func (a *API) rights(ctx context.Context, sku, channel string) (map[string]int64, error) {
	out, _, err := a.rightsHeld(ctx, sku, channel)
	return out, err
}

// rightsHeld is rights, with what the holds keep per warehouse.
func (a *API) rightsHeld(ctx context.Context, sku, channel string) (free, held map[string]int64, err error) {
	all, err := a.Sell.RightsBySKU(ctx, sku)
	if err != nil {
		return nil, nil, err
	}
	if held, err = a.Sell.HeldBySKU(ctx, sku, channel, time.Now()); err != nil {
		return nil, nil, err
	}
	free = map[string]int64{}
	for wh, e := range all {
		if a.Hub.Knows(wh) {
			free[wh] = max(e.Rights(channel)-held[wh], 0)
		}
	}
	return free, held, nil
}

func (a *API) handleATS(w http.ResponseWriter, r *http.Request) {
	sku, channel := r.PathValue("sku"), r.URL.Query().Get("channel")
	switch {
	case !drivers.ValidID(sku):
		writeError(w, http.StatusBadRequest, "bad_sku", "sku %q must be 1-64 chars of [A-Za-z0-9._-]", sku)
		return
	case !drivers.ValidChannel(channel):
		writeError(w, http.StatusBadRequest, "bad_query", "channel: required, 1-64 chars of [A-Za-z0-9._-], not %q", store.LocalHolder)
		return
	case !channelAllowed(w, r, channel):
		return
	}
	out, err := a.ats(r.Context(), sku, channel, a.Hub.Warehouses())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// ats reads what channel may sell of sku, per warehouse of whs.
func (a *API) ats(ctx context.Context, sku, channel string, whs []WarehouseStatus) (ATS, error) {
	free, held, err := a.rightsHeld(ctx, sku, channel)
	if err != nil {
		return ATS{}, err
	}
	out := ATS{SKU: sku, Channel: channel, Warehouses: map[string]WarehouseATS{}}
	for _, st := range whs {
		n, ok := free[st.Warehouse]
		if !ok {
			continue
		}
		out.ATS += n
		out.Warehouses[st.Warehouse] = WarehouseATS{Rights: n + held[st.Warehouse], Held: held[st.Warehouse], ATS: n,
			Online: st.Online, AsOf: st.LastContact}
	}
	return out, nil
}

// deltasWithHolds reads a page of the hub's deltas past since, and first
// the highest cart-hold version then: holds share the version sequence
// but not the sync's pages, and every version up to that ceiling was
// committed before the page was read, so a cursor moved past the holds
// up to it skips nothing the page missed.
func (a *API) deltasWithHolds(ctx context.Context, since int64, limit int) (store.DeltaPage, int64, error) {
	ceiling, err := a.Sell.HoldCeiling(ctx)
	if err != nil {
		return store.DeltaPage{}, 0, err
	}
	page, err := a.Hub.store.Deltas(ctx, since, limit, "")
	return page, ceiling, err
}

// atsChanges is the ATS now of each SKU whose rights or holds on channel
// changed in page (read from since with deltasWithHolds), and the cursor
// after them: the holds up to the page's end, or up to the ceiling once
// it is the last page.
func (a *API) atsChanges(ctx context.Context, channel string, since int64, page store.DeltaPage, ceiling int64) ([]ATS, int64, error) {
	upto := page.Next
	if !page.More {
		upto = max(page.Next, ceiling)
	}
	skus, top, err := a.Sell.HoldChanges(ctx, channel, since, upto)
	if err != nil {
		return nil, since, err
	}
	for _, e := range page.Escrow {
		if (e.Holder == channel || e.To == channel) && !slices.Contains(skus, e.SKU) {
			skus = append(skus, e.SKU)
		}
	}
	slices.Sort(skus)
	whs := a.Hub.Warehouses()
	var out []ATS
	for _, sku := range skus {
		v, err := a.ats(ctx, sku, channel, whs)
		if err != nil {
			return nil, since, err
		}
		out = append(out, v)
	}
	return out, max(page.Next, top), nil
}

// handleATSFeed is the ATS change feed for a channel's connector: the
// SKUs whose rights or cart holds on the channel changed since the cursor
// (an allotment, an order, a release, a hold made, ended or expired),
// each with its ATS now, long-polling like /v1/feed.
func (a *API) handleATSFeed(w http.ResponseWriter, r *http.Request) {
	channel := r.URL.Query().Get("channel")
	if !drivers.ValidChannel(channel) {
		writeError(w, http.StatusBadRequest, "bad_query", "channel: required, 1-64 chars of [A-Za-z0-9._-], not %q", store.LocalHolder)
		return
	}
	if !channelAllowed(w, r, channel) {
		return
	}
	replica := a.Hub.store.CursorID()
	since, err := sync.ParseCursor(r.URL.Query().Get("since"), replica)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_cursor", "%v", err)
		return
	}
	limit, err := httpjson.QueryInt(r, "limit", 1000, 1, 10000)
	wait, err2 := sync.ParseWait(r.URL.Query())
	if err = errors.Join(err, err2); err != nil {
		writeError(w, http.StatusBadRequest, "bad_query", "%v", err)
		return
	}
	var changes []ATS
	more := false
	err = sync.LongPoll(r.Context(), a.Hub.changed, wait, func() (bool, error) {
		for { // past pages of other channels' news at once
			page, ceiling, err := a.deltasWithHolds(r.Context(), since, int(limit))
			if err != nil {
				return false, err
			}
			if changes, since, err = a.atsChanges(r.Context(), channel, since, page, ceiling); err != nil {
				return false, err
			}
			if more = page.More; len(changes) > 0 || !more {
				return len(changes) > 0, nil
			}
		}
	})
	if changes == nil {
		changes = []ATS{}
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"changes": changes, "next": sync.FormatCursor(replica, since), "more": more})
}

// orderRequest is the body of POST /v1/orders.
type orderRequest struct {
	ID      string      `json:"id"`
	Channel string      `json:"channel"`
	Lines   []OrderLine `json:"lines"`
}

func (a *API) validateOrder(req *orderRequest) error {
	switch {
	case !validPromiseID(req.ID):
		return fmt.Errorf("id: required, 1-%d printable characters, no '/'", maxPromiseIDLen)
	case !drivers.ValidChannel(req.Channel):
		return fmt.Errorf("channel: must be 1-64 chars of [A-Za-z0-9._-], not %q", store.LocalHolder)
	case len(req.Lines) == 0 || len(req.Lines) > maxOrderLines:
		return fmt.Errorf("lines: 1..%d", maxOrderLines)
	}
	for i, l := range req.Lines {
		switch {
		case !drivers.ValidID(l.SKU):
			return fmt.Errorf("lines[%d].sku: must be 1-64 chars of [A-Za-z0-9._-]", i)
		case l.Qty < 1 || l.Qty > drivers.MaxQty:
			return fmt.Errorf("lines[%d].qty: must be 1..%d", i, drivers.MaxQty)
		case l.ID != "":
			return fmt.Errorf("lines[%d].id: line ids are the hub's to give", i)
		case l.Warehouse != "" && !a.Hub.Knows(l.Warehouse):
			return fmt.Errorf("lines[%d].warehouse: %q is not one of this hub's agents (%s)", i, l.Warehouse, strings.Join(a.Hub.WarehouseIDs(), ", "))
		}
	}
	return nil
}

// shortfall is an order line the channel's rights cannot cover.
type shortfall struct {
	sku string
	ats int64 // what the channel could sell of sku when the order was placed
}

// place splits req's lines over warehouses within the channel's rights as
// read now: a line that names its warehouse takes its rights there; one
// that does not takes them where the channel holds the most first. It
// returns the placed lines and the spends, or the first line short.
func (a *API) place(ctx context.Context, req *orderRequest) ([]OrderLine, []store.EscrowOp, *shortfall, error) {
	left := map[string]map[string]int64{} // sku -> warehouse -> rights not yet taken
	placed := map[string]int64{}          // sku -> taken by earlier lines
	var lines []OrderLine
	var ops []store.EscrowOp
	for _, l := range req.Lines {
		rights, ok := left[l.SKU]
		if !ok {
			var err error
			if rights, err = a.rights(ctx, l.SKU, req.Channel); err != nil {
				return nil, nil, nil, err
			}
			left[l.SKU] = rights
		}
		whs := make([]string, 0, len(rights))
		var total int64
		for wh, n := range rights {
			if l.Warehouse == "" || wh == l.Warehouse {
				whs, total = append(whs, wh), total+n
			}
		}
		if total < l.Qty {
			ats := placed[l.SKU]
			for _, n := range rights {
				ats += n
			}
			return nil, nil, &shortfall{sku: l.SKU, ats: ats}, nil
		}
		placed[l.SKU] += l.Qty
		sort.Slice(whs, func(i, j int) bool {
			if rights[whs[i]] != rights[whs[j]] {
				return rights[whs[i]] > rights[whs[j]]
			}
			return whs[i] < whs[j]
		})
		need := l.Qty
		for _, wh := range whs {
			n := min(need, rights[wh])
			if n == 0 {
				continue
			}
			rights[wh] -= n
			need -= n
			lines = append(lines, OrderLine{SKU: l.SKU, Qty: n, Warehouse: wh})
			ops = append(ops, store.EscrowOp{Warehouse: wh, SKU: l.SKU, Kind: crdt.Spend, Holder: req.Channel, Qty: uint64(n)})
			if need == 0 {
				break
			}
		}
	}
	return lines, ops, nil, nil
}

// existing answers a promise already made under id: 200 with its stored
// answer when hash matches, 409 id_reused when not. False: none was made.
func (a *API) existing(w http.ResponseWriter, r *http.Request, id, what string, hash []byte) bool {
	stored, body, found, err := a.Sell.PromiseOf(r.Context(), id)
	switch {
	case err != nil:
		writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
		return true
	case !found:
		return false
	case string(stored) != string(hash):
		writeError(w, http.StatusConflict, "id_reused", "%s %q exists with another body", what, strings.TrimPrefix(id, what+":"))
		return true
	}
	httpjson.Raw(w, http.StatusOK, body)
	return true
}

// hashOf identifies a request's content for idempotent retries.
func hashOf(v any) []byte {
	b, _ := json.Marshal(v) // the request types always marshal
	h := sha256.Sum256(b)
	return h[:16]
}

// apply applies p, answering the store's failure itself (false).
func (a *API) apply(w http.ResponseWriter, r *http.Request, p *store.Promise) bool {
	return a.write(w, r, &store.Batch{Promises: []*store.Promise{p}})
}

// write applies b, answering the store's failure itself (false).
func (a *API) write(w http.ResponseWriter, r *http.Request, b *store.Batch) bool {
	ctx, cancel, ok := ingest.StoreWrite(w, r, a.Store)
	if !ok {
		return false
	}
	defer cancel()
	if _, err := a.Sell.Apply(ctx, b); err != nil {
		ingest.WriteStoreError(w, err, a.Store)
		return false
	}
	return true
}

// answered writes what a promise that was not applied answers; false
// means it was applied (store.PromiseOK) and nothing was written.
func answered(w http.ResponseWriter, p *store.Promise, what string) bool {
	switch p.Result.Status {
	case store.PromiseOK:
		return false
	case store.PromiseExisted:
		httpjson.Raw(w, http.StatusOK, p.Result.Body)
	case store.PromiseIDReused:
		writeError(w, http.StatusConflict, "id_reused", "%s %q exists with another body", what, p.ID)
	default:
		writeError(w, http.StatusInternalServerError, "internal", "unexpected promise status %s", p.Result.Status)
	}
	return true
}

func insufficient(w http.ResponseWriter, sku, channel string, qty, ats int64) {
	httpjson.Write(w, http.StatusConflict, map[string]any{
		"error": map[string]string{"code": "insufficient_rights",
			"message": fmt.Sprintf("%d of %s requested on %s, %d available to sell", qty, sku, channel, ats)},
		"sku": sku, "ats": ats,
	})
}

// handleOrder books an order on a channel: every line within the
// channel's rights, all lines or none, once per id (SPEC §9). It works
// while warehouses are offline: it spends exactly the rights the hub
// already holds.
func (a *API) handleOrder(w http.ResponseWriter, r *http.Request) {
	var req orderRequest
	if err := httpjson.Decode(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "%v", err)
		return
	}
	if err := a.validateOrder(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_field", "%v", err)
		return
	}
	if !channelAllowed(w, r, req.Channel) {
		return
	}
	hash := hashOf(req)
	if a.existing(w, r, orderPrefix+req.ID, "order", hash) {
		return
	}
	for range decideTries {
		lines, ops, short, err := a.place(r.Context(), &req)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
			return
		}
		if short != nil {
			qty := int64(0)
			for _, l := range req.Lines {
				if l.SKU == short.sku {
					qty += l.Qty
				}
			}
			insufficient(w, short.sku, req.Channel, qty, short.ats)
			return
		}
		order := Order{ID: req.ID, Channel: req.Channel, Lines: lines, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
		p := &store.Promise{ID: orderPrefix + req.ID, BodyHash: hash, Ops: ops}
		for i := range order.Lines {
			l := &order.Lines[i]
			l.ID = fmt.Sprintf("%s.%d", req.ID, i+1)
			p.Lines = append(p.Lines, store.OrderLine{ID: l.ID, Warehouse: l.Warehouse, SKU: l.SKU, Channel: req.Channel, Qty: l.Qty})
		}
		body, _ := json.Marshal(order) // always marshals
		p.Body = body
		if !a.apply(w, r, p) {
			return
		}
		if p.Result.Status == store.PromiseInsufficient {
			continue // another order took rights since they were read: place it again
		}
		if !answered(w, p, "order") {
			httpjson.Raw(w, http.StatusCreated, body)
		}
		return
	}
	writeError(w, http.StatusConflict, "insufficient_rights", "order %q: the channel's rights kept changing under it (%d tries); try again", req.ID, decideTries)
}

// order reads order id and, when it was cancelled, the cancellation's
// answer (nil: not cancelled), answering 404 and 500 itself (false). A
// channel-bound token sees its channel's alone.
func (a *API) order(w http.ResponseWriter, r *http.Request, id string) (o Order, cancelled []byte, ok bool) {
	_, body, found, err := a.Sell.PromiseOf(r.Context(), orderPrefix+id)
	if err == nil && found {
		err = json.Unmarshal(body, &o)
	}
	if err == nil && found {
		var isCancelled bool
		if _, cancelled, isCancelled, err = a.Sell.PromiseOf(r.Context(), cancelPrefix+id); err == nil && isCancelled {
			var c Cancellation
			err = json.Unmarshal(cancelled, &c)
			o.CancelRequested = &c.CreatedAt
		}
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", "order %q: %v", id, err)
		return o, nil, false
	}
	if c, ok := auth.ClaimsOf(r); found && ok && c.Channel != "" && c.Channel != o.Channel {
		found = false // another channel's order: not this token's to see
	}
	if !found {
		writeError(w, http.StatusNotFound, "not_found", "no order %q", id)
	}
	return o, cancelled, found
}

func (a *API) handleGetOrder(w http.ResponseWriter, r *http.Request) {
	if o, _, ok := a.order(w, r, r.PathValue("id")); ok {
		writeJSON(w, http.StatusOK, o)
	}
}

// Cancellation is what POST /v1/orders/{id}/cancel answers.
type Cancellation struct {
	ID        string      `json:"id"`
	Channel   string      `json:"channel"`
	Lines     []OrderLine `json:"lines"`
	State     string      `json:"state"` // "cancel_requested"
	CreatedAt time.Time   `json:"created_at"`
}

// handleCancel cancels an order: every line is marked cancelled and the
// sync carries that to its warehouse, where a line not picked yet ends and
// its units return to the warehouse's own stock; one already picked stays
// sold (a return is a return event). The hub cannot know which when a
// warehouse is offline: the answer says cancel_requested. Once per order.
func (a *API) handleCancel(w http.ResponseWriter, r *http.Request) {
	o, cancelled, ok := a.order(w, r, r.PathValue("id"))
	if !ok {
		return
	}
	if o.CancelRequested != nil { // once per order: the first answer
		httpjson.Raw(w, http.StatusOK, cancelled)
		return
	}
	c := Cancellation{ID: o.ID, Channel: o.Channel, Lines: o.Lines, State: "cancel_requested", CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	body, _ := json.Marshal(c) // always marshals
	p := &store.Promise{ID: cancelPrefix + o.ID, BodyHash: []byte(o.ID), Body: body}
	for _, l := range o.Lines {
		p.Lines = append(p.Lines, store.OrderLine{ID: l.ID, Warehouse: l.Warehouse, SKU: l.SKU, Channel: o.Channel, Qty: l.Qty, Cancelled: true})
	}
	if !a.apply(w, r, p) {
		return
	}
	if p.Result.Status == store.PromiseExisted { // a concurrent cancel of the same order
		body = p.Result.Body
	}
	httpjson.Raw(w, http.StatusOK, body)
}

// handleRelease gives unsold rights of a channel back to a warehouse.
func (a *API) handleRelease(w http.ResponseWriter, r *http.Request) {
	var req Release
	if err := httpjson.Decode(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "%v", err)
		return
	}
	var bad string
	switch {
	case !validPromiseID(req.ID):
		bad = fmt.Sprintf("id: required, 1-%d printable characters, no '/'", maxPromiseIDLen)
	case !a.Hub.Knows(req.Warehouse):
		bad = fmt.Sprintf("warehouse: %q is not one of this hub's agents (%s)", req.Warehouse, strings.Join(a.Hub.WarehouseIDs(), ", "))
	case !drivers.ValidID(req.SKU):
		bad = "sku: must be 1-64 chars of [A-Za-z0-9._-]"
	case !drivers.ValidChannel(req.Channel):
		bad = fmt.Sprintf("channel: must be 1-64 chars of [A-Za-z0-9._-], not %q", store.LocalHolder)
	case req.Qty < 1 || req.Qty > drivers.MaxQty:
		bad = fmt.Sprintf("qty: must be 1..%d", drivers.MaxQty)
	}
	if bad != "" {
		writeError(w, http.StatusBadRequest, "bad_field", "%s", bad)
		return
	}
	if !channelAllowed(w, r, req.Channel) {
		return
	}
	req.CreatedAt = time.Time{}
	hash := hashOf(req)
	req.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	body, _ := json.Marshal(req) // always marshals
	p := &store.Promise{ID: releasePrefix + req.ID, BodyHash: hash, Body: body, Ops: []store.EscrowOp{{
		Warehouse: req.Warehouse, SKU: req.SKU, Kind: crdt.Move, Holder: req.Channel, To: store.LocalHolder, Qty: uint64(req.Qty)}}}
	if !a.apply(w, r, p) {
		return
	}
	if p.Result.Status == store.PromiseInsufficient {
		httpjson.Write(w, http.StatusConflict, map[string]any{
			"error": map[string]string{"code": "insufficient_rights",
				"message": fmt.Sprintf("%s holds %d of %s at %s, %d to release", req.Channel, p.Result.Rights, req.SKU, req.Warehouse, req.Qty)},
			"sku": req.SKU, "ats": p.Result.Rights,
		})
		return
	}
	if !answered(w, p, "release") {
		httpjson.Raw(w, http.StatusCreated, body)
	}
}

// handleAllot relays an allotment to its warehouse's agent, which alone
// may move its own rights (SPEC §9): 503 agent_offline when it cannot be
// reached; otherwise the agent's answer as it is.
func (a *API) handleAllot(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID        string `json:"id"`
		Warehouse string `json:"warehouse"`
		SKU       string `json:"sku"`
		Channel   string `json:"channel"`
		Qty       int64  `json:"qty"`
	}
	if err := httpjson.Decode(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "%v", err)
		return
	}
	switch {
	case !a.Hub.Knows(req.Warehouse):
		writeError(w, http.StatusBadRequest, "bad_field", "warehouse: %q is not one of this hub's agents (%s)", req.Warehouse, strings.Join(a.Hub.WarehouseIDs(), ", "))
		return
	case req.ID == "":
		// A relay can time out after the agent committed: only an id makes
		// the retry the same allotment, not a second one.
		writeError(w, http.StatusBadRequest, "bad_field", "id: required through the hub, so that a retry is the same allotment")
		return
	}
	body, _ := json.Marshal(req) // always marshals
	status, answer, err := a.Hub.Relay(r.Context(), req.Warehouse, "/v1/allotments", body)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "agent_offline", "warehouse %s could not be reached, nothing was allotted; retry with the same id: %v", req.Warehouse, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(answer)
}

// Hub cart holds (SPEC §9): a cart keeps units of a channel's rights at
// one warehouse until its TTL passes on the hub's clock; committed, it
// becomes an order.
const (
	defaultHoldTTL = 15 * time.Minute
	minHoldTTL     = time.Second
	maxHoldTTL     = 24 * time.Hour
)

// Hold is a hub cart hold as the API shows it.
type Hold struct {
	ID        string    `json:"id"`
	SKU       string    `json:"sku"`
	Channel   string    `json:"channel"`
	Qty       int64     `json:"qty"`
	Warehouse string    `json:"warehouse"`
	State     string    `json:"state"` // active, committed, released, expired
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	OrderID   string    `json:"order_id,omitempty"`
}

func holdView(h store.HubHold, now time.Time) Hold {
	state := string(h.State)
	if h.Expired(now) {
		state = string(store.HoldExpired)
	}
	return Hold{ID: h.ID, SKU: h.SKU, Channel: h.Channel, Qty: h.Qty, Warehouse: h.Warehouse, State: state,
		CreatedAt: h.CreatedAt, ExpiresAt: h.ExpiresAt, OrderID: h.OrderID}
}

// holdRequest is the body of POST /v1/holds.
type holdRequest struct {
	ID        string `json:"id"`
	SKU       string `json:"sku"`
	Channel   string `json:"channel"`
	Qty       int64  `json:"qty"`
	TTL       string `json:"ttl"`
	Warehouse string `json:"warehouse"`
}

// parseTTL reads a hold's TTL (default 15m).
func parseTTL(s string) (time.Duration, error) {
	ttl := defaultHoldTTL
	if s != "" {
		var err error
		if ttl, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("ttl: %q is not a duration like 15m", s)
		}
	}
	if ttl < minHoldTTL || ttl > maxHoldTTL {
		return 0, fmt.Errorf("ttl: must be between %s and %s", minHoldTTL, maxHoldTTL)
	}
	return ttl, nil
}

// hubHold applies op, answering the store's failure itself (false).
func (a *API) hubHold(w http.ResponseWriter, r *http.Request, op *store.HubHoldOp) bool {
	return a.write(w, r, &store.Batch{HubHolds: []*store.HubHoldOp{op}})
}

func (a *API) handleCreateHold(w http.ResponseWriter, r *http.Request) {
	var req holdRequest
	if err := httpjson.Decode(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "%v", err)
		return
	}
	ttl, err := parseTTL(req.TTL)
	switch {
	case err != nil:
	case !validPromiseID(req.ID):
		err = fmt.Errorf("id: required, 1-%d printable characters, no '/'", maxPromiseIDLen)
	case !drivers.ValidID(req.SKU):
		err = fmt.Errorf("sku: must be 1-64 chars of [A-Za-z0-9._-]")
	case !drivers.ValidChannel(req.Channel):
		err = fmt.Errorf("channel: must be 1-64 chars of [A-Za-z0-9._-], not %q", store.LocalHolder)
	case req.Qty < 1 || req.Qty > drivers.MaxQty:
		err = fmt.Errorf("qty: must be 1..%d", drivers.MaxQty)
	case req.Warehouse != "" && !a.Hub.Knows(req.Warehouse):
		err = fmt.Errorf("warehouse: %q is not one of this hub's agents (%s)", req.Warehouse, strings.Join(a.Hub.WarehouseIDs(), ", "))
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_field", "%v", err)
		return
	}
	if !channelAllowed(w, r, req.Channel) {
		return
	}
	hash := hashOf(holdRequest{SKU: req.SKU, Channel: req.Channel, Qty: req.Qty, TTL: req.TTL, Warehouse: req.Warehouse})
	var ats int64
	for range decideTries {
		rights, err := a.rights(r.Context(), req.SKU, req.Channel)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
			return
		}
		wh, best := req.Warehouse, int64(-1) // where the channel can hold most
		ats = 0
		for cand, n := range rights {
			ats += n
			if req.Warehouse == "" && (n > best || n == best && cand < wh) {
				wh, best = cand, n
			}
		}
		if wh == "" {
			break // no rights anywhere
		}
		op := &store.HubHoldOp{Kind: store.HoldCreate, BodyHash: hash, Now: time.Now(), Hold: store.HubHold{ID: req.ID, Warehouse: wh,
			SKU: req.SKU, Channel: req.Channel, Qty: req.Qty, ExpiresAt: time.Now().Add(ttl)}}
		if !a.hubHold(w, r, op) {
			return
		}
		switch op.Result.Status {
		case store.HoldOK:
			writeJSON(w, http.StatusCreated, holdView(op.Result.Hold, op.Now))
			return
		case store.HoldExisted:
			writeJSON(w, http.StatusOK, holdView(op.Result.Hold, op.Now))
			return
		case store.HoldIDReused:
			writeError(w, http.StatusConflict, "id_reused", "hold %q exists with another body", req.ID)
			return
		}
		if req.Warehouse != "" || op.Result.Available == best {
			break // short where it was asked, or where the channel holds most: short everywhere
		}
	}
	insufficient(w, req.SKU, req.Channel, req.Qty, ats)
}

// hold reads hold id for the request's token (404 for another channel's).
func (a *API) hold(w http.ResponseWriter, r *http.Request) (store.HubHold, bool) {
	h, found, err := a.Sell.HubHold(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
		return h, false
	}
	if c, ok := auth.ClaimsOf(r); found && ok && c.Channel != "" && c.Channel != h.Channel {
		found = false
	}
	if !found {
		writeError(w, http.StatusNotFound, "not_found", "no hold %q", r.PathValue("id"))
	}
	return h, found
}

func (a *API) handleGetHold(w http.ResponseWriter, r *http.Request) {
	if h, ok := a.hold(w, r); ok {
		writeJSON(w, http.StatusOK, holdView(h, time.Now()))
	}
}

// holdChange applies a renew, release or commit of hold h (read by
// a.hold) and answers; commit answers the order.
func (a *API) holdChange(w http.ResponseWriter, r *http.Request, h store.HubHold, op *store.HubHoldOp) {
	op.Hold.ID, op.Now = h.ID, time.Now()
	if !a.hubHold(w, r, op) {
		return
	}
	res := op.Result
	switch {
	case res.Status == store.HoldNotActive:
		state := holdView(res.Hold, op.Now).State
		writeError(w, http.StatusConflict, "hold_"+state, "hold %s is %s", h.ID, state)
	case res.Status != store.HoldOK:
		writeError(w, http.StatusInternalServerError, "internal", "unexpected hold status %s", res.Status)
	case op.Kind != store.HoldCommit:
		writeJSON(w, http.StatusOK, holdView(res.Hold, op.Now))
	case op.Order.Result.Status == store.PromiseOK:
		httpjson.Raw(w, http.StatusCreated, op.Order.Body)
	default: // committed before, or the order's id was used: what the order says
		if op.Order.Result.Status == "" {
			_, body, _, err := a.Sell.PromiseOf(r.Context(), orderPrefix+res.Hold.OrderID)
			if err != nil {
				writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
				return
			}
			op.Order.Result = store.PromiseResult{Status: store.PromiseExisted, Body: body}
		}
		if !answered(w, op.Order, "order") {
			writeError(w, http.StatusInternalServerError, "internal", "order of hold %s not booked", h.ID)
		}
	}
}

func (a *API) handleRenewHold(w http.ResponseWriter, r *http.Request) {
	var body struct {
		TTL string `json:"ttl"`
	}
	if err := httpjson.Decode(w, r, &body); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "%v", err)
		return
	}
	ttl, err := parseTTL(body.TTL)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_field", "%v", err)
		return
	}
	if h, ok := a.hold(w, r); ok {
		a.holdChange(w, r, h, &store.HubHoldOp{Kind: store.HoldRenew, Hold: store.HubHold{ExpiresAt: time.Now().Add(ttl)}})
	}
}

func (a *API) handleReleaseHold(w http.ResponseWriter, r *http.Request) {
	if h, ok := a.hold(w, r); ok {
		a.holdChange(w, r, h, &store.HubHoldOp{Kind: store.HoldRelease})
	}
}

// handleCommitHold turns a hold into an order (id order_id, or the hold's
// own), spending the rights the hold kept.
func (a *API) handleCommitHold(w http.ResponseWriter, r *http.Request) {
	var body struct {
		OrderID string `json:"order_id"`
	}
	if err := httpjson.Decode(w, r, &body); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "%v", err)
		return
	}
	h, ok := a.hold(w, r)
	if !ok {
		return
	}
	if body.OrderID == "" {
		body.OrderID = h.ID
	}
	if !validPromiseID(body.OrderID) {
		writeError(w, http.StatusBadRequest, "bad_field", "order_id: 1-%d printable characters, no '/'", maxPromiseIDLen)
		return
	}
	line := OrderLine{ID: body.OrderID + ".1", SKU: h.SKU, Qty: h.Qty, Warehouse: h.Warehouse}
	order := Order{ID: body.OrderID, Channel: h.Channel, Lines: []OrderLine{line}, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	encoded, _ := json.Marshal(order) // always marshals
	p := &store.Promise{ID: orderPrefix + order.ID, BodyHash: hashOf(orderRequest{ID: "hold:" + h.ID}), Body: encoded,
		Ops:   []store.EscrowOp{{Warehouse: h.Warehouse, SKU: h.SKU, Kind: crdt.Spend, Holder: h.Channel, Qty: uint64(h.Qty)}},
		Lines: []store.OrderLine{{ID: line.ID, Warehouse: h.Warehouse, SKU: h.SKU, Channel: h.Channel, Qty: h.Qty}}}
	a.holdChange(w, r, h, &store.HubHoldOp{Kind: store.HoldCommit, Order: p, OrderID: order.ID})
}
