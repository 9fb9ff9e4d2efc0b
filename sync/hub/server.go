package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	stdsync "sync"
	"sync/atomic"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/agent/store"
	"github.com/edgestock/edgestock/agent/store/pgstore"
	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/internal/tlsconf"
)

// Config configures a hub process.
type Config struct {
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
}

// backend is everything the server needs from a store.
type backend interface {
	Store
	Reader
	Submit(b *store.Batch, done func([]store.Outcome, error))
	ReplicaID() string
	Close() error
}

var (
	_ backend = (*store.DB)(nil)
	_ backend = (*pgstore.DB)(nil)
)

// Server is a hub process: store, sync loops and HTTP API.
type Server struct {
	cfg    Config
	logger *slog.Logger
	store  backend
	hub    *Hub
	srv    *http.Server
	ln     net.Listener
	wg     stdsync.WaitGroup
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
	if s.cfg.Store != "" { // a PostgreSQL URL (Validate maps "sqlite" to "")
		s.store, err = pgstore.Open(ctx, s.cfg.Store, changed, s.logger.With("component", "store"))
	} else {
		s.store, err = store.Open(ctx, s.cfg.DataDir, store.Options{Warehouse: storeWarehouse, Logger: s.logger.With("component", "store"),
			Notify: func(store.Committed) { changed() }})
	}
	if err != nil {
		return err
	}
	agentTLS, err := tlsconf.Client(s.cfg.AgentCA, "", "")
	if err != nil {
		return fmt.Errorf("agent-ca: %w", err)
	}
	s.hub = New(s.store, s.cfg.Agents, s.cfg.Timing, s.logger.With("component", "sync"))
	s.hub.setTLS(agentTLS)
	hub.Store(s.hub)
	api := &API{Hub: s.hub, Store: s.store, Ingest: func(wh string) (*agent.Ingester, error) {
		return agent.NewIngester(s.store, wh, drivers.Env{Logger: s.logger})
	}}
	// The certificate first: a bad one then leaves no listener open.
	if s.srv, err = tlsconf.HTTPServer(s.cfg.TLSCert, s.cfg.TLSKey, api.Routes()); err != nil {
		return fmt.Errorf("tls-cert/tls-key: %w", err)
	}
	if s.ln, err = net.Listen("tcp", s.cfg.HTTP); err != nil {
		return fmt.Errorf("hub http %s: %w", s.cfg.HTTP, err)
	}
	s.wg.Go(func() {
		if err := tlsconf.Serve(s.srv, s.ln); err != nil {
			s.logger.Error("hub http server stopped", "err", err)
		}
	})
	s.hub.Open()
	s.logger.Info("hub started", "replica", s.store.ReplicaID(), "http", s.HTTPAddr(), "agents", len(s.cfg.Agents))
	return nil
}

// HTTPAddr is the address the API listens on.
func (s *Server) HTTPAddr() string { return s.ln.Addr().String() }

// Close stops the API and the loops and closes the store.
func (s *Server) Close(ctx context.Context) error {
	var errs []error
	if s.srv != nil {
		errs = append(errs, s.srv.Shutdown(ctx))
	}
	s.wg.Wait()
	if s.hub != nil {
		s.hub.Close()
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	return errors.Join(errs...)
}
