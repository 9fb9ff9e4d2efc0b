package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/internal/ingest"
	"github.com/edgestock/edgestock/internal/replenish"
	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/internal/yamlconf"
)

// Config is the agent's configuration: defaults, then the YAML file, then
// flags (applied by the caller), then Normalize and Validate.
type Config struct {
	// Warehouse this agent serves; default: the host name, cleaned to an ID.
	Warehouse  string         `yaml:"warehouse"`
	DataDir    string         `yaml:"data-dir"`
	HTTP       HTTPConfig     `yaml:"http"`
	MQTT       MQTTConfig     `yaml:"mqtt"`
	Devices    Devices        `yaml:"devices"`
	Barcodes   Barcodes       `yaml:"barcodes"`
	Filedrop   FiledropConfig `yaml:"filedrop"`
	Stock      Stock          `yaml:"stock"`
	Alerts     Alerts         `yaml:"alerts"`
	Live       Live           `yaml:"live"`
	Quarantine Quarantine     `yaml:"quarantine"`
	Log        LogConfig      `yaml:"log"`
	// Hub, when set, makes the agent dial the hub (SPEC §11) instead of
	// waiting for the hub to call: for sites behind NAT.
	Hub HubUplink `yaml:"hub"`
	// Replenishment learns demand and suggests orders (SPEC §12).
	Replenishment Replenishment `yaml:"replenishment"`
	// Channels tops each sales channel's rights up per SKU (SPEC §9).
	Channels map[string]ChannelConfig `yaml:"channels"`
}

// ChannelConfig is a channel's automatic top-up: while the hub is
// reachable, a SKU whose rights on the channel fall below LowWater is
// allotted up to Target from the warehouse's available stock.
type ChannelConfig struct {
	Target   int64 `yaml:"target"`
	LowWater int64 `yaml:"low-water"`
}

// HTTPConfig configures the HTTP API.
type HTTPConfig struct {
	Listen string `yaml:"listen"`
	// Auth is "auto" (bearer tokens required unless Listen is loopback) or
	// "required" (on loopback too). A non-loopback listener always
	// requires tokens, and refuses to start before one has been issued.
	Auth string `yaml:"auth"`
	// TLSCert and TLSKey (PEM files) serve HTTPS.
	TLSCert string `yaml:"tls-cert"`
	TLSKey  string `yaml:"tls-key"`
}

// MQTTConfig configures the broker side: the embedded broker (default) or an
// external one when URL is set.
type MQTTConfig struct {
	// Listen is the embedded broker's address; ignored when URL is set.
	Listen string `yaml:"listen"`
	// Anonymous is "deny" (the default: devices log in with their device ID
	// as username and a device token as password) or "allow" (any client,
	// no login, no topic limits; SPEC §6: only when enabled explicitly).
	// "auto" is accepted so older configs still load and means "deny": it
	// once allowed anonymous clients while Listen was loopback.
	Anonymous   string `yaml:"anonymous"`
	URL         string `yaml:"url"`
	TopicPrefix string `yaml:"topic-prefix"`
	// ClientID for the external broker; default edgestock-agent-{warehouse}.
	// It must stay stable: the broker keeps the session under it.
	ClientID      string        `yaml:"client-id"`
	Username      string        `yaml:"username"`
	Password      string        `yaml:"password"`
	SessionExpiry time.Duration `yaml:"session-expiry"`
	// ReceiveMaximum bounds unacknowledged messages the external broker
	// sends us at once.
	ReceiveMaximum uint16 `yaml:"receive-maximum"`
	KeepAlive      uint16 `yaml:"keep-alive"`
	// TLSCert and TLSKey (PEM) make the embedded broker speak MQTTS; with an
	// external broker they are the client certificate.
	TLSCert string `yaml:"tls-cert"`
	TLSKey  string `yaml:"tls-key"`
	// TLSCA (PEM) is the CA an external broker's certificate must chain to
	// (mqtts:// URLs); empty trusts the system roots.
	TLSCA string `yaml:"tls-ca"`
}

// Devices configures device behaviour.
type Devices struct {
	// Results is "errors" (publish only rejections to a device's results
	// topic) or "all" (successes too).
	Results string `yaml:"results"`
	// ResultsAll lists devices that get every result whatever Results says.
	ResultsAll []string `yaml:"results-all"`
	// Modes gives a scanner's default event type (receive, pick, count,
	// sale, return) for scans whose topic names none; key "*" applies to
	// every device not listed.
	Modes map[string]string `yaml:"modes"`
	// AtLeastOnce lists devices whose scans without an id are counted
	// anyway: each delivery counts, so a redelivery counts twice.
	AtLeastOnce []string `yaml:"at-least-once"`
	// RateLimit is the messages per second each device may send (MQTT and
	// HTTP), with bursts up to RateBurst; excess is rejected rate_limited
	// and quarantined. 0 disables the limit.
	RateLimit float64 `yaml:"rate-limit"`
	RateBurst float64 `yaml:"rate-burst"`
}

// Barcodes configures the barcode table.
type Barcodes struct {
	// File is a CSV with the header gtin,sku; default {data-dir}/barcodes.csv.
	// Changes are picked up within a second.
	File string `yaml:"file"`
}

// FiledropConfig configures the folder watched for CSV and JSON-lines
// exports.
type FiledropConfig struct {
	// Dir is the watched folder; empty disables file drops. Processed files
	// move to Dir/done (or Dir/failed) with a NAME.report.json.
	Dir string `yaml:"dir"`
	// Device is the device ID the files' events are recorded under.
	Device string `yaml:"device"`
	// Settle is how long a file's size and time must stay unchanged before
	// it is read: writers that do not rename into place need it.
	Settle time.Duration `yaml:"settle"`
}

// Stock configures stock views and low-stock thresholds.
type Stock struct {
	// LowStockThreshold: a SKU turns low when available <= this.
	LowStockThreshold int64 `yaml:"low-stock-threshold"`
	// RestockMargin: a low SKU is restocked when available >= threshold +
	// margin. The gap keeps a level wobbling at the threshold quiet.
	RestockMargin int64 `yaml:"restock-margin"`
	// ThresholdsFile overrides thresholds per SKU: CSV sku,low[,restock];
	// default {data-dir}/thresholds.csv. Reloaded within a second.
	ThresholdsFile string `yaml:"thresholds-file"`
}

// Alerts configures low_stock, restocked, negative_stock and device_gap
// alerts, published on {prefix}/{wh}/alerts and posted to webhooks.
type Alerts struct {
	Enabled bool `yaml:"enabled"`
	// Webhooks receive each alert as a JSON POST, retried until a 2xx.
	Webhooks []string `yaml:"webhooks"`
}

// Quarantine bounds the rejected payloads the agent keeps (SPEC §2: a
// rejection is always recorded; past these bounds without its payload).
type Quarantine struct {
	// MaxPayload is how many bytes of one payload are kept; a longer one
	// keeps its first MaxPayload bytes.
	MaxPayload int `yaml:"max-payload"`
	// DeviceBytes and TotalBytes bound the payload bytes kept for one device
	// and for all: past them a rejection is still recorded, counted and
	// reported to its device, without its payload.
	DeviceBytes int64 `yaml:"device-bytes"`
	TotalBytes  int64 `yaml:"total-bytes"`
	// MaxAge and MaxRows are the retention: older rows, and the oldest past
	// MaxRows, are deleted every minute, freeing their quota.
	MaxAge  time.Duration `yaml:"max-age"`
	MaxRows int64         `yaml:"max-rows"`
}

// StoreLimits are q as the store takes them.
func (q Quarantine) StoreLimits() store.QuarantineLimits {
	return store.QuarantineLimits{MaxPayload: q.MaxPayload, DeviceBytes: q.DeviceBytes, TotalBytes: q.TotalBytes, MaxAge: q.MaxAge, MaxRows: q.MaxRows}
}

// httpURL reports whether u is an absolute http(s) URL.
func httpURL(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != ""
}

// URLs lists the hub processes in hub.url (none: the hub dials the agent).
func (h HubUplink) URLs() []string {
	var urls []string
	for u := range strings.SplitSeq(h.URL, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	return urls
}

// HubUplink is the agent's connection to its hub when the agent dials
// (SPEC §11): it keeps one open, and the hub syncs over it.
type HubUplink struct {
	// URL is the hub, or its processes comma-separated, tried in order:
	// the next one when one cannot be reached.
	URL string `yaml:"url"`
	// Token is the hub's uplink token for this warehouse (edgestock token
	// issue --role hub --scope uplink --warehouse ID), or @FILE to read it
	// from a file.
	Token string `yaml:"token"`
	// TLSCA (PEM) is the CA an https hub's certificate must chain to
	// (default: the system's roots).
	TLSCA string `yaml:"tls-ca"`
}

// Replenishment configures the demand estimate per SKU, the figures of
// GET /v1/replenishment and the stockout_risk alert (SPEC §12).
type Replenishment struct {
	Enabled bool `yaml:"enabled"`
	// LeadTimeDays, TargetDays and ServiceLevel are the defaults of SKUs
	// File does not name.
	LeadTimeDays float64 `yaml:"lead-time-days"`
	TargetDays   float64 `yaml:"target-days"`
	ServiceLevel float64 `yaml:"service-level"`
	// File overrides lead time and target per SKU: CSV
	// sku,lead_time_days,target_days; default {data-dir}/replenishment.csv.
	// Reloaded within a second.
	File string `yaml:"file"`
	// TimeZone names the calendar of days and weekdays (IANA, e.g.
	// Europe/Berlin; "Local": the machine's). Keep it fixed: learned
	// demand is stored by day.
	TimeZone string `yaml:"time-zone"`
}

// Policy is the default policy r gives SKUs the file does not name.
func (r Replenishment) Policy() replenish.Policy {
	return replenish.Policy{LeadTimeDays: r.LeadTimeDays, TargetDays: r.TargetDays, ServiceLevel: r.ServiceLevel}
}

// Live configures the retained {prefix}/{wh}/stock/{sku} topics.
type Live struct {
	Enabled bool `yaml:"enabled"`
}

// LogConfig configures logging.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// DefaultConfig returns the defaults of SPEC §8.
func DefaultConfig() Config {
	return Config{
		DataDir: "./edgestock-data",
		HTTP:    HTTPConfig{Listen: "127.0.0.1:7070", Auth: "auto"},
		MQTT: MQTTConfig{
			Listen:         "127.0.0.1:1883",
			Anonymous:      "deny",
			TopicPrefix:    "edgestock",
			SessionExpiry:  7 * 24 * time.Hour,
			ReceiveMaximum: 1000,
			KeepAlive:      30,
		},
		Devices:       Devices{Results: "errors", RateLimit: 10000, RateBurst: 20000},
		Filedrop:      FiledropConfig{Device: "filedrop", Settle: time.Second},
		Stock:         Stock{RestockMargin: 1},
		Alerts:        Alerts{Enabled: true},
		Live:          Live{Enabled: true},
		Replenishment: Replenishment{Enabled: true, LeadTimeDays: 7, TargetDays: 14, ServiceLevel: 0.95, TimeZone: "Local"},
		Quarantine: Quarantine{MaxPayload: 64 << 10, DeviceBytes: 16 << 20, TotalBytes: 256 << 20,
			MaxAge: 30 * 24 * time.Hour, MaxRows: 1_000_000},
		Log: LogConfig{Level: "info", Format: "text"},
	}
}

// LoadConfig reads a YAML file over the defaults. Unknown keys are errors
// that name the key and line.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	err := yamlconf.Load(path, &cfg)
	return cfg, err
}

// Normalize fills derived defaults.
func (c *Config) Normalize() {
	if c.Warehouse == "" {
		c.Warehouse = hostWarehouse()
	}
	if c.Stock.ThresholdsFile == "" {
		c.Stock.ThresholdsFile = filepath.Join(c.DataDir, "thresholds.csv")
	}
	if c.Barcodes.File == "" {
		c.Barcodes.File = filepath.Join(c.DataDir, "barcodes.csv")
	}
	if c.Replenishment.File == "" {
		c.Replenishment.File = filepath.Join(c.DataDir, "replenishment.csv")
	}
	if c.MQTT.ClientID == "" {
		c.MQTT.ClientID = "edgestock-agent-" + c.Warehouse
	}
	c.Log.Level = strings.ToLower(c.Log.Level)
}

// hostWarehouse derives an ID from the host name.
func hostWarehouse() string {
	h, _ := os.Hostname()
	var b strings.Builder
	for _, r := range h {
		if drivers.ValidID(string(r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	s := b.String()
	if len(s) > drivers.MaxIDLen {
		s = s[:drivers.MaxIDLen]
	}
	if s == "" {
		s = "warehouse"
	}
	return s
}

// Validate reports every invalid field, each named by its YAML key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if !drivers.ValidID(c.Warehouse) {
		bad("warehouse", "%q must be 1-64 chars of [A-Za-z0-9._-]", c.Warehouse)
	}
	if c.DataDir == "" {
		bad("data-dir", "must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		bad("http.listen", "%q is not host:port", c.HTTP.Listen)
	}
	if c.MQTT.Anonymous != "auto" && c.MQTT.Anonymous != "allow" && c.MQTT.Anonymous != "deny" {
		bad("mqtt.anonymous", "%q must be deny or allow (auto, from older configs, means deny)", c.MQTT.Anonymous)
	}
	if c.HTTP.Auth != "auto" && c.HTTP.Auth != "required" {
		bad("http.auth", "%q must be auto or required", c.HTTP.Auth)
	}
	if c.MQTT.URL == "" {
		if _, _, err := net.SplitHostPort(c.MQTT.Listen); err != nil {
			bad("mqtt.listen", "%q is not host:port", c.MQTT.Listen)
		}
	} else if u, err := url.Parse(c.MQTT.URL); err != nil || u.Host == "" {
		bad("mqtt.url", "%q is not a URL like mqtt://host:1883", c.MQTT.URL)
	} else if s := u.Scheme; s != "mqtt" && s != "tcp" && s != "mqtts" && s != "tls" && s != "ssl" && s != "ws" && s != "wss" {
		bad("mqtt.url", "scheme %q: use mqtt, mqtts, ws or wss", s)
	}
	if c.MQTT.TopicPrefix == "" || strings.ContainsAny(c.MQTT.TopicPrefix, "+#") {
		bad("mqtt.topic-prefix", "%q must be non-empty without wildcards", c.MQTT.TopicPrefix)
	}
	if c.MQTT.SessionExpiry <= 0 || c.MQTT.SessionExpiry > time.Duration(^uint32(0))*time.Second {
		bad("mqtt.session-expiry", "must be > 0 and at most %d s", ^uint32(0))
	}
	if c.MQTT.ReceiveMaximum == 0 {
		bad("mqtt.receive-maximum", "must be > 0")
	}
	if c.Devices.Results != "errors" && c.Devices.Results != "all" {
		bad("devices.results", "%q must be errors or all", c.Devices.Results)
	}
	for _, d := range c.Devices.ResultsAll {
		if !drivers.ValidID(d) {
			bad("devices.results-all", "%q is not a device ID", d)
		}
	}
	for d, mode := range c.Devices.Modes {
		if d != "*" && !drivers.ValidID(d) {
			bad("devices.modes", "%q is not a device ID", d)
		}
		switch mode {
		case drivers.TypeReceive, drivers.TypePick, drivers.TypeCount, drivers.TypeSale, drivers.TypeReturn:
		default:
			bad("devices.modes."+d, "%q must be receive, pick, count, sale or return", mode)
		}
	}
	if c.Devices.RateLimit < 0 || c.Devices.RateBurst < 0 {
		bad("devices.rate-limit", "rate-limit and rate-burst must be >= 0")
	}
	for _, d := range c.Devices.AtLeastOnce {
		if !drivers.ValidID(d) {
			bad("devices.at-least-once", "%q is not a device ID", d)
		}
	}
	if !drivers.ValidID(c.Filedrop.Device) {
		bad("filedrop.device", "%q is not a device ID", c.Filedrop.Device)
	} else if c.Filedrop.Device == ingest.HoldsDevice {
		bad("filedrop.device", "%q is reserved for reservation commits: choose another device ID", c.Filedrop.Device)
	}
	if c.Filedrop.Settle < 0 {
		bad("filedrop.settle", "must be >= 0")
	}
	if c.Stock.LowStockThreshold < 0 {
		bad("stock.low-stock-threshold", "must be >= 0")
	}
	if c.Stock.RestockMargin < 1 {
		bad("stock.restock-margin", "must be >= 1")
	}
	for _, u := range c.Alerts.Webhooks {
		if !httpURL(u) {
			bad("alerts.webhooks", "%q is not an http(s) URL", u)
		}
	}
	if c.Quarantine.MaxPayload <= 0 {
		bad("quarantine.max-payload", "must be > 0 bytes")
	}
	if c.Quarantine.DeviceBytes <= 0 || c.Quarantine.TotalBytes <= 0 {
		bad("quarantine.device-bytes", "device-bytes and total-bytes must be > 0")
	}
	if c.Quarantine.MaxAge <= 0 {
		bad("quarantine.max-age", "must be > 0")
	}
	if c.Quarantine.MaxRows <= 0 {
		bad("quarantine.max-rows", "must be > 0")
	}
	hubs := c.Hub.URLs()
	for _, u := range hubs {
		if !httpURL(u) {
			bad("hub.url", "%q is not an http(s) URL of a hub", u)
		}
	}
	if len(hubs) > 0 && c.Hub.Token == "" {
		bad("hub.token", "an agent that dials its hub needs the hub's uplink token for warehouse %s (--hub-token)", c.Warehouse)
	}
	if err := c.Replenishment.Policy().Validate(); err != nil {
		bad("replenishment", "%v", strings.TrimPrefix(err.Error(), replenish.ErrBadPolicy.Error()+": "))
	}
	if _, err := time.LoadLocation(c.Replenishment.TimeZone); err != nil {
		bad("replenishment.time-zone", "%q is not a time zone (IANA name such as Europe/Berlin, or Local): %v", c.Replenishment.TimeZone, err)
	}
	for id, ch := range c.Channels {
		switch {
		case !drivers.ValidChannel(id):
			bad("channels", "%q is not a channel: 1-64 chars of [A-Za-z0-9._-], not %q", id, store.LocalHolder)
		case ch.Target < 1 || ch.Target > drivers.MaxQty:
			bad("channels."+id+".target", "must be 1..%d", drivers.MaxQty)
		case ch.LowWater < 1 || ch.LowWater > ch.Target:
			bad("channels."+id+".low-water", "must be 1..target (%d)", ch.Target)
		}
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.Log.Level)); err != nil {
		bad("log.level", "%q must be debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "%q must be text or json", c.Log.Format)
	}
	return errors.Join(errs...)
}

// LogLevel is the configured level (valid after Validate).
func (c *Config) LogLevel() slog.Level {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Log.Level))
	return lvl
}
