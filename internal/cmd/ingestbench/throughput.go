package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/edgestock/edgestock/internal/mosquitto"
)

// The processes whose CPU time the throughput runs account for.
const (
	procBench     = "ingestbench" // the publishers, and the counting subscriber or the stock poller
	procMosquitto = "mosquitto"
	procAgent     = "agent"
	procMochi     = "mochi"
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
		func(tag string) (measurement, error) { return b.agentRun(ctx, tag, mq, brokerShape, agentOptions{}) })
	return res, err
}

// embeddedResult holds the rotating runs of section 3.
type embeddedResult struct {
	agent, quiet, mochi []measurement
}

// quietConfig turns alerts and live topics off: what they cost is the
// difference between the agent's runs with and without them.
const quietConfig = "alerts:\n  enabled: false\nlive:\n  enabled: false\n"

// embedded rotates, against the agent's own broker (a PUBACK means the
// event is committed), the agent as it ships, the agent with alerts and
// live topics off, and the same mochi broker with a hook that does nothing
// (what the broker costs alone).
func (b *bench) embedded(ctx context.Context, reps int) (embeddedResult, error) {
	var res embeddedResult
	quiet := filepath.Join(b.dir, "quiet.yaml")
	if err := os.WriteFile(quiet, []byte(quietConfig), 0o644); err != nil {
		return res, err
	}
	runs, err := rotate(reps, []string{"embedded", "embedded-quiet", "mochi"}, []func(tag string) (measurement, error){
		func(tag string) (measurement, error) { return b.agentRun(ctx, tag, nil, devicesShape, agentOptions{}) },
		func(tag string) (measurement, error) {
			return b.agentRun(ctx, tag, nil, devicesShape, agentOptions{config: quiet})
		},
		func(tag string) (measurement, error) { return b.mochiRun(ctx, tag) },
	})
	if err != nil {
		return res, err
	}
	res.agent, res.quiet, res.mochi = runs[0], runs[1], runs[2]
	return res, nil
}

// alternate runs a and b reps times each, named "{name}-{rep}": a first in
// odd reps, b first in even ones, so drift on the machine (thermal, page
// cache, other load) hits both alike and neither is always the run that
// follows the other.
func alternate(reps int, aName, bName string, a, b func(tag string) (measurement, error)) (as, bs []measurement, err error) {
	runs, err := rotate(reps, []string{aName, bName}, []func(string) (measurement, error){a, b})
	return runs[0], runs[1], err
}

// rotate runs each of fs reps times, named "{name}-{rep}", the order
// turned by one each rep: drift on the machine (thermal, page cache,
// other load) hits all alike and none always follows the same other.
func rotate(reps int, names []string, fs []func(tag string) (measurement, error)) ([][]measurement, error) {
	out := make([][]measurement, len(fs))
	for rep := 1; rep <= reps; rep++ {
		for k := range fs {
			i := (k + rep - 1) % len(fs)
			m, err := fs[i](fmt.Sprintf("%s-%d", names[i], rep))
			if err != nil {
				return out, fmt.Errorf("%s rep %d: %w", names[i], rep, err)
			}
			out[i] = append(out[i], m)
		}
	}
	return out, nil
}

// mochiRun times the reference broker (see runMochi) acknowledging the
// embedded runs' load: done at the last PUBACK.
func (b *bench) mochiRun(ctx context.Context, tag string) (measurement, error) {
	m, err := startMochi(ctx)
	if err != nil {
		return measurement{}, err
	}
	defer m.kill()
	pubs, err := dialAll(ctx, m.addr, tag+"-pub", devicesShape.conns)
	if err != nil {
		return measurement{}, err
	}
	defer closeAll(pubs)
	acked := func(ctx context.Context, published <-chan struct{}) error {
		select {
		case <-published:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	procs := []proc{{procBench, os.Getpid()}, {procMochi, m.cmd.Process.Pid}}
	res, err := measure(ctx, b.timeout, b.load(pubs, devicesShape, tag), acked, procs)
	if err != nil {
		return res, err
	}
	logRun(tag, res)
	return res, nil
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
func (b *bench) agentRun(ctx context.Context, tag string, mq *mosquitto.Broker, s shape, o agentOptions) (measurement, error) {
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
	profiled := make(chan error, 1)
	if b.profiles != "" && strings.HasSuffix(tag, "-1") && o.config == "" {
		// The first run of the agent as it ships: its profile of the run
		// (at least a second: the run may be shorter).
		go func() { profiled <- a.profile(ctx, b.profiles, tag, time.Second) }()
	} else {
		profiled <- nil
	}
	m, err := measure(ctx, b.timeout, b.load(pubs, s, tag), processed, procs)
	if err := errors.Join(err, <-profiled); err != nil {
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
