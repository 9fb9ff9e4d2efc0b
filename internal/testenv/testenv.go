// Package testenv starts the real services edgestock's tests run against
// (a mosquitto process, MQTT clients) and decides what happens when one is
// missing: a loud skip on a developer machine, a failure in CI (CI=true).
package testenv

import (
	"context"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/mosquitto"
)

// Missing skips the test because a service is unavailable, or fails it in
// CI, where .ci/run provides every service.
func Missing(tb testing.TB, what string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("CI=true but %s is unavailable: .ci/run must provide it", what)
	}
	tb.Skipf("SKIPPED: %s is unavailable (install it, or run .ci/run)", what)
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	addr, err := mosquitto.FreeAddr()
	require.NoError(tb, err)
	return addr
}

// StartMosquitto runs mosquitto on a free port with queues large enough that
// nothing a test sends is dropped (its defaults drop past 1,000 queued
// messages per session). It stops with the test.
func StartMosquitto(tb testing.TB, listener ...string) *mosquitto.Broker {
	tb.Helper()
	if _, err := mosquitto.Binary(); err != nil {
		Missing(tb, "mosquitto")
	}
	m, err := mosquitto.Start(tb.TempDir(), listener...)
	require.NoError(tb, err)
	tb.Cleanup(m.Stop)
	return m
}

// Client is a plain paho MQTT 5 client for tests: Publish blocks until the
// broker's PUBACK, and may be called concurrently to keep several in flight.
type Client struct {
	*paho.Client
	Conn     net.Conn           // closing it fails everything in flight at once
	Received chan *paho.Publish // messages of subscriptions
}

// Dial connects a client with a clean session.
func Dial(tb testing.TB, addr, clientID string) *Client {
	tb.Helper()
	c, err := DialErr(tb.Context(), addr, clientID)
	require.NoError(tb, err)
	tb.Cleanup(func() { c.Close() })
	return c
}

// DialErr connects a client; the caller closes it.
func DialErr(ctx context.Context, addr, clientID string) (*Client, error) {
	return DialAuth(ctx, addr, clientID, "", "")
}

// DialAuth connects a client with a username and password (none when
// empty); the caller closes it.
func DialAuth(ctx context.Context, addr, clientID, username, password string) (*Client, error) {
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		addr = u.Host
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c := &Client{Conn: conn, Received: make(chan *paho.Publish, 100000)}
	c.Client = paho.NewClient(paho.ClientConfig{
		ClientID: clientID, Conn: conn, PacketTimeout: 30 * time.Second,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			select {
			case c.Received <- pr.Packet:
			default:
			}
			return true, nil
		}},
	})
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cp := &paho.Connect{ClientID: clientID, KeepAlive: 30, CleanStart: true}
	if username != "" {
		cp.Username, cp.UsernameFlag = username, true
		cp.Password, cp.PasswordFlag = []byte(password), true
	}
	if _, err := c.Connect(cctx, cp); err != nil { // a refusal (reason >= 0x80) is an error
		_ = conn.Close()
		return nil, err
	}
	return c, nil
}

// Close disconnects.
func (c *Client) Close() {
	_ = c.Disconnect(&paho.Disconnect{ReasonCode: 0})
}

// Publish sends a QoS 1 message and waits for its PUBACK.
func (c *Client) PublishQoS1(ctx context.Context, topic string, payload []byte) error {
	_, err := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: payload})
	return err
}

// Subscribe subscribes at QoS 1; messages arrive on Received.
func (c *Client) SubscribeQoS1(tb testing.TB, topics ...string) {
	tb.Helper()
	var opts []paho.SubscribeOptions
	for _, t := range topics {
		opts = append(opts, paho.SubscribeOptions{Topic: t, QoS: 1})
	}
	_, err := c.Subscribe(tb.Context(), &paho.Subscribe{Subscriptions: opts})
	require.NoError(tb, err)
}
