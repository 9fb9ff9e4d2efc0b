// Package testenv starts the real services edgestock's tests run against
// (a mosquitto process, MQTT clients) and decides what happens when one is
// missing: a loud skip on a developer machine, a failure in CI (CI=true).
package testenv

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/stretchr/testify/require"
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	addr := ln.Addr().String()
	require.NoError(tb, ln.Close())
	return addr
}

// Mosquitto is a mosquitto process owned by a test.
type Mosquitto struct {
	Addr string
	cmd  *exec.Cmd
}

// URL is the broker's mqtt:// URL.
func (m *Mosquitto) URL() string { return "mqtt://" + m.Addr }

// StartMosquitto runs mosquitto on a free port with queues large enough that
// nothing a test sends is dropped (its defaults drop past 1,000 queued
// messages per session). It stops with the test.
func StartMosquitto(tb testing.TB) *Mosquitto {
	tb.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		Missing(tb, "mosquitto")
	}
	dir := tb.TempDir()
	for attempt := 0; ; attempt++ {
		addr := FreeAddr(tb)
		_, port, _ := net.SplitHostPort(addr)
		conf := filepath.Join(dir, "mosquitto.conf")
		require.NoError(tb, os.WriteFile(conf, []byte(fmt.Sprintf(`listener %s 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 200000
max_inflight_messages 1000
max_packet_size 1048576
set_tcp_nodelay true
`, port)), 0o644))
		cmd := exec.Command(bin, "-c", conf)
		cmd.Stdout, cmd.Stderr = nil, nil
		require.NoError(tb, cmd.Start())
		if waitDial(addr, 5*time.Second) {
			m := &Mosquitto{Addr: addr, cmd: cmd}
			tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			return m
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		require.Less(tb, attempt, 3, "mosquitto did not start")
	}
}

func waitDial(addr string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			_ = c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
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
	ca, err := c.Connect(cctx, &paho.Connect{ClientID: clientID, KeepAlive: 30, CleanStart: true})
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	if ca.ReasonCode != 0 {
		_ = conn.Close()
		return nil, fmt.Errorf("connect refused: reason %d", ca.ReasonCode)
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
