package sync

import (
	"fmt"
	"strconv"

	"github.com/edgestock/edgestock/crdt"
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

// FormatCursor renders an agent cursor; cursors are opaque to the hub.
func FormatCursor(version int64) string { return strconv.FormatInt(version, 10) }

// ParseCursor reads a cursor made by FormatCursor ("" is the start).
func ParseCursor(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("cursor %q: not a cursor this agent made", s)
	}
	return v, nil
}
