package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/internal/ingest"
)

// clientAckQueue bounds the acknowledgements waiting to be written to one
// device. A device keeps at most its Receive Maximum (1,024 by default)
// publishes unacknowledged, so a full queue means it stopped reading: it is
// disconnected, and resends what was not acknowledged when it comes back.
const clientAckQueue = 2048

// maxMQTTPacket is the embedded broker's packet limit, above the payload
// limit: past it mochi drops the connection before anything can be read.
const maxMQTTPacket = 4 * ingest.MaxMQTTPayload

// embeddedBroker runs mochi-mqtt in-process and ingests in its publish path.
//
// mochi calls OnPublish on the client's read loop before it writes the
// PUBACK. Blocking there until the commit would hold a gateway with many
// publishes in flight to one fsync per message. Instead the hook hands the
// message to the ingester and returns ErrRejectPacket, so mochi neither acks
// nor forwards it; once the group commit is durable the acker writes the
// PUBACK (PUBREC for QoS 2) itself. The store answers batches in submission
// order and each client has one goroutine writing its acks, so its acks go
// out in the order its publishes arrived, and a device that stops reading
// stalls nobody but itself.
type embeddedBroker struct {
	srv      *mqtt.Server
	listener *listeners.TCP
	ingest   *ingest.Ingester
	reporter *reporter
	prefix   string
	wh       string
	logger   *slog.Logger

	self *mqtt.Client // the inline client the agent publishes as

	mu      sync.Mutex
	closing bool                    // no more ingests once set
	clients map[*mqtt.Client]*acker // live clients' ack writers
	pending sync.WaitGroup          // ingests not yet committed
	wg      sync.WaitGroup          // ack writers
	serving atomic.Bool
}

// acker writes one client's acknowledgements in order.
type acker struct {
	queue     chan ack
	done      chan struct{} // closed when the client disconnects
	unwritten atomic.Int64  // acks queued or being written
}

// ack is one answer owed to a device.
type ack struct {
	cl       *mqtt.Client
	packetID uint16
	qos      byte
	device   string
	results  []ingest.Result
	err      error
	reply    replyTo
	refusal  string // set: answer MQTT 5 "not authorized" with this text (the message was quarantined)
}

func newEmbeddedBroker(addr string, tlsCfg *tls.Config, prefix, warehouse string, ingest *ingest.Ingester, rep *reporter, auth *authHook, logger *slog.Logger) (*embeddedBroker, error) {
	b := &embeddedBroker{ingest: ingest, reporter: rep, prefix: prefix, wh: warehouse, logger: logger, clients: map[*mqtt.Client]*acker{}}
	// mochi logs every connection at info; keep its chatter to warnings,
	// without the lines our hooks say better (see mochiLog).
	mochiLogger := slog.New(mochiLog{levelFloor{Handler: logger.Handler(), min: slog.LevelWarn}}).With("component", "mqtt")
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = maxMQTTPacket
	b.srv = mqtt.New(&mqtt.Options{InlineClient: true, Logger: mochiLogger, Capabilities: caps})
	b.self = b.srv.NewClient(nil, mqtt.LocalListener, "edgestock-agent", true)
	rep.pub = b
	auth.srv = b.srv
	if err := b.srv.AddHook(auth, nil); err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	if err := b.srv.AddHook(&ingestHook{b: b, logger: logger.With("component", "mqtt")}, nil); err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	b.listener = listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr, TLSConfig: tlsCfg})
	if err := b.srv.AddListener(b.listener); err != nil {
		return nil, fmt.Errorf("embedded broker: listen on %s: %w", addr, err)
	}
	return b, nil
}

// Open starts serving.
func (b *embeddedBroker) Open() error {
	if err := b.srv.Serve(); err != nil {
		return fmt.Errorf("embedded broker: %w", err)
	}
	b.serving.Store(true)
	b.Publish(outbound{Topic: statusTopic(b.prefix, b.wh), Payload: statusPayload("online"), QoS: 1, Retain: true})
	return nil
}

// Addr is the address the broker listens on.
func (b *embeddedBroker) Addr() string { return b.listener.Address() }

// Ready reports whether the broker is serving.
func (b *embeddedBroker) Ready() error {
	if !b.serving.Load() {
		return errors.New("embedded broker not serving")
	}
	return nil
}

// Drain stops ingesting and waits until what was taken is committed and
// the devices still connected have their acks written.
func (b *embeddedBroker) Drain(ctx context.Context) {
	b.mu.Lock()
	b.closing = true
	b.mu.Unlock()
	waitGroup(ctx, &b.pending)
	for !b.acksWritten() && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
}

// acksWritten reports whether every connected client's acks are written.
// (A disconnected client's are moot: it is no longer in clients.)
func (b *embeddedBroker) acksWritten() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, a := range b.clients {
		if a.unwritten.Load() > 0 {
			return false
		}
	}
	return true
}

// Close, after Drain, disconnects every client and stops the ack writers.
// Devices whose acks were not written (Drain ran out of time) resend after
// reconnecting; dedupe makes that harmless.
func (b *embeddedBroker) Close(context.Context) error {
	b.serving.Store(false)
	// Retained for whoever subscribes to a broker started again without us.
	b.Publish(outbound{Topic: statusTopic(b.prefix, b.wh), Payload: statusPayload("offline"), QoS: 1, Retain: true})
	err := b.srv.Close()
	b.mu.Lock()
	for cl, a := range b.clients {
		close(a.done)
		delete(b.clients, cl)
	}
	b.mu.Unlock()
	b.wg.Wait()
	return err
}

// Publish sends m from the broker itself; it never blocks on subscribers
// (mochi queues per client and drops past MaximumClientWritesPending).
func (b *embeddedBroker) Publish(m outbound) {
	if err := b.PublishSync(context.Background(), m); err != nil {
		b.logger.Warn("publish failed", "topic", m.Topic, "err", err)
	}
}

// PublishSync hands m to the broker: once it returns nil, every current
// subscriber has it queued and a retained message is stored.
func (b *embeddedBroker) PublishSync(_ context.Context, m outbound) error {
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: m.QoS, Retain: m.Retain},
		TopicName:   m.Topic,
		Payload:     m.Payload,
		PacketID:    uint16(m.QoS), // mochi validates a non-zero id for QoS > 0 even from the inline client
	}
	if len(m.Correlation) > 0 {
		pk.Properties.CorrelationData = m.Correlation
	}
	return b.srv.InjectPacket(b.self, pk)
}

// ackerFor returns the client's ack writer, starting it on first use; nil
// once the broker is closing.
func (b *embeddedBroker) ackerFor(cl *mqtt.Client) *acker {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return nil
	}
	a, ok := b.clients[cl]
	if !ok {
		a = &acker{queue: make(chan ack, clientAckQueue), done: make(chan struct{})}
		b.clients[cl] = a
		b.wg.Add(1)
		go b.writeAcks(a)
	}
	b.pending.Add(1) // under mu: never after Close began waiting
	return a
}

// forget ends a disconnected client's ack writer; what it had queued is
// moot, the device resends unacknowledged publishes.
func (b *embeddedBroker) forget(cl *mqtt.Client) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a, ok := b.clients[cl]; ok {
		close(a.done)
		delete(b.clients, cl)
	}
}

func (b *embeddedBroker) writeAcks(a *acker) {
	defer b.wg.Done()
	for {
		select {
		case <-a.done:
			return
		case x := <-a.queue:
			b.answer(x)
			a.unwritten.Add(-1)
		}
	}
}

func (b *embeddedBroker) answer(a ack) {
	if a.err != nil {
		// Not durable: do not ack. Closing the connection makes the device
		// resend the unacknowledged publishes when it reconnects.
		b.logger.Error("ingest failed; disconnecting device so it resends", "device", a.device, "err", a.err)
		a.cl.Stop(a.err)
		return
	}
	switch {
	case a.refusal != "" && a.cl.Properties.ProtocolVersion == 5:
		// Quarantined, and refused: no PUBREL follows a PUBREC >= 0x80.
		typ := byte(packets.Puback)
		if a.qos == 2 {
			typ = packets.Pubrec
		}
		b.writeAckCode(a.cl, typ, a.packetID, packets.ErrNotAuthorized.Code, a.refusal)
	case a.qos == 1:
		b.writeAck(a.cl, packets.Puback, a.packetID)
	case a.qos == 2:
		// processPubrel answers PUBCOMP only for ids it has in flight.
		a.cl.State.Inflight.Set(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrec}, PacketID: a.packetID, Created: time.Now().Unix()})
		atomic.AddInt64(&b.srv.Info.Inflight, 1)
		b.writeAck(a.cl, packets.Pubrec, a.packetID)
	}
	b.reporter.report(a.device, a.results, a.reply)
}

func (b *embeddedBroker) writeAck(cl *mqtt.Client, typ byte, id uint16) {
	b.writeAckCode(cl, typ, id, packets.CodeSuccess.Code, "")
}

func (b *embeddedBroker) writeAckCode(cl *mqtt.Client, typ byte, id uint16, code byte, reason string) {
	err := cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: typ}, PacketID: id, ReasonCode: code,
		Properties: packets.Properties{ReasonString: reason}})
	if err != nil && !errors.Is(err, mqtt.ErrConnectionClosed) {
		b.logger.Warn("write ack failed", "client", cl.ID, "err", err)
	}
}

// ingestHook feeds device publishes to the ingester.
type ingestHook struct {
	mqtt.HookBase
	b      *embeddedBroker
	logger *slog.Logger
}

func (h *ingestHook) ID() string { return "edgestock-ingest" }

func (h *ingestHook) Provides(b byte) bool {
	return b == mqtt.OnPublish || b == mqtt.OnDisconnect || b == mqtt.OnPacketEncode
}

// OnPacketEncode tells MQTT 5 clients the broker's packet limit in the
// CONNACK (mochi enforces it but does not say so), so a device's own client
// refuses a larger publish and says why, instead of being disconnected.
func (h *ingestHook) OnPacketEncode(_ *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Connack && pk.ReasonCode < packets.ErrUnspecifiedError.Code {
		pk.Properties.MaximumPacketSize = maxMQTTPacket
	}
	return pk
}

// OnDisconnect ends the client's ack writer. A packet over the broker's
// limit ends the connection before it is read; only here is it known.
func (h *ingestHook) OnDisconnect(cl *mqtt.Client, err error, _ bool) {
	h.b.forget(cl)
	if errors.Is(err, packets.ErrPacketTooLarge) {
		h.logger.Warn("mqtt packet over the broker's limit; client disconnected (its publish was not read, so not quarantined)",
			"client", cl.ID, "device", string(cl.Properties.Username), "limit_bytes", maxMQTTPacket,
			"payload_limit_bytes", ingest.MaxMQTTPayload)
	}
}

// OnPublish runs on the client's read loop: it decodes and queues, and never
// waits for the commit.
func (h *ingestHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	b := h.b
	if cl.Net.Inline {
		return pk, nil
	}
	t, ok := parseDeviceTopic(b.prefix, pk.TopicName)
	ours := ok && t.Warehouse == b.wh && b.ingest.HandlesTopic(t.Kind)
	retained := pk.FixedHeader.Retain && isDeviceTopic(b.prefix, pk.TopicName)
	switch {
	case retained && !ours:
		refusePublish(h.logger, cl, pk, deviceOf(cl, t), ingest.ErrRetainedDeviceTopic.Error())
		return pk, packets.ErrRejectPacket
	case !ours:
		return pk, nil // an ordinary broker publish
	}
	msg := drivers.Message{
		Source: "mqtt", Warehouse: t.Warehouse, Device: t.Device, DeviceFixed: true, Subtopic: t.Sub,
		Payload: pk.Payload, ReceivedAt: now(),
	}
	if len(pk.Properties.User) > 0 {
		msg.Properties = make(map[string]string, len(pk.Properties.User))
		for _, p := range pk.Properties.User {
			msg.Properties[p.Key] = p.Val
		}
	}
	writer := b.ackerFor(cl)
	if writer == nil {
		return pk, packets.ErrRejectPacket // shutting down: not taken, not acked; the device resends
	}
	a := ack{cl: cl, packetID: pk.PacketID, qos: pk.FixedHeader.Qos, device: t.Device,
		reply: replyTo{ResponseTopic: pk.Properties.ResponseTopic, Correlation: pk.Properties.CorrelationData}}
	submit := func(done func([]ingest.Result, error)) { b.ingest.Ingest(t.Kind, msg, done) }
	if retained {
		// Quarantined like any refused input, with a result to the device;
		// acknowledged, so it is not sent again.
		a.refusal = ingest.ErrRetainedDeviceTopic.Error()
		h.logger.Warn("mqtt publish refused", "client", cl.ID, "device", t.Device, "topic", pk.TopicName,
			"retain", true, "reason", a.refusal, "answer", "rejected and quarantined")
		submit = func(done func([]ingest.Result, error)) { b.ingest.IngestRetained(t.Kind, msg, done) }
	}
	submit(func(results []ingest.Result, err error) {
		defer b.pending.Done()
		a.results, a.err = results, err
		writer.unwritten.Add(1)
		select {
		case writer.queue <- a:
		case <-writer.done: // disconnected meanwhile
			writer.unwritten.Add(-1)
		default:
			writer.unwritten.Add(-1)
			// The device is not reading its acks; holding the commit loop for
			// it would stall every other device.
			b.logger.Warn("device not reading its acks; disconnecting it", "client", cl.ID)
			go cl.Stop(errSlowClient)
		}
	})
	return pk, packets.ErrRejectPacket
}

var errSlowClient = errors.New("client not reading its acknowledgements")

// deviceOf names the device a client acts for: its username, or with
// anonymous access the device in the topic.
func deviceOf(cl *mqtt.Client, t deviceTopic) string {
	if u := string(cl.Properties.Username); u != "" {
		return u
	}
	return t.Device
}

// mochiLog keeps mochi's warnings, minus two that only repeat what our hooks
// log in one line with client and device: its TCP listener's echo of how a
// connection ended (logged with an empty message) and the packet dump
// ("pk", kilobytes of payload) of "error processing packet".
type mochiLog struct{ levelFloor }

func (l mochiLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "" {
		return nil
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "pk" {
			out.AddAttrs(a)
		}
		return true
	})
	return l.levelFloor.Handle(ctx, out)
}

func (l mochiLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	return mochiLog{levelFloor{Handler: l.Handler.WithAttrs(attrs), min: l.min}}
}

func (l mochiLog) WithGroup(name string) slog.Handler {
	return mochiLog{levelFloor{Handler: l.Handler.WithGroup(name), min: l.min}}
}

// levelFloor drops records below min whatever the wrapped handler allows.
type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (l levelFloor) Enabled(ctx context.Context, lvl slog.Level) bool {
	return lvl >= l.min && l.Handler.Enabled(ctx, lvl)
}

func (l levelFloor) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelFloor{Handler: l.Handler.WithAttrs(attrs), min: l.min}
}

func (l levelFloor) WithGroup(name string) slog.Handler {
	return levelFloor{Handler: l.Handler.WithGroup(name), min: l.min}
}

// waitGroup waits for wg or ctx, whichever comes first.
func waitGroup(ctx context.Context, wg *sync.WaitGroup) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
