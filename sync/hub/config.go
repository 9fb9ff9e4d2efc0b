package hub

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/internal/yamlconf"
)

// FileConfig is configs/hub.yaml.
type FileConfig struct {
	// Name is this hub process's name on a shared PostgreSQL (an ID): it
	// writes under replica hub.{name} in every run, not a new one per
	// start, and no two running processes may share it. Empty: a replica
	// per run. The SQLite hub keeps its replica in its data dir anyway.
	Name    string `yaml:"name"`
	DataDir string `yaml:"data-dir"`
	HTTP    string `yaml:"http"`
	// Store is empty or sqlite for the embedded SQLite store in data-dir,
	// or a postgres:// URL: several hub processes may share one database.
	Store string `yaml:"store"`
	// Agents: warehouse: its base URL, which the hub dials, or "uplink":
	// the agent dials the hub (edgestock agent --hub URL --hub-token T).
	Agents map[string]string `yaml:"agents"`
	// AgentTokens: warehouse: a token issued by that agent with the sync
	// scope (edgestock token issue --scope sync). Required for agents that
	// listen beyond loopback.
	AgentTokens map[string]string `yaml:"agent-tokens"`
	// AgentCA (PEM) is the CA agents' HTTPS certificates must chain to:
	// pinned, the system roots are not consulted. Empty: system roots.
	AgentCA string `yaml:"agent-ca"`
	// TLSCert and TLSKey (PEM) serve the hub's own API over HTTPS.
	TLSCert string `yaml:"tls-cert"`
	TLSKey  string `yaml:"tls-key"`
	// Auth is "auto" (bearer tokens required unless http is a loopback
	// address) or "required" (everywhere).
	Auth string    `yaml:"auth"`
	Log  LogConfig `yaml:"log"`
	// Webhooks receive the hub's changes (SPEC §10).
	Webhooks []WebhookConfig `yaml:"webhooks"`
	// Publish sends the hub's changes to an external MQTT broker.
	Publish PublishConfig `yaml:"publish"`
}

// PublishConfig is the hub's publishing to an external MQTT broker: none
// while url is empty.
type PublishConfig struct {
	URL         string   `yaml:"url"`
	Username    string   `yaml:"username"`
	Password    string   `yaml:"password"`
	ClientID    string   `yaml:"client-id"`    // default: edgestock-hub-{replica}
	TopicPrefix string   `yaml:"topic-prefix"` // default: edgestock
	Channels    []string `yaml:"channels"`     // whose ATS to publish
}

// WebhookConfig is one webhook: name (an ID, keys its durable cursor),
// url, secret (signs every delivery), events (stock, ats, order, alert;
// default: stock, or ats with a channel), channel (its ats events and
// orders alone) and max-attempts before a page is given up on into the
// dead letters (default 0: retried until delivered, SPEC §10).
type WebhookConfig struct {
	Name        string   `yaml:"name"`
	URL         string   `yaml:"url"`
	Secret      string   `yaml:"secret"`
	Events      []string `yaml:"events"`
	Channel     string   `yaml:"channel"`
	MaxAttempts int      `yaml:"max-attempts"`
}

// minSecret is the shortest webhook secret: an HMAC key a receiver can
// trust.
const minSecret = 16

// LogConfig is the hub's logging: level debug, info, warn or error; format
// text or json.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// DefaultFileConfig holds the defaults of SPEC §8.
func DefaultFileConfig() FileConfig {
	return FileConfig{DataDir: "./edgestock-hub-data", HTTP: "127.0.0.1:7080", Auth: "auto", Agents: map[string]string{}, AgentTokens: map[string]string{},
		Log: LogConfig{Level: "info", Format: "text"}}
}

// LoadFileConfig reads a YAML file over the defaults; unknown keys are errors.
func LoadFileConfig(path string) (FileConfig, error) {
	cfg := DefaultFileConfig()
	err := yamlconf.Load(path, &cfg)
	return cfg, err
}

// UplinkURL, as an agent's URL, says the agent dials the hub (SPEC §11).
const UplinkURL = "uplink"

// ParseAgentFlag reads WH=URL.
func ParseAgentFlag(s string) (string, string, error) {
	wh, u, ok := strings.Cut(s, "=")
	if !ok {
		return "", "", fmt.Errorf("--agent %q: want WAREHOUSE=URL", s)
	}
	return wh, u, nil
}

// Validate checks the config and returns the server config.
func (c FileConfig) Validate() (Config, error) {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data-dir: must not be empty"))
	}
	if _, _, err := net.SplitHostPort(c.HTTP); err != nil {
		errs = append(errs, fmt.Errorf("http: %q is not host:port", c.HTTP))
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q must be debug, info, warn or error", c.Log.Level))
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		errs = append(errs, fmt.Errorf("log.format: %q must be text or json", c.Log.Format))
	}
	store := c.Store
	switch {
	case store == "" || store == "sqlite":
		store = ""
	case strings.HasPrefix(store, "postgres://") || strings.HasPrefix(store, "postgresql://"):
	default:
		errs = append(errs, fmt.Errorf("store: %q must be sqlite or a postgres:// URL", c.Store))
	}
	if c.Name != "" && !drivers.ValidID(c.Name) {
		errs = append(errs, fmt.Errorf("name: %q is not an ID", c.Name))
	}
	if c.Auth != "auto" && c.Auth != "required" {
		errs = append(errs, fmt.Errorf("auth: %q must be auto or required", c.Auth))
	}
	out := Config{Name: c.Name, DataDir: c.DataDir, HTTP: c.HTTP, Store: store, AgentCA: c.AgentCA, TLSCert: c.TLSCert, TLSKey: c.TLSKey, Auth: c.Auth}
	for wh, u := range c.Agents {
		p, err := url.Parse(u)
		switch {
		case !drivers.ValidID(wh):
			errs = append(errs, fmt.Errorf("agents: %q is not a warehouse ID", wh))
		case u == UplinkURL:
			if c.AgentTokens[wh] != "" {
				errs = append(errs, fmt.Errorf("agent-tokens.%s: an agent on an uplink needs none (its uplink token is checked)", wh))
			}
			out.Agents = append(out.Agents, Agent{Warehouse: wh, URL: UplinkURL})
		case err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "":
			errs = append(errs, fmt.Errorf("agents.%s: %q is not an http(s) URL, nor uplink", wh, u))
		default:
			out.Agents = append(out.Agents, Agent{Warehouse: wh, URL: strings.TrimRight(u, "/"), Token: c.AgentTokens[wh]})
		}
	}
	for wh := range c.AgentTokens {
		if _, ok := c.Agents[wh]; !ok {
			errs = append(errs, fmt.Errorf("agent-tokens.%s: no such agent", wh))
		}
	}
	if p := c.Publish; p.URL != "" {
		u, err := url.Parse(p.URL)
		switch {
		case err != nil || u.Host == "" || !slices.Contains([]string{"mqtt", "mqtts", "tcp", "ssl", "tls"}, u.Scheme):
			errs = append(errs, fmt.Errorf("publish.url: %q is not an mqtt:// or mqtts:// URL", p.URL))
		case strings.ContainsAny(p.TopicPrefix, "#+"):
			errs = append(errs, fmt.Errorf("publish.topic-prefix: %q has a wildcard", p.TopicPrefix))
		}
		for _, ch := range p.Channels {
			if !drivers.ValidChannel(ch) {
				errs = append(errs, fmt.Errorf("publish.channels: %q is not a channel", ch))
			}
		}
		prefix := p.TopicPrefix
		if prefix == "" {
			prefix = "edgestock"
		}
		out.Publish = &Publish{URL: p.URL, Username: p.Username, Password: p.Password, ClientID: p.ClientID, TopicPrefix: prefix, Channels: p.Channels}
	}
	names := map[string]bool{}
	for i, w := range c.Webhooks {
		p, err := url.Parse(w.URL)
		switch {
		case !drivers.ValidID(w.Name) || names[w.Name]:
			errs = append(errs, fmt.Errorf("webhooks[%d].name: %q must be a unique ID", i, w.Name))
		case err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "":
			errs = append(errs, fmt.Errorf("webhooks.%s.url: %q is not an http(s) URL", w.Name, w.URL))
		case len(w.Secret) < minSecret:
			errs = append(errs, fmt.Errorf("webhooks.%s.secret: at least %d characters", w.Name, minSecret))
		case w.Channel != "" && !drivers.ValidChannel(w.Channel):
			errs = append(errs, fmt.Errorf("webhooks.%s.channel: %q is not a channel", w.Name, w.Channel))
		case w.MaxAttempts < 0 || w.MaxAttempts > 1000:
			errs = append(errs, fmt.Errorf("webhooks.%s.max-attempts: 0 (until delivered) or 1..1000", w.Name))
		case slices.Contains(w.Events, "ats") && w.Channel == "":
			errs = append(errs, fmt.Errorf("webhooks.%s.events: ats events are a channel's: set channel", w.Name))
		}
		for _, e := range w.Events {
			if !slices.Contains(WebhookEvents, e) {
				errs = append(errs, fmt.Errorf("webhooks.%s.events: %q is not one of %s", w.Name, e, strings.Join(WebhookEvents, ", ")))
			}
		}
		names[w.Name] = true
		out.Webhooks = append(out.Webhooks, Webhook{Name: w.Name, URL: w.URL, Secret: w.Secret, Channel: w.Channel, Events: w.Events, MaxAttempts: w.MaxAttempts})
	}
	sort.Slice(out.Agents, func(i, j int) bool { return out.Agents[i].Warehouse < out.Agents[j].Warehouse })
	return out, errors.Join(errs...)
}
