package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/internal/backoff"
	"github.com/edgestock/edgestock/internal/tlsconf"
	"github.com/edgestock/edgestock/internal/uplink"
)

// Uplink timing.
const (
	uplinkDialTimeout = 10 * time.Second
	uplinkRetryMin    = 200 * time.Millisecond
	uplinkRetryMax    = 30 * time.Second
	// uplinkSteady is how long an uplink must hold before a drop starts
	// the backoff over: a hub that takes and drops at once is not asked
	// again every 200 ms.
	uplinkSteady = 10 * time.Second
)

// uplinker keeps the agent's connection to its hub open (SPEC §11): it
// dials the hub URLs in turn, moving to the next when one cannot be
// reached, with backoff and jitter, and serves the hub's sync requests
// over the connection it holds.
type uplinker struct {
	a      *Agent
	urls   []string
	token  string
	tls    *tls.Config
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errs   distinct
}

func (a *Agent) openUplink() (*uplinker, error) {
	token, err := auth.FromFile(a.cfg.Hub.Token)
	if err != nil {
		return nil, fmt.Errorf("hub.token: %w", err)
	}
	cfg, err := tlsconf.Client(a.cfg.Hub.TLSCA, "", "")
	if err != nil {
		return nil, fmt.Errorf("hub.tls-ca: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	u := &uplinker{a: a, urls: a.cfg.Hub.URLs(), token: token, tls: cfg, cancel: cancel}
	u.wg.Go(func() { u.run(ctx) })
	return u, nil
}

// Close drops the uplink; the hub sees the agent offline.
func (u *uplinker) Close() {
	u.cancel()
	u.wg.Wait()
}

func (u *uplinker) run(ctx context.Context) {
	wait := backoff.New(uplinkRetryMin, uplinkRetryMax)
	handler := u.a.uplinkRoutes()
	for i := 0; ctx.Err() == nil; {
		hub := u.urls[i%len(u.urls)]
		dctx, cancel := context.WithTimeout(ctx, uplinkDialTimeout)
		conn, err := uplink.Dial(dctx, hub, u.a.cfg.Warehouse, u.token, u.tls)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if u.errs.changed(err) {
				u.a.logger.Warn("hub uplink: cannot connect; trying the next hub URL with backoff", "hub", hub, "err", err)
			}
			var refused *uplink.RefusedError
			if errors.As(err, &refused) && refused.Lasting() {
				wait.Exhaust() // a refused token mends only when someone acts
			}
			i++
			wait.Sleep(ctx)
			continue
		}
		u.errs.changed(nil)
		u.a.logger.Info("hub uplink connected", "hub", hub)
		start := time.Now()
		err = uplink.Serve(ctx, conn, handler)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > uplinkSteady {
			wait.Reset() // it held: a drop now is news, not a loop
		}
		u.a.logger.Warn("hub uplink lost; connecting again", "hub", hub, "err", err)
		wait.Sleep(ctx) // then the same URL first: it may only have restarted
	}
}

// uplinkRoutes are the routes the hub uses over the uplink: the sync, the
// relayed allotments and the replenishment figures. The connection is
// the agent's own, to the hub it was told to trust, so they need no token.
func (a *Agent) uplinkRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/sync/deltas", a.handleSyncDeltas)
	mux.HandleFunc("POST /v1/sync/merge", a.handleSyncMerge)
	mux.HandleFunc("GET /v1/sync/state", a.handleSyncState)
	mux.HandleFunc("POST /v1/allotments", a.handleAllot)
	mux.HandleFunc("GET /v1/replenishment", a.handleReplenishment)
	return mux
}
