package agent

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// liveInterval is the coalescing window of the retained stock topics: a SKU
// is published at most once per interval, with its latest view.
const liveInterval = 100 * time.Millisecond

// liveStock publishes the retained {prefix}/{wh}/stock/{sku} views. Commits
// mark SKUs dirty; every liveInterval the dirty ones are read and published,
// so a burst of 1,000 sales of one SKU costs one publish, and a subscriber
// that connects late gets the current level of every SKU from the broker.
type liveStock struct {
	prefix, warehouse string
	// views reads the views of SKUs, leaving out those never seen.
	views func(ctx context.Context, skus []string) ([]StockView, error)
	// allSKUs pages through every SKU: at start each is published again,
	// since a restarted (embedded) broker has lost its retained messages.
	allSKUs func(ctx context.Context, after string, limit int) ([]string, error)
	pub     publisher
	logger  *slog.Logger

	errs    distinct     // read errors, each logged once
	flushes atomic.Int64 // flushes done (tests wait for one to pass)
	mu      sync.Mutex
	dirty   map[string]struct{}
	flusher *loop
	cancel  context.CancelFunc // stops the start-up republish
	wg      sync.WaitGroup
}

// Mark records changed SKUs; it never blocks.
func (l *liveStock) Mark(skus []string) {
	l.mu.Lock()
	for _, s := range skus {
		l.dirty[s] = struct{}{}
	}
	l.mu.Unlock()
}

func (l *liveStock) Open() {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	if l.allSKUs != nil {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.republishAll(ctx)
		}()
	}
	l.flusher = every(liveInterval, func(ctx context.Context) { l.flush(ctx) })
}

// queuePublisher is a publisher that may have no room for a message (the
// external broker's queue, while the broker is slow or gone): TryPublish
// reports whether m was queued.
type queuePublisher interface {
	TryPublish(m outbound) bool
}

// publish hands m to the broker; false when its queue had no room.
func (l *liveStock) publish(m outbound) bool {
	if q, ok := l.pub.(queuePublisher); ok {
		return q.TryPublish(m)
	}
	l.pub.Publish(m)
	return true
}

// flush publishes the dirty SKUs' views. A SKU whose view could not be read,
// queued or published stays dirty, for the next flush: a level is never
// dropped, or its retained topic would hold a stale one. full reports a
// full queue.
func (l *liveStock) flush(ctx context.Context) (full bool) {
	defer l.flushes.Add(1)
	l.mu.Lock()
	dirty := l.dirty
	l.dirty = map[string]struct{}{}
	l.mu.Unlock()
	skus := slices.Sorted(maps.Keys(dirty))
	for len(skus) > 0 {
		page := skus[:min(len(skus), viewPage)]
		views, err := l.views(ctx, page)
		switch {
		case ctx.Err() != nil:
			// Stopped mid-flush (Close): this page and those not read yet
			// go to the final flush.
			l.Mark(skus)
			return false
		case err != nil:
			l.Mark(page) // read again at the next flush
		}
		if l.errs.changed(err) {
			l.logger.Warn("live stock: read failed; retrying at the next flush", "skus", len(page), "err", err)
		}
		for i, v := range views {
			body, _ := json.Marshal(v) // a StockView always marshals
			sku := v.SKU
			m := outbound{Topic: l.prefix + "/" + l.warehouse + "/stock/" + sku, Payload: body, QoS: 1, Retain: true,
				Failed: func() { l.Mark([]string{sku}) }} // a lost level is published again
			if !l.publish(m) {
				// No room: this view and the rest wait for the next flush.
				for _, rest := range views[i:] {
					l.Mark([]string{rest.SKU})
				}
				l.Mark(skus[len(page):])
				return true
			}
		}
		skus = skus[len(page):]
	}
	return false
}

// republishAll marks every SKU dirty, a page at a time so a large
// catalogue is spread over several flushes.
func (l *liveStock) republishAll(ctx context.Context) {
	after := ""
	for ctx.Err() == nil {
		skus, err := l.allSKUs(ctx, after, viewPage)
		if err != nil {
			l.logger.Warn("live stock: listing SKUs to republish failed", "err", err)
			return
		}
		l.Mark(skus)
		if len(skus) < viewPage {
			return
		}
		after = skus[len(skus)-1]
		select {
		case <-ctx.Done():
		case <-time.After(liveInterval):
		}
	}
}

// Close publishes what is pending and stops. While the broker's queue is
// full it waits for room, until ctx ends.
func (l *liveStock) Close(ctx context.Context) {
	if l.cancel == nil {
		return
	}
	l.cancel()
	l.wg.Wait()
	l.flusher.Stop()
	for l.flush(context.WithoutCancel(ctx)) && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(liveInterval):
		}
	}
	l.mu.Lock()
	left := len(l.dirty) // the final flush failed to read them
	l.mu.Unlock()
	if left > 0 {
		l.logger.Warn("live stock: levels not published at shutdown; every level is published again at start", "skus", left)
	}
}

// statusTopic is the agent's retained online/offline status.
func statusTopic(prefix, warehouse string) string { return prefix + "/" + warehouse + "/status" }

func statusPayload(state string) []byte {
	b, _ := json.Marshal(map[string]string{"state": state})
	return b
}
