package sync

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/edgestock/edgestock/crdt"
	"github.com/edgestock/edgestock/internal/store"
)

// Entry is one replica's PN-counter entry for a stock key.
type Entry struct {
	Warehouse string `json:"warehouse"`
	Location  string `json:"location"`
	SKU       string `json:"sku"`
	Replica   string `json:"replica"`
	P         uint64 `json:"p"`
	N         uint64 `json:"n"`
}

// CRDT is the entry's counter state.
func (e Entry) CRDT() crdt.Entry { return crdt.Entry{P: e.P, N: e.N} }

// Stored is the entry as the stores keep it.
func (e Entry) Stored() store.Entry {
	return store.Entry{Warehouse: e.Warehouse, Location: e.Location, SKU: e.SKU, Replica: e.Replica, Entry: e.CRDT()}
}

// Wire is a stored entry as the protocol carries it.
func Wire(e store.Entry) Entry {
	return Entry{Warehouse: e.Warehouse, Location: e.Location, SKU: e.SKU, Replica: e.Replica, P: e.P, N: e.N}
}

// Protocol is the sync protocol version an agent states in GET
// /v1/sync/state: 2 carries escrow rights (SPEC §9), 3 order lines too;
// an agent that states none speaks 1 and refuses a merge body with rights
// in it (and one of 2, a body with lines).
const Protocol = 3

// Line is an order line placed at a warehouse (protocol 3): the hub sends
// it to that warehouse's agent, where it becomes a committed hold
// awaiting its pick; cancelled only ever goes true.
type Line struct {
	ID        string `json:"id"`
	Warehouse string `json:"warehouse"`
	SKU       string `json:"sku"`
	Channel   string `json:"channel"`
	Qty       int64  `json:"qty"`
	Cancelled bool   `json:"cancelled,omitempty"`
}

// Stored is the line as the stores keep it.
func (l Line) Stored() store.OrderLine {
	return store.OrderLine{ID: l.ID, Warehouse: l.Warehouse, SKU: l.SKU, Channel: l.Channel, Qty: l.Qty, Cancelled: l.Cancelled}
}

// WireLine is a stored line as the protocol carries it.
func WireLine(l store.OrderLine) Line {
	return Line{ID: l.ID, Warehouse: l.Warehouse, SKU: l.SKU, Channel: l.Channel, Qty: l.Qty, Cancelled: l.Cancelled}
}

// EscrowEntry is one grow-only total of a (warehouse, sku)'s rights
// (crdt.Escrow): kind supply, move (from holder to to), spend or pick.
type EscrowEntry struct {
	Warehouse string `json:"warehouse"`
	SKU       string `json:"sku"`
	Replica   string `json:"replica"`
	Kind      string `json:"kind"`
	Holder    string `json:"holder"`
	To        string `json:"to,omitempty"`
	Total     uint64 `json:"total"`
}

// escrowKinds maps the wire's kind words to crdt's kinds.
var escrowKinds = map[string]crdt.Kind{"supply": crdt.Supply, "move": crdt.Move, "spend": crdt.Spend, "pick": crdt.Pick}

// Stored is the total as the stores keep it, or an error naming what is
// not valid (the kind, or a move without its receiving holder).
func (e EscrowEntry) Stored() (store.EscrowEntry, error) {
	kind, ok := escrowKinds[e.Kind]
	switch {
	case !ok:
		return store.EscrowEntry{}, fmt.Errorf("kind %q: must be supply, move, spend or pick", e.Kind)
	case (kind == crdt.Move) != (e.To != ""), kind == crdt.Move && e.To == e.Holder:
		return store.EscrowEntry{}, fmt.Errorf("kind %s with to %q: a move names another holder, other kinds none", e.Kind, e.To)
	}
	return store.EscrowEntry{Warehouse: e.Warehouse, SKU: e.SKU, EscrowEntry: crdt.EscrowEntry{
		EscrowKey: crdt.EscrowKey{Replica: e.Replica, Kind: kind, Holder: e.Holder, To: e.To}, Total: e.Total}}, nil
}

// WireEscrow is a stored total as the protocol carries it.
func WireEscrow(e store.EscrowEntry) EscrowEntry {
	var kind string
	for w, k := range escrowKinds {
		if k == e.Kind {
			kind = w
		}
	}
	return EscrowEntry{Warehouse: e.Warehouse, SKU: e.SKU, Replica: e.Replica, Kind: kind, Holder: e.Holder, To: e.To, Total: e.Total}
}

// Deltas is the body of GET /v1/sync/deltas.
type Deltas struct {
	Replica string  `json:"replica"`
	Entries []Entry `json:"entries"`
	// Escrow are rights totals (protocol 2), in the same cursor sequence.
	Escrow []EscrowEntry `json:"escrow,omitempty"`
	Next   string        `json:"next"` // pass as ?since= to continue
	More   bool          `json:"more"` // more entries wait past Next: ask again at once
}

// MergeRequest is the body of POST /v1/sync/merge.
type MergeRequest struct {
	Entries   []Entry       `json:"entries"`
	Escrow    []EscrowEntry `json:"escrow,omitempty"` // only to an agent of protocol 2 or later
	Lines     []Line        `json:"lines,omitempty"`  // only to an agent of protocol 3, its own warehouse's
	HubCursor string        `json:"hub_cursor"`
}

// MergeResponse answers a merge.
type MergeResponse struct {
	Merged int `json:"merged"` // entries that raised a stored (p, n)
}

// State is the body of GET /v1/sync/state.
type State struct {
	Replica   string `json:"replica"`
	HubCursor string `json:"hub_cursor"`
	Protocol  int    `json:"protocol,omitempty"` // absent: 1
}

// Limits of the protocol.
const (
	// MaxMergeEntries bounds one merge request.
	MaxMergeEntries = 10_000
	// MaxWait bounds a long poll.
	MaxWait = 60
	// MaxReplicaLen bounds a replica ID ("{warehouse}.{16 hex}" fits).
	MaxReplicaLen = 128
)

// FormatCursor renders a cursor into a database's version sequence:
// "{replica}@{version}". Cursors are opaque to whoever stores them.
func FormatCursor(replica string, version int64) string {
	return replica + "@" + strconv.FormatInt(version, 10)
}

// FormatStreamCursor renders a stream's cursor: the version sequence's
// cursor and the alert outbox's seq, "{replica}@{version}~{seq}".
func FormatStreamCursor(replica string, version, seq int64) string {
	return FormatCursor(replica, version) + "~" + strconv.FormatInt(seq, 10)
}

// ParseStreamCursor reads a cursor made by FormatStreamCursor (or by
// FormatCursor: hasSeq false, seq 0) for this replica; ok false: another
// database's, or not a cursor, which a stream cannot resume. "" is the
// start.
func ParseStreamCursor(s, replica string) (version, seq int64, hasSeq, ok bool) {
	if s == "" {
		return 0, 0, false, true
	}
	v, q, hasSeq := strings.Cut(s, "~")
	if hasSeq {
		n, err := strconv.ParseInt(q, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, false, false
		}
		seq = n
	}
	if !strings.HasPrefix(v, replica+"@") {
		return 0, 0, false, false
	}
	version, err := ParseCursor(v, replica)
	return version, seq, hasSeq, err == nil
}

// ParseCursor reads a cursor made by FormatCursor for the database whose
// replica is replica. A cursor of another incarnation (a database restored
// from a backup, or replaced) counts from the start: its versions mean
// nothing here, and sending everything again is harmless. "" is the start.
func ParseCursor(s, replica string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	r, v, ok := strings.Cut(s, "@")
	n, err := strconv.ParseInt(v, 10, 64)
	if !ok || err != nil || n < 0 {
		return 0, fmt.Errorf("cursor %q: not a cursor this database made", s)
	}
	if r != replica {
		return 0, nil
	}
	return n, nil
}
