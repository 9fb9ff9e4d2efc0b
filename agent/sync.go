package agent

import (
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/internal/httpjson"
	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/sync"
)

// Sync endpoint limits.
const (
	maxEntryTotal    = store.MaxTotal
	defaultDeltaPage = 1000
	maxDeltaPage     = 10_000
)

func (a *Agent) handleSyncDeltas(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	replica := a.store.ReplicaID()
	since, err := sync.ParseCursor(q.Get("since"), replica)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_cursor", "%v", err)
		return
	}
	if since > a.store.CommittedVersion() {
		// The hub pulled versions of this replica that the database never
		// reached: it is an older copy of itself. Writing on under this ID
		// would be hidden by what the hub holds; start over as a new one.
		if err := a.store.Reincarnate(r.Context(), replica, fmt.Sprintf("the hub's cursor %s is past the database's last version %d",
			q.Get("since"), a.store.CommittedVersion())); err != nil {
			writeError(w, http.StatusServiceUnavailable, "store_unavailable", "%v", err)
			return
		}
		since = 0 // a cursor of the old incarnation: everything again
	}
	a.hubSeen.Store(now().UnixMilli())
	a.hubSince.Store(since)
	limit, err := httpjson.QueryInt(r, "limit", defaultDeltaPage, 1, maxDeltaPage)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_query", "%v", err)
		return
	}
	wait, err := sync.ParseWait(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_query", "%v", err)
		return
	}
	// A hub that starts from nothing gets everything this agent holds (it
	// may be a new hub); after that, the agent's own warehouse alone: the
	// hub pushed the others, and has them.
	deltas := a.store.OwnDeltas
	if since == 0 {
		deltas = func(ctx context.Context, since int64, limit int) (store.DeltaPage, error) {
			return a.store.Deltas(ctx, since, limit, "")
		}
	}
	var page store.DeltaPage
	if err := sync.LongPoll(r.Context(), a.changes, wait, func() (bool, error) {
		page, err = deltas(r.Context(), since, int(limit))
		return len(page.Entries)+len(page.Escrow) > 0, err
	}); err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
		return
	}
	replica = a.store.ReplicaID() // new after a reincarnation
	out := sync.Deltas{Replica: replica, Entries: make([]sync.Entry, len(page.Entries)), Next: sync.FormatCursor(replica, page.Next), More: page.More}
	for i, e := range page.Entries {
		out.Entries[i] = sync.Wire(e)
	}
	for _, e := range page.Escrow {
		out.Escrow = append(out.Escrow, sync.WireEscrow(e))
	}
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		w.Header().Set("Content-Encoding", "gzip")
		gz := gzip.NewWriter(w)
		defer gz.Close()
		writeJSON(gzipResponse{ResponseWriter: w, gz: gz}, http.StatusOK, out)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// gzipResponse writes the body through gzip.
type gzipResponse struct {
	http.ResponseWriter
	gz *gzip.Writer
}

func (g gzipResponse) Write(b []byte) (int, error) { return g.gz.Write(b) }

func (a *Agent) handleSyncMerge(w http.ResponseWriter, r *http.Request) {
	a.hubSeen.Store(now().UnixMilli())
	var req sync.MergeRequest
	if err := httpjson.Decode(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "%v", err)
		return
	}
	if n := len(req.Entries) + len(req.Escrow) + len(req.Lines); n > sync.MaxMergeEntries {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "%d entries: at most %d per merge", n, sync.MaxMergeEntries)
		return
	}
	op := &store.MergeOp{Cursor: req.HubCursor, Now: now(), Entries: make([]store.Entry, len(req.Entries))}
	for i, e := range req.Entries {
		if !drivers.ValidID(e.Warehouse) || !drivers.ValidID(e.Location) || !drivers.ValidID(e.SKU) || e.Replica == "" || len(e.Replica) > sync.MaxReplicaLen {
			writeError(w, http.StatusBadRequest, "bad_field", "entries[%d]: warehouse, location and sku must be IDs and replica 1-%d chars", i, sync.MaxReplicaLen)
			return
		}
		// 2^53 keeps totals exact in JSON clients; the store also bounds
		// each SKU's sums (store.MaxTotal), answered 422 out_of_range.
		if e.P > maxEntryTotal || e.N > maxEntryTotal {
			writeError(w, http.StatusUnprocessableEntity, "out_of_range", "entries[%d] (%s/%s/%s, replica %s): p and n must be at most 2^53",
				i, e.Warehouse, e.Location, e.SKU, e.Replica)
			return
		}
		op.Entries[i] = e.Stored()
	}
	for i, e := range req.Escrow {
		x, err := e.Stored()
		if err == nil && (!drivers.ValidID(e.Warehouse) || !drivers.ValidID(e.SKU) || !drivers.ValidID(e.Holder) ||
			(e.To != "" && !drivers.ValidID(e.To)) || e.Replica == "" || len(e.Replica) > sync.MaxReplicaLen) {
			err = fmt.Errorf("warehouse, sku, holder and to must be IDs and replica 1-%d chars", sync.MaxReplicaLen)
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_field", "escrow[%d]: %v", i, err)
			return
		}
		if e.Total > maxEntryTotal {
			writeError(w, http.StatusUnprocessableEntity, "out_of_range", "escrow[%d] (%s/%s, replica %s): total must be at most 2^53", i, e.Warehouse, e.SKU, e.Replica)
			return
		}
		op.Escrow = append(op.Escrow, x)
	}
	for i, l := range req.Lines {
		if !validHoldID(l.ID) || !drivers.ValidID(l.Warehouse) || !drivers.ValidID(l.SKU) || !drivers.ValidChannel(l.Channel) ||
			l.Qty < 1 || l.Qty > drivers.MaxQty {
			writeError(w, http.StatusBadRequest, "bad_field", "lines[%d]: id must be a reservation id, warehouse, sku and channel IDs, qty 1..%d",
				i, drivers.MaxQty)
			return
		}
		op.Lines = append(op.Lines, l.Stored())
	}
	if a.apply(w, r, &store.Batch{Merges: []*store.MergeOp{op}}) {
		writeJSON(w, http.StatusOK, sync.MergeResponse{Merged: op.Changed})
	}
}

func (a *Agent) handleSyncState(w http.ResponseWriter, r *http.Request) {
	st, err := a.store.SyncState(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, sync.State{Replica: st.Replica, HubCursor: st.HubCursor, Protocol: sync.Protocol})
}

// globalOf sums one SKU's levels, one per warehouse, as of the last merge
// (zero: none yet).
func globalOf(levels []store.StockLevel, lastMerge time.Time) GlobalView {
	g := GlobalView{Warehouses: make(map[string]int64, len(levels))}
	for _, l := range levels {
		g.Warehouses[l.Warehouse] = l.OnHand
		g.OnHand = store.AddOnHand(g.OnHand, l.OnHand)
	}
	if !lastMerge.IsZero() {
		g.AsOf = &lastMerge
	}
	return g
}
