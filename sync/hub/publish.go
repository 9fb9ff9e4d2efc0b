package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	stdsync "sync"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/edgestock/edgestock/internal/backoff"
	"github.com/edgestock/edgestock/internal/sse"
	"github.com/edgestock/edgestock/internal/store"
)

// Publish is the hub's publishing to an external MQTT broker (SPEC §10):
// retained {prefix}/hub/stock/{sku} (the hub's stock view) and, per
// channel, {prefix}/hub/ats/{channel}/{sku} (the ATS), at QoS 1, so a
// broker cluster fans them out to any number of subscribers while the
// hub publishes each change once; and its alerts on {prefix}/hub/alerts
// (QoS 1, not retained).
type Publish struct {
	URL, Username, Password, ClientID, TopicPrefix string
	Channels                                       []string
}

// publishSession is how long the broker keeps the hub's session (and its
// unacknowledged messages) while the hub is away.
const publishSession = time.Hour

// publisher runs one loop per stream: stock, each channel's ATS, alerts.
type publisher struct {
	cfg    Publish
	api    *API
	store  webhookStore
	logger *slog.Logger
	retry  time.Duration
	cm     *autopaho.ConnectionManager
	cancel context.CancelFunc
	wg     stdsync.WaitGroup
}

func newPublisher(api *API, st webhookStore, cfg Publish, retry time.Duration, logger *slog.Logger) *publisher {
	return &publisher{cfg: cfg, api: api, store: st, retry: retry, logger: logger}
}

// Open connects (in the background: the hub works without the broker) and
// starts the loops.
func (p *publisher) Open() error {
	u, err := url.Parse(p.cfg.URL)
	if err != nil {
		return fmt.Errorf("publish.url: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.cm, err = autopaho.NewConnection(ctx, autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     30,
		CleanStartOnInitialConnection: false,
		SessionExpiryInterval:         uint32(publishSession / time.Second),
		ReconnectBackoff:              autopaho.NewExponentialBackoff(100*time.Millisecond, 30*time.Second, 2*time.Second, 2),
		ConnectUsername:               p.cfg.Username,
		ConnectPassword:               []byte(p.cfg.Password),
		OnConnectionUp: func(*autopaho.ConnectionManager, *paho.Connack) {
			p.logger.Info("publishing to broker", "url", p.cfg.URL)
		},
		OnConnectError: func(err error) { p.logger.Warn("connect to publish broker failed", "err", err) },
		ClientConfig:   paho.ClientConfig{ClientID: p.cfg.ClientID},
	})
	if err != nil {
		cancel()
		return fmt.Errorf("publish.url %s: %w", p.cfg.URL, err)
	}
	p.wg.Go(func() { p.loop(ctx, "stock", stockOrATS("")) })
	for _, ch := range p.cfg.Channels {
		p.wg.Go(func() { p.loop(ctx, "ats:"+ch, stockOrATS(ch)) })
	}
	p.wg.Go(func() { p.loop(ctx, "alerts", sourceOptions{alerts: true}) })
	return nil
}

// Close stops the loops and disconnects.
func (p *publisher) Close() {
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = p.cm.Disconnect(ctx)
}

// loop publishes one stream while this process holds it (always, on
// SQLite): its pages from the saved cursor, each page's messages all
// acknowledged before the cursor moves past it.
func (p *publisher) loop(ctx context.Context, name string, src sourceOptions) {
	follower{api: p.api, store: p.store, key: "publish:" + name, src: src,
		handle: func(ctx context.Context, events []sse.Event, _ string) ([]*store.MergeOp, error) {
			return nil, p.publish(ctx, events)
		},
		failed: func(err error) { p.logger.Warn("publishing", "stream", name, "err", err) },
	}.run(ctx)
}

// publish sends a page's messages, retained at QoS 1, retrying each until
// the broker acknowledges it: a stock event as the SKU's whole stock view
// now, an ats event as it is.
// A page has a stock event per (warehouse, SKU): each SKU's view is read
// once and published once.
func (p *publisher) publish(ctx context.Context, events []sse.Event) error {
	var skus []string
	for _, e := range events {
		if c, ok := e.Data.(FeedChange); ok && !slices.Contains(skus, c.SKU) {
			skus = append(skus, c.SKU)
		}
	}
	views, err := p.api.views(ctx, skus)
	if err != nil {
		return err
	}
	type message struct {
		topic   string
		payload any
		retain  bool // a state: a late subscriber gets the latest
	}
	var out []message
	for _, sku := range skus {
		out = append(out, message{p.cfg.TopicPrefix + "/hub/stock/" + sku, views[sku], true})
	}
	for _, e := range events {
		switch d := e.Data.(type) {
		case ATS:
			out = append(out, message{p.cfg.TopicPrefix + "/hub/ats/" + d.Channel + "/" + d.SKU, d, true})
		case AlertView:
			out = append(out, message{p.cfg.TopicPrefix + "/hub/alerts", d, false})
		}
	}
	for _, m := range out {
		topic := m.topic
		b, _ := json.Marshal(m.payload) // the views always marshal
		wait := backoff.New(retryMin, p.retry)
		for {
			_, err := p.cm.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Retain: m.retain, Payload: b})
			if err == nil {
				break
			}
			if !wait.Sleep(ctx) {
				return ctx.Err()
			}
		}
	}
	return nil
}
