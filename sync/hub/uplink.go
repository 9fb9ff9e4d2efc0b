package hub

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/internal/uplink"
)

// revocationCheck is how often an uplink's token is checked again: a
// revoked one is cut off within it.
const revocationCheck = 500 * time.Millisecond

// handleUplink takes an agent's uplink (SPEC §11): a hub token with the
// uplink scope, bound to the warehouse the agent says it is. The token
// makes the warehouse one of the hub's agents, with no --agent entry. The
// connection then carries the hub's sync with the agent, until it drops
// or its token is revoked.
func (a *API) handleUplink(w http.ResponseWriter, r *http.Request) {
	if a.Guard == nil {
		writeError(w, http.StatusServiceUnavailable, "no_tokens", "this hub checks no tokens, so it takes no uplink")
		return
	}
	token := auth.Bearer(r.Header.Get("Authorization"))
	if token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="edgestock"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "an uplink needs the warehouse's uplink token (edgestock token issue --role hub --scope uplink --warehouse ID)")
		return
	}
	c, err := a.Guard.Valid(r.Context(), token)
	switch {
	case auth.Refused(err):
		writeError(w, http.StatusUnauthorized, "unauthorized", "%v", err)
		return
	case err != nil: // the store cannot say: the agent tries again soon
		writeError(w, http.StatusServiceUnavailable, "store_error", "checking the uplink token: %v", err)
		return
	}
	wh := r.Header.Get(uplink.WarehouseHeader)
	switch {
	case c.Audience != auth.AudienceHub || !slices.Contains(c.Scopes, auth.ScopeUplink):
		writeError(w, http.StatusForbidden, "forbidden", "token %s is not an uplink token of this hub", c.ID)
		return
	case c.Warehouse != wh:
		writeError(w, http.StatusForbidden, "forbidden", "token %s is for warehouse %s, not %s", c.ID, c.Warehouse, wh)
		return
	}
	l := a.Hub.addUplink(wh) // a valid uplink token makes it one of the hub's agents
	if l.slot == nil {
		writeError(w, http.StatusConflict, "not_uplink", "warehouse %s is an agent this hub dials (%s): it takes no uplink", wh, l.URL)
		return
	}
	conn, err := uplink.Accept(w, r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_upgrade", "%v", err)
		return
	}
	wc := uplink.NotifyClose(conn)
	l.slot.Offer(wc)
	a.Hub.logger.Info("agent uplink connected", "warehouse", wh, "from", r.RemoteAddr)
	go a.watchUplink(l, wc, token)
}

// watchUplink cuts an uplink off once its token is no longer valid
// (revoked, expired), or when the hub stops. A store that cannot say
// (down for a moment) cuts nothing.
func (a *API) watchUplink(l *link, wc *uplink.ClosingConn, token string) {
	t := time.NewTicker(revocationCheck)
	defer t.Stop()
	for {
		select {
		case <-wc.Closed():
			return
		case <-a.stopping():
			l.slot.Drop(wc)
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), revocationCheck)
		_, err := a.Guard.Valid(ctx, token)
		cancel()
		if auth.Refused(err) {
			a.Hub.logger.Warn("agent uplink cut off: its token is no longer valid", "warehouse", l.Warehouse, "err", err)
			l.slot.Drop(wc)
			return
		}
	}
}
