package store

import (
	"context"
	"database/sql"
	"errors"
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
}

// linkKey is the meta key of a warehouse's last link state.
func linkKey(warehouse string) string { return "link:" + warehouse }

// Decide returns the state to store and the alert the change raises, if
// any, after prev ("" when none was stored: a first contact is no news,
// a warehouse never reached is).
func (l LinkState) Decide(prev string) (state, alert string) {
	state = "offline"
	if l.Online {
		state = "online"
	}
	switch {
	case state == prev:
		return state, ""
	case l.Online && prev == "":
		return state, ""
	case l.Online:
		return state, AlertWarehouseOnline
	}
	return state, AlertWarehouseOffline
}

func (db *DB) applyLinks(ctx context.Context, s *boundStmts, st *txState, links []LinkState, now time.Time) error {
	for _, l := range links {
		var prev string
		err := s.tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, linkKey(l.Warehouse)).Scan(&prev)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		state, kind := l.Decide(prev)
		if state == prev {
			continue
		}
		if _, err := s.tx.ExecContext(ctx, sqlSetMeta, linkKey(l.Warehouse), state); err != nil {
			return err
		}
		if kind == "" {
			continue
		}
		if _, err := s.use(s.src.addAlert).ExecContext(ctx, kind, l.Warehouse, "", "", "", 0, 0, 0, 0.0, 0.0, now.UnixMilli()); err != nil {
			return err
		}
		st.alerts.alerts++
	}
	return nil
}
