// Package sites runs many light agents ("sites") in one process for scale
// runs of the hub (SPEC §11): `edgestock simulate sites` and
// internal/cmd/scalebench. Each site is a real agent (its own SQLite
// store, the real sync protocol) with the outputs a scale run does not
// read turned off; it dials its hub over an uplink, or, in pull mode,
// listens for the hub.
package sites

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/internal/auth"
)

// Config says what sites to run.
type Config struct {
	Count  int
	Prefix string // warehouse IDs are {Prefix}{000…}
	// Hub is the hub every site dials, "URL[,URL…]" as hub.url (uplink
	// mode); "": pull mode, the hub dials each site's Base.
	Hub string
	// Token returns a site's uplink token (uplink mode).
	Token  func(ctx context.Context, warehouse string) (string, error)
	Dir    string // each site's data dir is under it
	Logger *slog.Logger
}

// Issuer makes the sites' Token: an uplink token of the hub whose store
// rec is and whose key signs with signer, for each warehouse, valid for
// ttl.
func Issuer(rec auth.Recorder, signer auth.Signer, ttl time.Duration) func(context.Context, string) (string, error) {
	return func(ctx context.Context, wh string) (string, error) {
		token, _, err := auth.Issue(ctx, rec, signer, auth.Request{Name: "simulated site " + wh, Scopes: []string{auth.ScopeUplink},
			Warehouse: wh, Audience: auth.AudienceHub, TTL: ttl}, time.Now().UTC())
		return token, err
	}
}

// Site is one running site.
type Site struct {
	Warehouse string
	Base      string // its HTTP API
	SKU       string // the SKU its receives count up
	agent     *agent.Agent
	sent      atomic.Int64
}

// Warehouse returns the ID of site i.
func Warehouse(prefix string, i int) string { return fmt.Sprintf("%s%03d", prefix, i) }

// Start starts cfg.Count sites; on an error it stops those it started.
func Start(ctx context.Context, cfg Config) ([]*Site, error) {
	var out []*Site
	for i := range cfg.Count {
		wh := Warehouse(cfg.Prefix, i)
		c := agent.DefaultConfig()
		c.Warehouse, c.DataDir = wh, filepath.Join(cfg.Dir, wh)
		c.HTTP.Listen, c.MQTT.Listen = "127.0.0.1:0", "127.0.0.1:0"
		c.Alerts.Enabled, c.Live.Enabled, c.Replenishment.Enabled = false, false, false
		if cfg.Hub != "" {
			token, err := cfg.Token(ctx, wh)
			if err != nil {
				Close(out)
				return nil, fmt.Errorf("site %s: uplink token: %w", wh, err)
			}
			c.Hub = agent.HubUplink{URL: cfg.Hub, Token: token}
		}
		c.Normalize()
		if err := c.Validate(); err != nil {
			Close(out)
			return nil, fmt.Errorf("site %s: %w", wh, err)
		}
		a := agent.New(c, cfg.Logger.With("site", wh))
		if err := a.Open(ctx); err != nil {
			Close(out)
			return nil, fmt.Errorf("site %s: %w", wh, err)
		}
		out = append(out, &Site{Warehouse: wh, Base: "http://" + a.HTTPAddr(), SKU: "S-" + wh, agent: a})
	}
	return out, nil
}

// Close stops sites.
func Close(sites []*Site) {
	var wg sync.WaitGroup
	for _, s := range sites {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = s.agent.Close(ctx)
		})
	}
	wg.Wait()
}

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}

// Receive commits one unit of the site's SKU and returns the level it
// reached (its receives so far) once the agent acknowledged it.
func (s *Site) Receive(ctx context.Context) (int64, error) {
	n := s.sent.Add(1)
	body := fmt.Sprintf(`{"id":"sim-%d","type":"receive","sku":%q,"qty":1}`, n, s.SKU)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Base+"/v1/events", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("site %s: POST /v1/events: %s", s.Warehouse, resp.Status)
	}
	return n, nil
}

// Run sends rate receives a second from every site (spread evenly, each
// site on its own schedule) until ctx ends, and calls ack with each one
// acknowledged; one under way when ctx ends is waited for. It returns how
// many were acknowledged and how many failed.
func Run(ctx context.Context, sites []*Site, rate float64, ack func(s *Site, level int64, at time.Time)) (acked, failed int64) {
	var a, f atomic.Int64
	var wg sync.WaitGroup
	every := time.Duration(float64(time.Second) / rate)
	for i, s := range sites {
		wg.Go(func() {
			// Start the sites spread over one interval, not all at once.
			timer := time.NewTimer(every * time.Duration(i) / time.Duration(len(sites)))
			defer timer.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
				timer.Reset(every)
				// A receive under way when ctx ends is answered, not cut
				// off: committed, it must be counted.
				level, err := s.Receive(context.WithoutCancel(ctx))
				if err != nil {
					f.Add(1)
					continue
				}
				a.Add(1)
				ack(s, level, time.Now())
			}
		})
	}
	wg.Wait()
	return a.Load(), f.Load()
}

// Drain waits until the hub has pulled everything from every site (each
// site's pending_deltas is 0), or ctx ends; it returns how many sites
// still had changes the hub had not pulled.
func Drain(ctx context.Context, sites []*Site) int {
	left := sites
	for len(left) > 0 {
		var still []*Site
		for _, s := range left {
			if pending(ctx, s) != 0 {
				still = append(still, s)
			}
		}
		left = still
		if len(left) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return len(left)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return 0
}

// pending reads the changes the hub has not pulled from s (-1: unknown).
func pending(ctx context.Context, s *Site) int64 {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Base+"/v1/status", nil)
	if err != nil {
		return -1
	}
	resp, err := client.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var st agent.Status
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
		return -1 // an error's body is no status: not drained
	}
	return st.PendingDeltas
}
