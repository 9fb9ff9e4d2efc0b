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

// Deltas is the body of GET /v1/sync/deltas.
type Deltas struct {
	Replica string  `json:"replica"`
	Entries []Entry `json:"entries"`
	Next    string  `json:"next"` // pass as ?since= to continue
	More    bool    `json:"more"` // more entries wait past Next: ask again at once
}

// MergeRequest is the body of POST /v1/sync/merge.
type MergeRequest struct {
	Entries   []Entry `json:"entries"`
	HubCursor string  `json:"hub_cursor"`
}

// MergeResponse answers a merge.
type MergeResponse struct {
	Merged int `json:"merged"` // entries that raised a stored (p, n)
}

// State is the body of GET /v1/sync/state.
type State struct {
	Replica   string `json:"replica"`
	HubCursor string `json:"hub_cursor"`
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
