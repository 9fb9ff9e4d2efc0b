package agent

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edgestock/edgestock/internal/auth"
)

// revocationSweep is how often connected devices' tokens are re-checked: a
// revoked device is disconnected within this (SPEC §6: within 1 s).
const revocationSweep = 500 * time.Millisecond

// authHook authenticates devices on the embedded broker (username = device
// ID, password = a device token) and confines each to its own topics:
// publish only under {prefix}/{wh}/devices/{id}/, subscribe only to its
// results, stock/# and status. With anonymous access (explicit, or by
// default while the broker listens on loopback) everyone may do anything.
type authHook struct {
	mqtt.HookBase
	a         *Agent
	anonymous bool

	mu      sync.Mutex
	tokens  map[*mqtt.Client]string // connected client -> token id
	sweeper *loop
	devices string // {prefix}/{wh}/devices/
	stock   string // {prefix}/{wh}/stock/
	status  string // {prefix}/{wh}/status
}

func newAuthHook(a *Agent, anonymous bool) *authHook {
	base := a.cfg.MQTT.TopicPrefix + "/" + a.cfg.Warehouse + "/"
	return &authHook{a: a, anonymous: anonymous, tokens: map[*mqtt.Client]string{},
		devices: base + "devices/", stock: base + "stock/", status: base + "status"}
}

func (h *authHook) ID() string { return "edgestock-auth" }

func (h *authHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnDisconnect}, []byte{b})
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

// OnACLCheck confines a device to its own topics.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if h.anonymous || cl.Net.Inline {
		return true
	}
	h.mu.Lock()
	_, known := h.tokens[cl]
	h.mu.Unlock()
	if !known {
		return false
	}
	device := string(cl.Properties.Username)
	own := h.devices + device + "/"
	if write {
		return strings.HasPrefix(topic, own) && !strings.ContainsAny(topic, "+#")
	}
	return topic == own+"results" || topic == h.status || strings.HasPrefix(topic, h.stock) || topic == strings.TrimSuffix(h.stock, "/")+"/#"
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
