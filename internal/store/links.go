package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// Hub alert kinds (SPEC §10): an agent's link went down or came back, as
// the hub saw it.
const (
	AlertWarehouseOffline = "warehouse_offline"
	AlertWarehouseOnline  = "warehouse_online"
)

// LinkState is the hub's view of one agent's link. Applied, it is
// compared with the last state stored for the warehouse: a change raises
// warehouse_offline or warehouse_online in the alert outbox, once, in the
// same transaction, so several hub processes on one database that see
// the same change record it once.
type LinkState struct {
	Warehouse string
	Online    bool
	// Holder names the hub process that judges an agent which dials the
	// hub: it alone holds the agent's uplink, so another process that
	// sees the agent offline is not heard while the holder says online.
	// "" for an agent the hub dials (every process sees it alike).
	Holder string
}

// Decide returns the value to store after prev ("state" or
// "state@holder"; "" when none was stored) and the alert the change
// raises, if any. A first contact is no news; a warehouse never reached
// is.
func (l LinkState) Decide(prev string) (value, alert string) {
	pstate, pholder, _ := strings.Cut(prev, "@")
	state := "offline"
	if l.Online {
		state = "online"
	}
	value = state
	if l.Holder != "" {
		value += "@" + l.Holder
	}
	switch {
	case l.Online && pstate != "offline":
		return value, "" // online still (maybe held by another process now), or a first contact
	case l.Online:
		return value, AlertWarehouseOnline
	case pstate == "offline":
		return prev, ""
	case pstate == "online" && pholder != "" && pholder != l.Holder:
		return prev, "" // another process holds its uplink: not ours to judge
	}
	return value, AlertWarehouseOffline
}

// linkKey is the meta key of a warehouse's last link state.
func linkKey(warehouse string) string { return "link:" + warehouse }

func (db *DB) applyLinks(ctx context.Context, s *boundStmts, st *txState, links []LinkState, now time.Time) error {
	for _, l := range links {
		var prev string
		err := s.tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, linkKey(l.Warehouse)).Scan(&prev)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		value, kind := l.Decide(prev)
		if value == prev {
			continue
		}
		if _, err := s.tx.ExecContext(ctx, sqlSetMeta, linkKey(l.Warehouse), value); err != nil {
			return err
		}
		if kind == "" {
			continue
		}
		if err := s.addAlert(ctx, st, Alert{Kind: kind, Warehouse: l.Warehouse}, now); err != nil {
			return err
		}
	}
	return nil
}
