package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/internal/ingest"
	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/internal/store/pgstore"
	"github.com/edgestock/edgestock/internal/tlsconf"
)

// Config configures a hub process.
type Config struct {
	// Name is the process's name on a shared PostgreSQL (FileConfig.Name).
	Name    string
	DataDir string
	// Store is "" for SQLite in DataDir, or a postgres:// URL: several hub
	// processes may share one PostgreSQL.
	Store  string
	HTTP   string // listen address
	Agents []Agent
	Timing Timing
	// AgentCA pins the CA of agents' HTTPS certificates; TLSCert/TLSKey
	// serve the hub's API over HTTPS.
	AgentCA, TLSCert, TLSKey string
	// Auth is "auto" (tokens required unless HTTP is loopback) or
	// "required" (everywhere).
	Auth string
	// Webhooks receive the hub's changes.
	Webhooks []Webhook
	// Publish, when set, sends them to an external MQTT broker.
	Publish *Publish
}

// backend is everything the server needs from a store.
type backend interface {
	Store
	Reader
	TokenStore
	HasTokens(ctx context.Context) (bool, error)
	Seller
	MetaPrefix(ctx context.Context, prefix string) (map[string]string, error)
	Submit(b *store.Batch, done func([]store.Outcome, error))
	ReplicaID() string
	Close() error
}

var (
	_ backend = (*store.DB)(nil)
	_ backend = (*pgstore.DB)(nil)
	_ leaser  = (*pgstore.DB)(nil)
)

// Server is a hub process: store, sync loops and HTTP API.
type Server struct {
	cfg    Config
	logger *slog.Logger
	store  backend
	hub    *Hub
	guard  *auth.Guard
	lock   *store.DirLock // the SQLite hub's data dir, held from Open to Close
	srv    *http.Server
	ln     net.Listener
	wg     stdsync.WaitGroup
	// stopSweep ends the loop that expires cart holds.
	stopSweep context.CancelFunc
	webhooks  *webhooks
	publisher *publisher
}

// NewServer returns a hub for cfg.
func NewServer(cfg Config, logger *slog.Logger) *Server { return &Server{cfg: cfg, logger: logger} }

// storeWarehouse is the name the hub's database records: its own replica
// writes central events for any warehouse.
const storeWarehouse = "hub"

// Open opens the store and starts the loops and the HTTP API.
func (s *Server) Open(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			_ = s.Close(context.WithoutCancel(ctx))
		}
	}()
	// The hub is created after its store, which must tell it about commits.
	var hub atomic.Pointer[Hub]
	changed := func() {
		if h := hub.Load(); h != nil {
			h.Changed()
		}
	}
	// Assigned only once open: a nil *DB in the interface would be closed.
	if s.cfg.Store != "" { // a PostgreSQL URL (Validate maps "sqlite" to "")
		pg, err := pgstore.OpenAs(ctx, s.cfg.Store, s.cfg.Name, changed, s.logger.With("component", "store"))
		if err != nil {
			return err
		}
		s.store = pg
	} else {
		// One hub per SQLite data dir: a second would write under the same replica.
		if s.lock, err = store.LockDir(s.cfg.DataDir); err != nil {
			return err
		}
		db, err := store.Open(ctx, s.cfg.DataDir, store.Options{Warehouse: storeWarehouse, Logger: s.logger.With("component", "store"),
			Notify: func(store.Committed) { changed() }})
		if err != nil {
			return err
		}
		s.store = db
	}
	if s.guard, err = s.openGuard(ctx); err != nil {
		return err
	}
	agentTLS, err := tlsconf.Client(s.cfg.AgentCA, "", "")
	if err != nil {
		return fmt.Errorf("agent-ca: %w", err)
	}
	s.hub = New(s.store, s.cfg.Agents, s.cfg.Timing, s.logger.With("component", "sync"))
	s.hub.setTLS(agentTLS)
	s.hub.uplinks = s.uplinkWarehouses
	s.hub.discover(ctx, true)
	hub.Store(s.hub)
	api := &API{Hub: s.hub, Store: s.store, Guard: s.guard, Sell: s.store, Ingest: func(wh string) (*ingest.Ingester, error) {
		in, err := ingest.NewIngester(s.store, wh, drivers.Env{Logger: s.logger})
		if err == nil {
			in.RefuseTypes(map[string]string{"sale": centralSale, "pick": centralSale})
		}
		return in, err
	}}
	s.webhooks = newWebhooks(api, s.store, s.cfg.Webhooks, s.cfg.Timing.withDefaults().RetryMax)
	api.Webhooks = s.webhooks
	s.hub.webhookStatus = s.webhooks.statuses
	// The certificate first: a bad one then leaves no listener open.
	if s.srv, err = tlsconf.HTTPServer(s.cfg.TLSCert, s.cfg.TLSKey, api.Routes()); err != nil {
		return fmt.Errorf("tls-cert/tls-key: %w", err)
	}
	s.srv.RegisterOnShutdown(api.Shutdown)
	if s.ln, err = net.Listen("tcp", s.cfg.HTTP); err != nil {
		return fmt.Errorf("hub http %s: %w", s.cfg.HTTP, err)
	}
	s.wg.Go(func() {
		if err := tlsconf.Serve(s.srv, s.ln); err != nil {
			s.logger.Error("hub http server stopped", "err", err)
		}
	})
	s.hub.Open()
	s.sweepHolds()
	s.webhooks.Open()
	if s.cfg.Publish != nil {
		cfg := *s.cfg.Publish
		if cfg.ClientID == "" {
			cfg.ClientID = "edgestock-hub-" + s.store.ReplicaID()
		}
		s.publisher = newPublisher(api, s.store, cfg, s.cfg.Timing.withDefaults().RetryMax, s.logger.With("component", "publish"))
		if err := s.publisher.Open(); err != nil {
			return err
		}
	}
	s.logger.Info("hub started", "replica", s.store.ReplicaID(), "http", s.HTTPAddr(), "agents", len(s.hub.WarehouseIDs()))
	return nil
}

// uplinkWarehouses lists the warehouses of the hub's uplink tokens that
// are neither revoked nor expired: its agents that dial it (SPEC §11).
func (s *Server) uplinkWarehouses(ctx context.Context) ([]string, error) {
	toks, err := s.store.Tokens(ctx)
	if err != nil {
		return nil, err
	}
	var whs []string
	now := time.Now()
	for _, t := range toks {
		if t.Warehouse != "" && slices.Contains(t.Scopes, auth.ScopeUplink) && t.RevokedAt.IsZero() && now.Before(t.ExpiresAt) {
			whs = append(whs, t.Warehouse)
		}
	}
	return whs, nil
}

// openGuard loads the signing key and checks that a hub listening beyond
// loopback has a token to let anyone in: it refuses to start otherwise
// (SPEC §6), before it listens.
func (s *Server) openGuard(ctx context.Context) (*auth.Guard, error) {
	signer, err := loadSigner(ctx, s.store, s.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	g := &auth.Guard{Signer: signer, Tokens: s.store, Bound: auth.BoundToHub, Required: func() bool {
		return s.cfg.Auth == "required" || !auth.IsLoopback(s.cfg.HTTP)
	}}
	if auth.IsLoopback(s.cfg.HTTP) {
		return g, nil
	}
	has, err := s.store.HasTokens(ctx)
	if err != nil {
		return nil, err
	}
	if !has {
		where := "--data-dir " + s.cfg.DataDir
		if s.cfg.Store != "" {
			where = "--store URL"
		}
		return nil, fmt.Errorf("%w: the hub's API on %s needs a token and every request would be refused. "+
			"Issue one first: edgestock token issue --role hub --name ops --scope admin %s", auth.ErrNoToken, s.cfg.HTTP, where)
	}
	return g, nil
}

// IssueToken issues a hub token from a running hub (the CLI does the same
// on the hub's store with the hub stopped or running).
func (s *Server) IssueToken(ctx context.Context, name string, scopes []string, ttl time.Duration) (string, auth.Claims, error) {
	return s.Issue(ctx, auth.Request{Name: name, Scopes: scopes, TTL: ttl})
}

// Issue issues a hub token for req (a channel-bound one, say).
func (s *Server) Issue(ctx context.Context, req auth.Request) (string, auth.Claims, error) {
	req.Audience = auth.AudienceHub
	return auth.Issue(ctx, s.store, s.guard.Signer, req, time.Now())
}

// RevokeToken revokes a hub token; every hub process on the store refuses
// it from its next request.
func (s *Server) RevokeToken(ctx context.Context, id string) error {
	return s.store.RevokeToken(ctx, id, time.Now())
}

// loadSigner is the hub's token signing key: in the shared PostgreSQL
// database (every hub process signs and verifies alike), or a key file in
// the SQLite hub's data dir.
func loadSigner(ctx context.Context, st backend, dataDir string) (auth.Signer, error) {
	if pg, ok := st.(*pgstore.DB); ok {
		key, err := pg.SigningKey(ctx, auth.NewKey)
		if err != nil {
			return auth.Signer{}, err
		}
		return auth.NewSigner(key)
	}
	return auth.LoadSigner(dataDir)
}

// HTTPAddr is the address the API listens on.
func (s *Server) HTTPAddr() string { return s.ln.Addr().String() }

// Close stops the API and the loops and closes the store.
func (s *Server) Close(ctx context.Context) error {
	var errs []error
	if s.srv != nil {
		errs = append(errs, s.srv.Shutdown(ctx))
	}
	if s.stopSweep != nil {
		s.stopSweep()
	}
	if s.webhooks != nil {
		s.webhooks.Close()
	}
	if s.publisher != nil {
		s.publisher.Close()
	}
	s.wg.Wait()
	if s.hub != nil {
		s.hub.Close()
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Release())
	}
	return errors.Join(errs...)
}

// holdSweep is how often cart holds past their TTL are ended: each end is
// a change the ATS feed shows (their units stop counting at expiry
// whether swept or not).
const holdSweep = time.Second

// sweepHolds ends expired cart holds every holdSweep until Close.
func (s *Server) sweepHolds() {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopSweep = cancel
	s.wg.Go(func() {
		t := time.NewTicker(holdSweep)
		defer t.Stop()
		var failing bool
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			op := &store.HubHoldOp{Kind: store.HoldExpire, Now: time.Now()}
			_, err := s.store.Apply(ctx, &store.Batch{HubHolds: []*store.HubHoldOp{op}})
			if err != nil && ctx.Err() == nil && !failing {
				s.logger.Error("expiring cart holds", "err", err)
			}
			failing = err != nil
		}
	})
}
