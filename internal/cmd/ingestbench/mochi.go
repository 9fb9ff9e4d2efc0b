package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edgestock/edgestock/internal/mosquitto"
)

// mochiEnv, set, makes this program the reference broker: the mochi-mqtt
// the agent embeds, with the agent's options and an inline hook that does
// nothing with a publish, listening on the address it names. The agent's
// embedded ingest is measured against it: what the broker costs alone.
const mochiEnv = "INGESTBENCH_MOCHI"

// noopHook lets every client in, as the agent's auth hook does with
// anonymous devices allowed, and sees every publish, as the agent's
// ingest hook does, letting mochi acknowledge it at once.
type noopHook struct{ mqtt.HookBase }

func (noopHook) ID() string { return "noop" }

func (noopHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish}, []byte{b})
}

func (noopHook) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

func (noopHook) OnACLCheck(*mqtt.Client, string, bool) bool { return true }

func (noopHook) OnPublish(_ *mqtt.Client, pk packets.Packet) (packets.Packet, error) { return pk, nil }

// runMochi serves until SIGTERM.
func runMochi(addr string) error {
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = 4 << 20
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Capabilities: caps,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err := srv.AddHook(new(noopHook), nil); err != nil {
		return err
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})); err != nil {
		return err
	}
	if err := srv.Serve(); err != nil {
		return err
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	<-stop
	return srv.Close()
}

// mochiBroker is the reference broker child.
type mochiBroker struct {
	addr string
	*child
}

func startMochi(ctx context.Context) (*mochiBroker, error) {
	addr, err := mosquitto.FreeAddr()
	if err != nil {
		return nil, err
	}
	m := &mochiBroker{addr: addr}
	if m.child, err = startSelf(mochiEnv + "=" + addr); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := dial(ctx, addr, "probe", nil)
		if err == nil {
			c.close()
			return m, nil
		}
		if time.Now().After(deadline) {
			m.kill()
			return nil, errors.New("reference mochi broker not up: " + err.Error())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
