package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/internal/bufconn"
	"github.com/edgestock/edgestock/internal/ingest"
	"github.com/edgestock/edgestock/internal/store"
	"golang.org/x/net/proxy"
)

// publishQueue bounds results waiting to be published to the external
// broker. When it fills (the broker is slow or gone), further results are
// dropped and counted: they are notifications, and the quarantine and event
// log keep the facts.
const publishQueue = 4096

// publishWorkers publish results concurrently: a QoS 1 publish waits for the
// broker's PUBACK, and one at a time would cap results at one round trip each.
// Each topic goes to one worker, so its messages keep their order: a
// retained stock level never overtakes a newer one.
const publishWorkers = 4

// ackFlushInterval is how often paho sends the manual acks marked since the
// last flush. It bounds the ack delay a device sees through the broker.
const ackFlushInterval = 5 * time.Millisecond

// externalCommitDelay is the store's commit delay with an external broker
// (see store.Options.CommitDelay). Through mosquitto at about 25,000
// events/s it took transactions from 35-50 events to 61-89 (1 ms),
// 129-179 (2 ms) and 280-358 (4 ms), and the agent's CPU per event down by
// a fifth and then a further 8 %; ingest latency grows by at most the
// delay, and only under load. Longer delays would keep more messages in
// flight, and paho's ack tracker scans all of them for every message.
const externalCommitDelay = 4 * time.Millisecond

// closePublishTimeout bounds how long Close waits for queued publishes.
const closePublishTimeout = 2 * time.Second

// connectTimeout bounds dialling and the MQTT handshake.
const connectTimeout = 10 * time.Second

// dialer connects to the broker at u through a bufconn.Conn (buffered reads,
// coalesced writes): with paho's one system call per packet read and per
// ack written, the socket was most of the agent's CPU at high rates.
// WebSocket URLs keep autopaho's own dialler (nil).
func dialer(u *url.URL) func(context.Context, autopaho.ClientConfig, *url.URL) (net.Conn, error) {
	switch strings.ToLower(u.Scheme) {
	case "ws", "wss":
		return nil
	}
	return func(ctx context.Context, cfg autopaho.ClientConfig, u *url.URL) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, connectTimeout)
		defer cancel()
		conn, err := proxy.Dial(ctx, "tcp", u.Host) // honours all_proxy, as autopaho does
		if err != nil {
			return nil, err
		}
		switch strings.ToLower(u.Scheme) {
		case "ssl", "tls", "mqtts", "mqtt+ssl", "tcps":
			tc := tls.Client(conn, clientTLS(cfg.TlsCfg, u))
			if err := tc.HandshakeContext(ctx); err != nil {
				conn.Close()
				return nil, err
			}
			conn = tc
		}
		return bufconn.New(conn), nil
	}
}

// clientTLS is c (nil: system roots) naming the server of u, as tls.Dial
// would.
func clientTLS(c *tls.Config, u *url.URL) *tls.Config {
	if c == nil {
		c = &tls.Config{}
	}
	c = c.Clone()
	if c.ServerName == "" {
		c.ServerName = u.Hostname()
	}
	return c
}

// externalBroker consumes device topics from an external MQTT 5 broker with a
// persistent session and acknowledges each message only once it is durable.
type externalBroker struct {
	cfg      MQTTConfig
	tls      *tls.Config // nil: system roots for mqtts://
	wh       string
	ingest   *ingest.Ingester
	reporter *reporter
	logger   *slog.Logger

	cm        *autopaho.ConnectionManager
	connected atomic.Bool    // the connection is up and its subscriptions acknowledged
	closing   bool           // guarded by mu: no ingest starts once set
	pending   sync.WaitGroup // ingests not yet acked

	out     [publishWorkers]chan outbound // a topic's queue: hash of the topic modulo publishWorkers
	unsent  atomic.Int64                  // messages queued in out or being published
	seed    maphash.Seed
	dropped atomic.Int64
	cancel  context.CancelFunc
	stopped <-chan struct{} // closed by cancel
	wg      sync.WaitGroup

	// acks carries committed messages to the acker goroutine: paho's Ack can
	// block on a stalled socket, and the commit loop must not.
	acks chan externalAck
	// stalled is set when a message could not be committed on a healthy
	// store: paho sends acks in receive order, so nothing after it is
	// acknowledged until a reconnect redelivers it. Ready reports it.
	stalled atomic.Pointer[error]
	mu      sync.Mutex // guards closing, and pending.Add against Drain
}

// externalAck is a committed message to acknowledge and report.
type externalAck struct {
	pr      paho.PublishReceived
	device  string
	results []ingest.Result
	reply   replyTo
}

func newExternalBroker(cfg MQTTConfig, tlsCfg *tls.Config, warehouse string, ingest *ingest.Ingester, rep *reporter, logger *slog.Logger) *externalBroker {
	b := &externalBroker{cfg: cfg, tls: tlsCfg, wh: warehouse, ingest: ingest, reporter: rep, logger: logger.With("broker", cfg.URL),
		acks: make(chan externalAck, 2*int(cfg.ReceiveMaximum)), seed: maphash.MakeSeed()}
	for i := range b.out {
		b.out[i] = make(chan outbound, publishQueue/publishWorkers)
	}
	rep.pub = b
	return b
}

// subscriptions are the device topics of every driver, with and without a
// trailing subtopic (…/scan and …/scan/receive). A device topic is never
// retained, and a retained message there would be delivered again on every
// (re)subscribe: Retain Handling 2 asks for no retained messages at
// subscribe time, and Retain As Published keeps RETAIN=1 on one published
// while we are subscribed, so onPublish can refuse it.
func (b *externalBroker) subscriptions() []paho.SubscribeOptions {
	var subs []paho.SubscribeOptions
	for _, kind := range b.ingest.Topics() {
		base := b.cfg.TopicPrefix + "/" + b.wh + "/devices/+/" + kind
		for _, topic := range []string{base, base + "/+"} {
			subs = append(subs, paho.SubscribeOptions{Topic: topic, QoS: 1, RetainHandling: 2, RetainAsPublished: true})
		}
	}
	return subs
}

// Open starts connecting; it does not wait for the broker, so the agent
// keeps serving HTTP while the broker is down.
func (b *externalBroker) Open(ctx context.Context) error {
	u, err := url.Parse(b.cfg.URL)
	if err != nil {
		return fmt.Errorf("mqtt.url: %w", err)
	}
	ctx, b.cancel = context.WithCancel(context.WithoutCancel(ctx))
	b.stopped = ctx.Done()
	receiveMax := b.cfg.ReceiveMaximum
	cc := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		TlsCfg:                        b.tls,
		KeepAlive:                     b.cfg.KeepAlive,
		CleanStartOnInitialConnection: false,
		SessionExpiryInterval:         uint32(b.cfg.SessionExpiry / time.Second),
		ConnectTimeout:                connectTimeout,
		AttemptConnection:             dialer(u),
		ReconnectBackoff:              autopaho.NewExponentialBackoff(100*time.Millisecond, 30*time.Second, 2*time.Second, 2),
		ConnectUsername:               b.cfg.Username,
		ConnectPassword:               []byte(b.cfg.Password),
		ConnectPacketBuilder: func(cp *paho.Connect, _ *url.URL) (*paho.Connect, error) {
			if cp.Properties == nil {
				cp.Properties = &paho.ConnectProperties{}
			}
			cp.Properties.ReceiveMaximum = &receiveMax
			return cp, nil
		},
		// The broker publishes "offline" (retained) if the agent vanishes.
		WillMessage: &paho.WillMessage{Topic: statusTopic(b.cfg.TopicPrefix, b.wh), Payload: statusPayload("offline"), QoS: 1, Retain: true},
		OnConnectionUp: func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
			b.logger.Info("connected to broker")
			b.Publish(outbound{Topic: statusTopic(b.cfg.TopicPrefix, b.wh), Payload: statusPayload("online"), QoS: 1, Retain: true})
			// autopaho does not resubscribe; the callback must not block.
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				if _, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: b.subscriptions()}); err != nil {
					if ctx.Err() == nil {
						b.logger.Error("subscribe failed", "err", err)
					}
					return
				}
				b.connected.Store(true)
			}()
		},
		OnConnectionDown: func() bool {
			b.connected.Store(false)
			b.stalled.Store(nil) // the broker redelivers what was not acknowledged
			b.logger.Warn("connection to broker lost; reconnecting")
			return true
		},
		OnConnectError: func(err error) { b.logger.Warn("connect to broker failed", "err", err) },
		ClientConfig: paho.ClientConfig{
			ClientID:                   b.cfg.ClientID,
			EnableManualAcknowledgment: true,
			SendAcksInterval:           ackFlushInterval,
			OnPublishReceived:          []func(paho.PublishReceived) (bool, error){b.onPublish},
			OnClientError:              func(err error) { b.logger.Warn("mqtt client error", "err", err) },
		},
	}
	cm, err := autopaho.NewConnection(ctx, cc)
	if err != nil {
		return fmt.Errorf("connect %s: %w", b.cfg.URL, err)
	}
	b.cm = cm
	b.wg.Add(1)
	go b.ackLoop(ctx)
	for _, q := range b.out {
		b.wg.Add(1)
		go b.publishLoop(ctx, q)
	}
	return nil
}

// onPublish runs on paho's routing goroutine: hand off, never wait.
func (b *externalBroker) onPublish(pr paho.PublishReceived) (bool, error) {
	pk := pr.Packet
	t, ok := parseDeviceTopic(b.cfg.TopicPrefix, pk.Topic)
	if !ok || t.Warehouse != b.wh {
		_ = pr.Client.Ack(pk) // not ours (a stray subscription match): nothing to keep
		return true, nil
	}
	msg := drivers.Message{Source: "mqtt", Warehouse: t.Warehouse, Device: t.Device, DeviceFixed: true, Subtopic: t.Sub,
		Payload: pk.Payload, ReceivedAt: now()}
	var reply replyTo
	if p := pk.Properties; p != nil {
		if len(p.User) > 0 {
			msg.Properties = make(map[string]string, len(p.User))
			for _, u := range p.User {
				msg.Properties[u.Key] = u.Value
			}
		}
		reply = replyTo{ResponseTopic: p.ResponseTopic, Correlation: p.CorrelationData}
	}
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		return true, nil // not acked: the broker redelivers after restart
	}
	b.pending.Add(1)
	b.mu.Unlock()
	submit := b.ingest.Ingest
	if pk.Retain {
		// Quarantined with a result to the device, and acknowledged, so the
		// broker does not deliver it again.
		b.logger.Warn("mqtt retained device message refused", "device", t.Device, "topic", pk.Topic,
			"reason", ingest.ErrRetainedDeviceTopic.Error(), "answer", "rejected and quarantined")
		submit = b.ingest.IngestRetained
	}
	submit(t.Kind, msg, func(results []ingest.Result, err error) {
		defer b.pending.Done()
		if err != nil {
			// Not durable, so not acked: the broker redelivers it after a
			// reconnect. Until then paho holds back every later ack.
			if !errors.Is(err, store.ErrClosed) {
				b.logger.Error("ingest failed; message left unacknowledged", "device", t.Device, "err", err)
				stalled := fmt.Errorf("a message from %s could not be committed (%w); acknowledgements are held until the broker redelivers it", t.Device, err)
				b.stalled.Store(&stalled)
			}
			return
		}
		a := externalAck{pr: pr, device: t.Device, results: results, reply: reply}
		select {
		case b.acks <- a:
		default: // more in flight than Receive Maximum allows: never blocks the commit loop
			go func() {
				select {
				case b.acks <- a:
				case <-b.stopped: // closed: unacknowledged, so redelivered after restart
				}
			}()
		}
	})
	return true, nil
}

// ackLoop acknowledges committed messages (paho sends them in receive
// order) and reports results.
func (b *externalBroker) ackLoop(ctx context.Context) {
	defer b.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-b.acks:
			if err := a.pr.Client.Ack(a.pr.Packet); err != nil {
				b.logger.Debug("ack after reconnect lost; the broker redelivers and dedupe absorbs it", "err", err)
			}
			b.reporter.report(a.device, a.results, a.reply)
		}
	}
}

// Publish queues m; see publishQueue for what happens when it is full.
func (b *externalBroker) Publish(m outbound) {
	if !b.TryPublish(m) {
		if b.dropped.Add(1)%1000 == 1 {
			b.logger.Warn("results queue full; dropping device results", "dropped_total", b.dropped.Load())
		}
	}
}

// TryPublish queues m; false when its queue is full. The live stock levels
// use it to keep a level that found no room for the next flush.
func (b *externalBroker) TryPublish(m outbound) bool {
	b.unsent.Add(1) // before the worker can take it: the count never dips below the truth
	select {
	case b.out[maphash.String(b.seed, m.Topic)%publishWorkers] <- m:
		return true
	default:
		b.unsent.Add(-1)
		return false
	}
}

func (b *externalBroker) publishLoop(ctx context.Context, out <-chan outbound) {
	defer b.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-out:
			p := &paho.Publish{Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Retain: m.Retain}
			if len(m.Correlation) > 0 {
				p.Properties = &paho.PublishProperties{CorrelationData: m.Correlation}
			}
			if _, err := b.cm.Publish(ctx, p); err != nil && ctx.Err() == nil {
				b.logger.Debug("publish failed", "topic", m.Topic, "err", err)
				if m.Failed != nil {
					m.Failed()
				}
			}
			b.unsent.Add(-1)
		}
	}
}

// PublishSync publishes m and waits for the broker's PUBACK.
func (b *externalBroker) PublishSync(ctx context.Context, m outbound) error {
	p := &paho.Publish{Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Retain: m.Retain}
	_, err := b.cm.Publish(ctx, p)
	return err
}

// Ready reports whether the broker connection is up and subscribed.
func (b *externalBroker) Ready() error {
	if !b.connected.Load() {
		return errors.New("not connected and subscribed to " + b.cfg.URL)
	}
	if err := b.stalled.Load(); err != nil {
		return *err
	}
	return nil
}

// Addr is the external broker's URL.
func (b *externalBroker) Addr() string { return b.cfg.URL }

// Drain stops taking messages and waits until those in flight are
// committed and their acks flushed.
func (b *externalBroker) Drain(ctx context.Context) {
	b.mu.Lock()
	b.closing = true
	b.mu.Unlock()
	waitGroup(ctx, &b.pending)
	for len(b.acks) > 0 && ctx.Err() == nil { // the acker takes what was committed
		time.Sleep(ackFlushInterval)
	}
	// Manual acks leave on paho's flush ticker; give it a few ticks.
	select {
	case <-time.After(4 * ackFlushInterval):
	case <-ctx.Done():
	}
}

// Close, after Drain, sends what is queued for publishing, then disconnects
// (keeping the broker session, so what arrives meanwhile is queued for us).
func (b *externalBroker) Close(ctx context.Context) error {
	// What was queued (results, the last live levels) goes out first, within
	// bounds: a broker that stopped answering must not hold the shutdown.
	qctx, cancel := context.WithTimeout(ctx, closePublishTimeout)
	for b.unsent.Load() > 0 && qctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	_ = b.PublishSync(sctx, outbound{Topic: statusTopic(b.cfg.TopicPrefix, b.wh), Payload: statusPayload("offline"), QoS: 1, Retain: true})
	cancel()
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err := b.cm.Disconnect(dctx)
	b.cancel()
	b.wg.Wait()
	if errors.Is(err, autopaho.ConnectionDownError) {
		err = nil
	}
	return err
}
