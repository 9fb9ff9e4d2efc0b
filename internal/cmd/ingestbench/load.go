package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgestock/edgestock/internal/procstat"
)

// benchSKU is the one SKU every counted event receives one unit of, so the
// agent has processed all N events exactly when its on_hand is N.
const benchSKU = "SKU-B"

// warmSKU receives the warm-up events, which must not count.
const warmSKU = "SKU-WARM"

// eventsTopic is where device publishes its events.
func eventsTopic(device string) string {
	return "edgestock/" + warehouse + "/devices/" + device + "/events"
}

// eventsFilter matches every device's events.
var eventsFilter = eventsTopic("+")

// resultsFilter matches every device's results.
var resultsFilter = "edgestock/" + warehouse + "/devices/+/results"

// event is a receive of one unit of sku. tag makes ids unique per run.
func event(tag string, i int, sku string) []byte {
	return fmt.Appendf(nil, `{"id":"%s-%d","type":"receive","sku":"%s","qty":1}`, tag, i, sku)
}

// load publishes events 0 … events-1 over conns, each connection keeping
// inFlight QoS 1 publishes outstanding (one goroutine per publish slot,
// each waiting for its PUBACK before taking the next event).
type load struct {
	conns    []*client
	inFlight int
	events   int
	tag      string
	// device names the device of event i sent on connection conn.
	device func(conn, i int) string
}

// run publishes every event and returns the first error; after an error
// the other publishers stop taking new events.
func (l load) run(ctx context.Context) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for ci, c := range l.conns {
		for range l.inFlight {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= l.events || ctx.Err() != nil {
						return
					}
					if err := c.publish(ctx, eventsTopic(l.device(ci, i)), event(l.tag, i, benchSKU)); err != nil {
						once.Do(func() { firstErr = fmt.Errorf("publish event %d: %w", i, err) })
						cancel()
						return
					}
				}
			})
		}
	}
	wg.Wait()
	return firstErr
}

// measurement is one timed run.
type measurement struct {
	events  int
	elapsed time.Duration            // first publish → consumer processed all events
	publish time.Duration            // first publish → last PUBACK
	cpu     map[string]time.Duration // CPU time each process used during the run
	// perCommit is the agent's mean items per group commit over its life
	// (warm-up included); 0 for a bare run or when unknown.
	perCommit float64
}

// proc is a process whose CPU time a run accounts for.
type proc struct {
	name string
	pid  int
}

// cpuSnapshot reads every proc's CPU time; one that cannot be read is left
// out (and so shown as unknown).
func cpuSnapshot(procs []proc) map[string]time.Duration {
	out := make(map[string]time.Duration, len(procs))
	for _, p := range procs {
		if d, err := procstat.CPUTime(p.pid); err == nil {
			out[p.name] = d
		}
	}
	return out
}

// cpuPerEvent is the CPU time process name used per event, or 0 if unknown.
func (m measurement) cpuPerEvent(name string) time.Duration {
	d, ok := m.cpu[name]
	if !ok || m.events == 0 {
		return 0
	}
	return d / time.Duration(m.events)
}

// rate is events per second by the consumer's clock.
func (m measurement) rate() float64 { return float64(m.events) / m.elapsed.Seconds() }

// measure starts l and times it until processed returns, which must be
// once the consumer has processed all l.events; published is closed once
// every publish has ended. Both are bounded by timeout; a publish error
// ends the wait early. It also notes the CPU time each of procs used
// meanwhile.
func measure(ctx context.Context, timeout time.Duration, l load, processed func(ctx context.Context, published <-chan struct{}) error, procs []proc) (measurement, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ctx, stop := context.WithTimeoutCause(ctx, timeout,
		fmt.Errorf("timed out after %s waiting for %d events to be processed", timeout, l.events))
	defer stop()

	m := measurement{events: l.events}
	cpu0 := cpuSnapshot(procs)
	start := time.Now()
	published := make(chan struct{})
	go func() {
		defer close(published)
		if err := l.run(ctx); err != nil {
			cancel(err)
		}
		m.publish = time.Since(start)
	}()
	err := processed(ctx, published)
	m.elapsed = time.Since(start)
	m.cpu = cpuSnapshot(procs)
	for name, d := range m.cpu {
		if d0, ok := cpu0[name]; ok {
			m.cpu[name] = d - d0
		} else {
			delete(m.cpu, name)
		}
	}
	if err != nil {
		cancel(err)
	}
	<-published // every publish ends: done, failed or cancelled
	if err != nil {
		// Name why the wait ended (a publish error, the timeout) unless
		// err already does.
		if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
			return m, fmt.Errorf("%w (%v)", cause, err)
		}
		return m, err
	}
	return m, context.Cause(ctx)
}

// warmUp publishes warm-up events from device "warm" until done reports
// that the consumer saw one. It resends because a consumer may be
// connected before its subscription is in place (the agent reports ready
// once connected and subscribes right after), and a publish that precedes
// the subscription is lost.
func warmUp(ctx context.Context, timeout time.Duration, c *client, tag string, done func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("the consumer saw no event within %s", timeout))
	defer cancel()
	for i := 0; ; i++ {
		if err := c.publish(ctx, eventsTopic("warm"), event(tag+"-warm", i, warmSKU)); err != nil {
			return fmt.Errorf("warm-up publish: %w", err)
		}
		deadline := time.Now().Add(500 * time.Millisecond)
		for time.Now().Before(deadline) {
			ok, err := done(ctx)
			if err != nil {
				return fmt.Errorf("warm-up: %w", err)
			}
			if ok {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("warm-up: %w", context.Cause(ctx))
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
}
