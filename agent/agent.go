package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/internal/ingest"
	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/internal/tlsconf"
	"github.com/edgestock/edgestock/sync"
)

// broker is the MQTT side: embedded or external.
type broker interface {
	Ready() error
	Addr() string
	// Drain stops taking device messages and returns once every message
	// taken is committed and answered, or ctx ends; publishing still works.
	Drain(ctx context.Context)
	// Close, after Drain, sends what is queued for publishing and stops.
	Close(ctx context.Context) error
}

// Agent is one warehouse's edgestock agent.
type Agent struct {
	cfg    Config
	logger *slog.Logger

	dirLock  *store.DirLock // held from Open to the end of Close
	store    *store.DB
	barcodes BarcodeTable
	ingest   *ingest.Ingester
	files    *fileDropper
	expirer  *loop
	rule     *thresholds
	live     atomic.Pointer[liveStock]
	changes  *sync.Changes
	metrics  *metrics
	signer   auth.Signer
	guard    *auth.Guard
	devices  *deviceSettings
	reporter *reporter

	// Reload, when its Path is set before Open, reloads the config file
	// while running.
	Reload     Reload
	reload     reloadState
	startCfg   Config
	stopReload func()
	rate       rateWindow
	alertGen   atomic.Int64 // counts commits that added alerts (the streams' cue to read them)
	replenish  *replenisher // nil: replenishment off
	uplink     *uplinker    // nil: the hub dials the agent
	seen       activity     // devices seen since start (GET /v1/devices)
	hubSeen    atomic.Int64 // unix ms of the last sync request
	topUp      atomic.Pointer[topUp]
	// streamsDone is closed when the HTTP server shuts down: streams end.
	streamsDone chan struct{}
	hubSince    atomic.Int64 // the version the hub last pulled from
	mqttAuth    *authHook
	alerts      atomic.Pointer[alertDispatcher]
	broker      broker

	httpSrv   *http.Server
	httpLn    net.Listener
	wg        stdsync.WaitGroup
	started   time.Time
	closeOnce stdsync.Once
	closeErr  error
}

// New returns an agent for a normalised, validated cfg.
func New(cfg Config, logger *slog.Logger) *Agent {
	return &Agent{cfg: cfg, logger: logger, changes: sync.NewChanges(), streamsDone: make(chan struct{})}
}

// Open opens the store, starts the broker side and the HTTP API. On error
// everything already started is closed again.
func (a *Agent) Open(ctx context.Context) (err error) {
	a.started = time.Now()
	a.startCfg = a.cfg
	a.reload.generation = 1
	defer func() {
		if err != nil {
			_ = a.Close(context.WithoutCancel(ctx))
		}
	}()
	a.metrics = newMetrics(a)
	opts := store.Options{Warehouse: a.cfg.Warehouse, Logger: a.logger.With("component", "store"), Notify: a.onCommit, Observe: a.metrics.observeCommit,
		Quarantine: a.cfg.Quarantine.StoreLimits()}
	overrides, err := openWatched(a.cfg.Stock.ThresholdsFile, map[string]Threshold{}, parseThresholds, a.logger.With("component", "thresholds"))
	if err != nil {
		return fmt.Errorf("stock.thresholds-file: %w", err)
	}
	a.rule = &thresholds{overrides: overrides}
	a.rule.def.Store(&Threshold{Low: a.cfg.Stock.LowStockThreshold, Restock: a.cfg.Stock.LowStockThreshold + a.cfg.Stock.RestockMargin})
	if a.cfg.Alerts.Enabled {
		opts.LowStock = a.rule
	}
	if a.cfg.MQTT.URL != "" {
		// The external broker keeps up to receive-maximum messages in
		// flight whatever the commit pace, so waiting for more work under
		// load fills transactions; its acks leave on paho's 5 ms tick
		// anyway. Devices on the embedded broker wait for each commit.
		opts.CommitDelay = externalCommitDelay
	}
	// One agent per data dir: a second would write under the same replica.
	if a.dirLock, err = store.LockDir(a.cfg.DataDir); err != nil {
		return err
	}
	if a.store, err = store.Open(ctx, a.cfg.DataDir, opts); err != nil {
		return err
	}
	if a.signer, err = auth.LoadSigner(a.cfg.DataDir); err != nil {
		return err
	}
	a.guard = a.newGuard()
	if !auth.IsLoopback(a.cfg.HTTP.Listen) {
		has, err := a.store.HasTokens(ctx)
		if err != nil {
			return err
		}
		if !has {
			return fmt.Errorf("http.listen %s is not a loopback address and no token has been issued: every request would be refused. "+
				"Issue one first: edgestock token issue --name ops --scope admin --data-dir %s", a.cfg.HTTP.Listen, a.cfg.DataDir)
		}
	}
	if a.barcodes, err = OpenBarcodeTable(a.cfg.Barcodes.File, a.logger.With("component", "barcodes")); err != nil {
		return err
	}
	a.devices = newDeviceSettings(a.cfg.Devices)
	env := drivers.Env{Barcodes: a.barcodes, Devices: a.devices, Logger: a.logger}
	if a.ingest, err = ingest.NewIngester(a.store, a.cfg.Warehouse, env); err != nil {
		return err
	}
	a.ingest.Observe(func(msg drivers.Message, driver string, results []ingest.Result) {
		a.metrics.observeResults(msg.Source, driver, results)
		a.seen.observe(msg.Device, msg.Source, results, now())
	})
	a.ingest.SetLimits(a.cfg.Devices.RateLimit, a.cfg.Devices.RateBurst)
	// File drops write as their device, ids "{file}:{line}": nobody else may.
	a.ingest.ReserveDevice(a.cfg.Filedrop.Device, "file drops", "file")
	rep := &reporter{prefix: a.cfg.MQTT.TopicPrefix, warehouse: a.cfg.Warehouse, ingests: a.ingest.HandlesTopic, logger: a.logger.With("component", "mqtt")}
	devs := a.cfg.Devices
	rep.devices.Store(&devs)
	a.reporter = rep
	if a.cfg.MQTT.URL != "" {
		tlsCfg, err := tlsconf.Client(a.cfg.MQTT.TLSCA, a.cfg.MQTT.TLSCert, a.cfg.MQTT.TLSKey)
		if err != nil {
			return fmt.Errorf("mqtt.tls-*: %w", err)
		}
		b := newExternalBroker(a.cfg.MQTT, tlsCfg, a.cfg.Warehouse, a.ingest, rep, a.logger.With("component", "mqtt"))
		if err = b.Open(ctx); err != nil {
			return err
		}
		a.broker = b
	} else {
		if a.cfg.MQTT.Anonymous == "auto" {
			a.logger.Warn(`mqtt.anonymous: "auto" now means deny: devices log in with a device token; set allow (or --mqtt-anonymous allow) to accept anonymous clients`)
		}
		a.mqttAuth = newAuthHook(a, a.cfg.MQTT.Anonymous == "allow")
		a.mqttAuth.Open()
		mqttTLS, err := tlsconf.Server(a.cfg.MQTT.TLSCert, a.cfg.MQTT.TLSKey)
		if err != nil {
			return fmt.Errorf("mqtt.tls-cert/tls-key: %w", err)
		}
		b, err := newEmbeddedBroker(a.cfg.MQTT.Listen, mqttTLS, a.cfg.MQTT.TopicPrefix, a.cfg.Warehouse, a.ingest, rep, a.mqttAuth, a.logger)
		if err != nil {
			return err
		}
		a.broker = b
		if err = b.Open(); err != nil {
			return err
		}
	}
	a.startOutputs(rep.pub)
	a.expirer = a.startExpirer()
	if len(a.cfg.Channels) > 0 {
		a.topUp.Store(a.startTopUp())
	}
	if a.cfg.Replenishment.Enabled {
		if a.replenish, err = a.openReplenisher(ctx); err != nil {
			return err
		}
	}
	if len(a.cfg.Hub.URLs()) > 0 {
		if a.uplink, err = a.openUplink(); err != nil {
			return err
		}
	}
	if a.cfg.Filedrop.Dir != "" {
		if a.files, err = newFileDropper(a.cfg.Filedrop, a.cfg.Warehouse, a.ingest, a.store, a.logger.With("component", "filedrop")); err != nil {
			return err
		}
		if err = a.files.Open(); err != nil {
			return err
		}
	}
	if a.httpSrv, err = tlsconf.HTTPServer(a.cfg.HTTP.TLSCert, a.cfg.HTTP.TLSKey, a.routes()); err != nil {
		return fmt.Errorf("http.tls-cert/tls-key: %w", err)
	}
	a.httpSrv.RegisterOnShutdown(func() { close(a.streamsDone) }) // the streams end, or Shutdown waits for their clients
	if a.httpLn, err = net.Listen("tcp", a.cfg.HTTP.Listen); err != nil {
		return fmt.Errorf("http.listen %s: %w", a.cfg.HTTP.Listen, err)
	}
	a.wg.Go(func() {
		if err := tlsconf.Serve(a.httpSrv, a.httpLn); err != nil {
			a.logger.Error("http server stopped", "err", err)
		}
	})
	if a.Reload.Path != "" {
		if err = a.watchConfig(a.Reload); err != nil {
			return err
		}
	}
	a.logger.Info("agent started", "warehouse", a.cfg.Warehouse, "replica", a.store.ReplicaID(),
		"http", a.HTTPAddr(), "mqtt", a.broker.Addr(), "data_dir", a.cfg.DataDir)
	return nil
}

// startOutputs starts the live stock topics and alert delivery on pub.
func (a *Agent) startOutputs(pub publisher) {
	if a.cfg.Live.Enabled {
		l := &liveStock{prefix: a.cfg.MQTT.TopicPrefix, warehouse: a.cfg.Warehouse, views: a.stockViews, pub: pub,
			logger: a.logger.With("component", "live"), dirty: map[string]struct{}{},
			allSKUs: func(ctx context.Context, after string, limit int) ([]string, error) {
				return a.store.StockPage(ctx, "", after, limit)
			}}
		l.Open()
		a.live.Store(l)
	}
	if a.cfg.Alerts.Enabled {
		var sinks []alertSink
		if sp, ok := pub.(syncPublisher); ok {
			sinks = append(sinks, mqttAlertSink{pub: sp, topic: a.cfg.MQTT.TopicPrefix + "/" + a.cfg.Warehouse + "/alerts"})
		}
		client := &http.Client{Timeout: webhookTimeout}
		for _, u := range a.cfg.Alerts.Webhooks {
			sinks = append(sinks, webhookSink{url: u, client: client})
		}
		d := newAlertDispatcher(a.store, sinks, a.logger.With("component", "alerts"))
		d.Open()
		a.alerts.Store(d)
	}
}

// onCommit runs on the store's commit loop after each durable commit.
func (a *Agent) onCommit(c store.Committed) {
	if c.Alerts > 0 {
		a.alertGen.Add(1) // before the streams wake: they read alerts only when it moved
	}
	a.changes.Notify()
	if l := a.live.Load(); l != nil {
		l.Mark(c.SKUs)
	}
	if t := a.topUp.Load(); t != nil {
		t.mark(c.SKUs)
	}
	if d := a.alerts.Load(); d != nil && c.Alerts > 0 {
		d.Wake()
	}
}

// HTTPAddr is the address the HTTP API listens on.
func (a *Agent) HTTPAddr() string { return a.httpLn.Addr().String() }

// MQTTAddr is the embedded broker's address, or the external broker's URL.
func (a *Agent) MQTTAddr() string { return a.broker.Addr() }

// ReplicaID is the store's replica ID.
func (a *Agent) ReplicaID() string { return a.store.ReplicaID() }

// Close shuts down gracefully: stop accepting HTTP and MQTT input, commit
// what is in flight, answer it, close the store. Every step runs even when
// an earlier one fails. Calling it again returns the first result.
func (a *Agent) Close(ctx context.Context) error {
	a.closeOnce.Do(func() { a.closeErr = a.close(ctx) })
	return a.closeErr
}

func (a *Agent) close(ctx context.Context) error {
	var errs []error
	if a.httpSrv != nil { // and serving on httpLn, if that was opened
		errs = append(errs, a.httpSrv.Shutdown(ctx))
	}
	if a.stopReload != nil {
		a.stopReload()
	}
	a.wg.Wait()
	if a.files != nil {
		errs = append(errs, a.files.Close())
	}
	if a.uplink != nil {
		a.uplink.Close()
	}
	a.expirer.Stop()
	if a.replenish != nil {
		a.replenish.Close()
	}
	if t := a.topUp.Load(); t != nil {
		t.Stop()
	}
	if a.broker != nil {
		a.broker.Drain(ctx) // the last commits, before the last live levels
	}
	if l := a.live.Load(); l != nil {
		l.Close(ctx) // publishes what is pending while the broker is still up
	}
	if d := a.alerts.Load(); d != nil {
		d.Close()
	}
	if a.broker != nil {
		errs = append(errs, a.broker.Close(ctx))
	}
	if a.mqttAuth != nil {
		a.mqttAuth.Close()
	}
	if a.store != nil {
		errs = append(errs, a.store.Close())
	}
	errs = append(errs, a.dirLock.Release()) // after the store: nothing writes any more
	if a.barcodes.watchedFile != nil {
		a.barcodes.Close()
	}
	if a.rule != nil {
		a.rule.overrides.Close()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close agent: %w", err)
	}
	a.logger.Info("agent stopped")
	return nil
}
