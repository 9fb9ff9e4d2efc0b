package main

import (
	"context"
	"fmt"
	"log"
	"time"
)

// Publisher shapes (see shape).
const (
	brokerConns     = 4  // device connections through mosquitto …
	brokerInFlight  = 32 // … each with this many publishes in flight
	deviceConns     = 4  // device connections to the embedded broker …
	deviceInFlight  = 16 // … each with this many publishes in flight
	gatewayInFlight = 64 // publishes in flight on the one gateway connection
	// gatewayDevices is how many devices the gateway relays for: its events
	// go to their topics in turn, as a gateway's would.
	gatewayDevices = 64
)

// pollInterval is how often the agent's stock is polled to see the end of a
// run. Polling starts only once the last publish is acknowledged (the
// agent cannot be done before): polls all along, at 10 ms, cost the agent
// about 3 % of its CPU, and it pays them while being measured. After the
// publishers finish, the agent is done within some 10-50 ms, so a few
// polls see the end within 2 ms of it.
const pollInterval = 2 * time.Millisecond

// agentClientID is the agent's default MQTT client ID for warehouse wh1.
const agentClientID = "edgestock-agent-" + warehouse

// bench holds what every run needs and collects the agents' peak RSS.
type bench struct {
	bin     string
	dir     string // scratch directory for data dirs, configs and logs
	events  int
	timeout time.Duration // bounds every wait
	// profiles, when set, is where the agent's CPU and allocation profiles
	// of one run of each section go.
	profiles string
	rss      []rssSample
}

// rssSample is an agent run's peak resident set.
type rssSample struct {
	run   string
	bytes int64
}

// deviceOf gives each publisher connection its own device.
func deviceOf(conn, _ int) string { return fmt.Sprintf("dev-%d", conn) }

// gatewayDevice spreads one connection's events over gatewayDevices devices.
func gatewayDevice(_, i int) string { return fmt.Sprintf("gw-%d", i%gatewayDevices) }

// shape is how publishers connect: conns connections, each with inFlight
// publishes outstanding, device naming each event's device.
type shape struct {
	conns    int
	inFlight int
	device   func(conn, i int) string
}

var (
	brokerShape  = shape{brokerConns, brokerInFlight, deviceOf}
	devicesShape = shape{deviceConns, deviceInFlight, deviceOf}
	gatewayShape = shape{1, gatewayInFlight, gatewayDevice}
)

func (b *bench) load(conns []*client, s shape, tag string) load {
	return load{conns: conns, inFlight: s.inFlight, events: b.events, tag: tag, device: s.device}
}

// startAgent starts an agent child in the scratch directory.
func (b *bench) startAgent(ctx context.Context, name string, o agentOptions) (*agent, error) {
	return startAgent(ctx, b.bin, b.dir, name, o, b.timeout)
}

// stopAgent stops a and records its peak RSS.
func (b *bench) stopAgent(a *agent) error {
	rss, err := a.stop()
	if err != nil {
		return err
	}
	b.rss = append(b.rss, rssSample{run: a.name, bytes: rss})
	return nil
}

// logRun reports progress on stderr while the benchmark runs.
func logRun(tag string, m measurement) {
	var cpu string
	if d := m.cpuPerEvent(procAgent); d > 0 {
		cpu = fmt.Sprintf(", agent %s/event, %.0f per commit", us(d), m.perCommit)
	}
	log.Printf("%-20s %d events in %6.2fs = %8.0f events/s (publishing took %.2fs%s)",
		tag, m.events, m.elapsed.Seconds(), m.rate(), m.publish.Seconds(), cpu)
}
