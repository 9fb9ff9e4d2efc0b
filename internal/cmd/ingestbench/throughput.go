package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"sync/atomic"

	"github.com/eclipse/paho.golang/paho"
	"github.com/edgestock/edgestock/internal/mosquitto"
)

// The processes whose CPU time the throughput runs account for.
const (
	procBench     = "ingestbench" // the publishers, and the counting subscriber or the stock poller
	procMosquitto = "mosquitto"
	procAgent     = "agent"
)

// counter is the bare consumer: it counts benchmark events and closes done
// at the target. It runs on paho's receive goroutine, which acknowledges
// each message once it returns.
type counter struct {
	warm   atomic.Bool // a warm-up event arrived; those are not counted
	n      atomic.Int64
	target int64
	done   chan struct{}
}

func newCounter(target int) *counter {
	return &counter{target: int64(target), done: make(chan struct{})}
}

func (c *counter) onPublish(p *paho.Publish) {
	if p.Topic == eventsTopic("warm") {
		c.warm.Store(true)
		return
	}
	if c.n.Add(1) == c.target {
		close(c.done)
	}
}

// wait returns once the target is reached.
func (c *counter) wait(ctx context.Context, _ <-chan struct{}) error {
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("bare subscriber counted %d of %d: %w", c.n.Load(), c.target, context.Cause(ctx))
	}
}

// throughputResult holds the alternating runs of section 1.
type throughputResult struct {
	bare, agent []measurement
}

// throughput alternates bare and agent runs on mosquitto, reps of each.
func (b *bench) throughput(ctx context.Context, mq *mosquitto.Broker, reps int) (throughputResult, error) {
	var res throughputResult
	var err error
	res.bare, res.agent, err = alternate(reps, "bare", "agent",
		func(tag string) (measurement, error) { return b.bareRun(ctx, mq, tag) },
		func(tag string) (measurement, error) { return b.agentRun(ctx, tag, mq, brokerShape) })
	return res, err
}

// embeddedResult holds the alternating runs of section 3.
type embeddedResult struct {
	devices, gateway []measurement
}

// embedded alternates device and gateway runs against the agent's own
// broker, where a PUBACK means the event is committed.
func (b *bench) embedded(ctx context.Context, reps int) (embeddedResult, error) {
	var res embeddedResult
	var err error
	res.devices, res.gateway, err = alternate(reps, "embedded-devices", "embedded-gateway",
		func(tag string) (measurement, error) { return b.agentRun(ctx, tag, nil, devicesShape) },
		func(tag string) (measurement, error) { return b.agentRun(ctx, tag, nil, gatewayShape) })
	return res, err
}

// alternate runs a and b reps times each, named "{name}-{rep}": a first in
// odd reps, b first in even ones, so drift on the machine (thermal, page
// cache, other load) hits both alike and neither is always the run that
// follows the other.
func alternate(reps int, aName, bName string, a, b func(tag string) (measurement, error)) (as, bs []measurement, err error) {
	run := func(name string, rep int, f func(string) (measurement, error), into *[]measurement) error {
		m, err := f(fmt.Sprintf("%s-%d", name, rep))
		if err != nil {
			return fmt.Errorf("%s rep %d: %w", name, rep, err)
		}
		*into = append(*into, m)
		return nil
	}
	for rep := 1; rep <= reps; rep++ {
		first := func() error { return run(aName, rep, a, &as) }
		second := func() error { return run(bName, rep, b, &bs) }
		if rep%2 == 0 {
			first, second = second, first
		}
		if err := first(); err != nil {
			return as, bs, err
		}
		if err := second(); err != nil {
			return as, bs, err
		}
	}
	return as, bs, nil
}

// bareRun times mosquitto delivering the events to a subscriber that only
// counts them.
func (b *bench) bareRun(ctx context.Context, mq *mosquitto.Broker, tag string) (measurement, error) {
	cnt := newCounter(b.events)
	sub, err := dial(ctx, mq.Addr, tag+"-sub", cnt.onPublish)
	if err != nil {
		return measurement{}, err
	}
	defer sub.close()
	if err := sub.subscribe(ctx, eventsFilter); err != nil {
		return measurement{}, err
	}
	pubs, err := dialAll(ctx, mq.Addr, tag+"-pub", brokerShape.conns)
	if err != nil {
		return measurement{}, err
	}
	defer closeAll(pubs)
	warmed := func(context.Context) (bool, error) { return cnt.warm.Load(), nil }
	if err := warmUp(ctx, b.timeout, pubs[0], tag, warmed); err != nil {
		return measurement{}, err
	}
	procs := []proc{{procBench, os.Getpid()}, {procMosquitto, mq.Pid()}}
	m, err := measure(ctx, b.timeout, b.load(pubs, brokerShape, tag), cnt.wait, procs)
	if err != nil {
		return m, err
	}
	logRun(tag, m)
	return m, nil
}

// agentRun times an agent child, with a fresh data dir, until its stock
// shows every event. With mq it consumes from that broker, otherwise (nil)
// the publishers connect to its embedded broker.
func (b *bench) agentRun(ctx context.Context, tag string, mq *mosquitto.Broker, s shape) (measurement, error) {
	var o agentOptions
	if mq != nil {
		o.mqttURL = mq.URL()
	}
	a, err := b.startAgent(ctx, tag, o)
	if err != nil {
		return measurement{}, err
	}
	defer a.kill()
	addr := a.mqttAddr
	if mq != nil {
		addr = mq.Addr
	}
	pubs, err := dialAll(ctx, addr, tag+"-pub", s.conns)
	if err != nil {
		return measurement{}, err
	}
	defer closeAll(pubs)
	if err := warmUp(ctx, b.timeout, pubs[0], tag, a.saw(warmSKU)); err != nil {
		return measurement{}, err
	}
	processed := func(ctx context.Context, published <-chan struct{}) error {
		select {
		case <-published:
		case <-ctx.Done():
		}
		return a.waitOnHand(ctx, benchSKU, int64(b.events), pollInterval)
	}
	procs := []proc{{procBench, os.Getpid()}, {procAgent, a.cmd.Process.Pid}}
	if mq != nil {
		procs = append(procs, proc{procMosquitto, mq.Pid()})
	}
	m, err := measure(ctx, b.timeout, b.load(pubs, s, tag), processed, procs)
	if err != nil {
		return m, err
	}
	if commits, items, err := a.commitStats(ctx); err == nil {
		m.perCommit = items / commits
	} else {
		log.Printf("%s: %v", tag, err)
	}
	logRun(tag, m)
	// More than N would mean events of another run leaked in.
	if n, err := a.onHand(ctx, benchSKU); err != nil || n != int64(b.events) {
		return m, fmt.Errorf("%s on_hand is %d (err %v), want exactly %d", benchSKU, n, err, b.events)
	}
	if err := b.stopAgent(a); err != nil {
		return m, err
	}
	if mq != nil {
		return m, clearSession(ctx, mq.Addr, agentClientID)
	}
	return m, nil
}
