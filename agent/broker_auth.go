package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/internal/ingest"
)

// revocationSweep is how often connected devices' tokens are re-checked: a
// revoked device is disconnected within this (SPEC §6: within 1 s).
const revocationSweep = 500 * time.Millisecond

// authHook authenticates devices on the embedded broker (username = device
// ID, password = a device token) and confines each to its own topics:
// publish (and leave a will) only under {prefix}/{wh}/devices/{id}/,
// subscribe only to its results, stock/# and status. With anonymous access
// (mqtt.anonymous: allow) everyone may do anything, except what no client
// may: retain a message on a device topic (see ingestHook).
type authHook struct {
	mqtt.HookBase
	a         *Agent
	anonymous bool
	srv       *mqtt.Server // set by newEmbeddedBroker: answers a refused CONNECT
	prefix    string

	mu      sync.Mutex
	tokens  map[*mqtt.Client]string // connected client -> token id
	sweeper *loop
	devices string // {prefix}/{wh}/devices/
	stock   string // {prefix}/{wh}/stock/
	status  string // {prefix}/{wh}/status
}

func newAuthHook(a *Agent, anonymous bool) *authHook {
	base := a.cfg.MQTT.TopicPrefix + "/" + a.cfg.Warehouse + "/"
	return &authHook{a: a, anonymous: anonymous, prefix: a.cfg.MQTT.TopicPrefix, tokens: map[*mqtt.Client]string{},
		devices: base + "devices/", stock: base + "stock/", status: base + "status"}
}

func (h *authHook) ID() string { return "edgestock-auth" }

func (h *authHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish, mqtt.OnDisconnect}, []byte{b})
}

// OnConnect checks the will like a publish: mochi publishes a will without
// asking the ACL, so a device could otherwise leave a retained stock level
// or status, or a result on another device's topic. A will the device may
// not publish refuses the connection (CONNACK "not authorized"; MQTT 5
// with the reason as text).
func (h *authHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	if !pk.Connect.WillFlag {
		return nil
	}
	w := cl.Properties.Will
	reason := ""
	switch {
	case w.Retain && isDeviceTopic(h.prefix, w.TopicName):
		reason = ingest.ErrRetainedDeviceTopic.Error()
	case !h.anonymous && !h.mayPublish(string(pk.Connect.Username), w.TopicName):
		reason = "a device may leave a will only under its own " + h.devices + "{device}/"
	default:
		return nil
	}
	device := string(pk.Connect.Username)
	h.a.logger.Warn("mqtt connection refused: will not allowed", "client", cl.ID, "device", device,
		"topic", w.TopicName, "retain", w.Retain, "reason", reason)
	code := packets.ErrNotAuthorized
	code.Reason = "will refused: " + reason
	if err := h.srv.SendConnack(cl, code, false, nil); err != nil {
		return fmt.Errorf("refuse will: %w", err)
	}
	return packets.ErrNotAuthorized
}

// OnConnectAuthenticate accepts a device whose password is a valid,
// unrevoked token of this warehouse issued for that device ID (or an
// admin token).
func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if h.anonymous {
		return true
	}
	device := string(pk.Connect.Username)
	c, err := h.a.guard.Valid(context.Background(), string(pk.Connect.Password))
	if err == nil {
		switch {
		case c.Warehouse != h.a.cfg.Warehouse:
			err = errDenied
		case c.Has(auth.ScopeAdmin):
		case !c.Has(auth.ScopeDevice) || c.Device == "" || c.Device != device:
			err = errDenied
		}
	}
	if err != nil {
		h.a.logger.Warn("mqtt connection refused", "username", device, "remote", cl.Net.Remote, "err", err)
		return false
	}
	h.mu.Lock()
	h.tokens[cl] = c.ID
	h.mu.Unlock()
	return true
}

var errDenied = errors.New("token not valid for this device")

// mayPublish reports whether device may publish to topic: only under its
// own {prefix}/{wh}/devices/{device}/, no wildcards.
func (h *authHook) mayPublish(device, topic string) bool {
	return device != "" && strings.HasPrefix(topic, h.devices+device+"/") && !strings.ContainsAny(topic, "+#")
}

// OnACLCheck confines a device's subscriptions (and what mochi delivers to
// it). Publishes are checked in OnPublish, which answers and logs them.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if h.anonymous || cl.Net.Inline || write {
		return true
	}
	if !h.known(cl) {
		return false
	}
	own := h.devices + string(cl.Properties.Username) + "/"
	if strings.HasPrefix(topic, own) {
		// Its results, and any MQTT 5 Response Topic the agent answers on
		// (reporter.replyRefusal): its own subtree, no wildcard, not a
		// topic the agent ingests.
		kind, _, _ := strings.Cut(strings.TrimPrefix(topic, own), "/")
		return !strings.ContainsAny(topic, "+#") && kind != "" && (h.a.ingest == nil || !h.a.ingest.HandlesTopic(kind))
	}
	return topic == h.status || strings.HasPrefix(topic, h.stock) || topic == strings.TrimSuffix(h.stock, "/")+"/#"
}

func (h *authHook) known(cl *mqtt.Client) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.tokens[cl]
	return ok
}

// OnPublish refuses a device's publish outside its own topics. It runs
// before ingestHook's (hooks run in the order added).
func (h *authHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if h.anonymous || cl.Net.Inline {
		return pk, nil
	}
	device := string(cl.Properties.Username)
	if h.known(cl) && h.mayPublish(device, pk.TopicName) {
		return pk, nil
	}
	refusePublish(h.a.logger, cl, pk, device, "a device may publish only under its own "+h.devices+"{device}/")
	return pk, packets.ErrRejectPacket
}

// isDeviceTopic reports whether topic is under {prefix}/{any wh}/devices/.
func isDeviceTopic(prefix, topic string) bool {
	rest, ok := strings.CutPrefix(topic, prefix+"/")
	if !ok {
		return false
	}
	_, rest, ok = strings.Cut(rest, "/")
	return ok && strings.HasPrefix(rest, "devices/")
}

// refusePublish answers a publish the broker will not take, the way mochi
// answers one its ACL refuses, and logs it once: MQTT 5 gets PUBACK (PUBREC
// for QoS 2) "not authorized" with the reason as text; MQTT 3.1.1 has no
// reason codes, so a QoS 1/2 publish there closes the connection (its
// device sees the publish unacknowledged); QoS 0 is dropped.
func refusePublish(logger *slog.Logger, cl *mqtt.Client, pk packets.Packet, device, reason string) {
	answer := "dropped (QoS 0)"
	switch {
	case pk.FixedHeader.Qos == 0:
	case cl.Properties.ProtocolVersion == 5:
		answer = "not authorized (0x87)"
	default:
		answer = "disconnected (MQTT 3.1.1 has no reason codes)"
	}
	// Logged before the answer: whoever sees the answer finds the line.
	logger.Warn("mqtt publish refused", "client", cl.ID, "device", device, "topic", pk.TopicName,
		"retain", pk.FixedHeader.Retain, "reason", reason, "answer", answer)
	switch {
	case pk.FixedHeader.Qos == 0:
	case cl.Properties.ProtocolVersion == 5:
		typ := byte(packets.Puback)
		if pk.FixedHeader.Qos == 2 {
			typ = packets.Pubrec
		}
		_ = cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: typ}, PacketID: pk.PacketID,
			ReasonCode: packets.ErrNotAuthorized.Code, Properties: packets.Properties{ReasonString: reason}})
	default:
		cl.Stop(packets.ErrNotAuthorized)
	}
}

// OnDisconnect forgets the client.
func (h *authHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.mu.Lock()
	delete(h.tokens, cl)
	h.mu.Unlock()
}

// Open starts the revocation sweep.
func (h *authHook) Open() { h.sweeper = every(revocationSweep, h.sweep) }

// sweep disconnects clients whose token was revoked or expired.
func (h *authHook) sweep(ctx context.Context) {
	h.mu.Lock()
	clients := make(map[*mqtt.Client]string, len(h.tokens))
	for cl, id := range h.tokens {
		clients[cl] = id
	}
	h.mu.Unlock()
	for cl, id := range clients {
		rec, err := h.a.store.Token(ctx, id)
		if err == nil && rec.RevokedAt.IsZero() && now().Before(rec.ExpiresAt) {
			continue
		}
		h.a.logger.Warn("device token revoked or expired; disconnecting", "device", string(cl.Properties.Username), "token", id)
		cl.Stop(errDenied)
		h.OnDisconnect(cl, nil, false)
	}
}

// Close stops the sweep.
func (h *authHook) Close() { h.sweeper.Stop() }
