package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoadConfig_ExampleFiles(t *testing.T) {
	files, err := filepath.Glob("../configs/agent*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := LoadConfig(f)
			require.NoError(t, err)
			cfg.Normalize()
			require.NoError(t, cfg.Validate())
		})
	}
	cfg, err := LoadConfig("../configs/agent.yaml")
	require.NoError(t, err)
	require.Equal(t, DefaultConfig(), cfg, "configs/agent.yaml documents the defaults and sets no example value")
}

func TestLoadConfig_Errors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown key", "warehouse: wh1\nmqtt:\n  lisen: x\n", "line 3: mqtt.lisen: unknown key (did you mean mqtt.listen?)"},
		{"bad duration", "mqtt:\n  session-expiry: forever\n", "line 2: mqtt.session-expiry:"},
		{"bad type", "stock:\n  low-stock-threshold: many\n", "line 2: stock.low-stock-threshold:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "agent.yaml")
			require.NoError(t, os.WriteFile(path, []byte(tc.yaml), 0o600))
			_, err := LoadConfig(path)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestConfig_Validate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		field  string
	}{
		{"warehouse", func(c *Config) { c.Warehouse = "wh 1" }, "warehouse:"},
		{"http", func(c *Config) { c.HTTP.Listen = "7070" }, "http.listen:"},
		{"mqtt listen", func(c *Config) { c.MQTT.Listen = "" }, "mqtt.listen:"},
		{"mqtt url", func(c *Config) { c.MQTT.URL = "http://x:1" }, "mqtt.url:"},
		{"prefix", func(c *Config) { c.MQTT.TopicPrefix = "a/#" }, "mqtt.topic-prefix:"},
		{"expiry", func(c *Config) { c.MQTT.SessionExpiry = -time.Second }, "mqtt.session-expiry:"},
		{"results", func(c *Config) { c.Devices.Results = "some" }, "devices.results:"},
		{"level", func(c *Config) { c.Log.Level = "loud" }, "log.level:"},
		{"format", func(c *Config) { c.Log.Format = "xml" }, "log.format:"},
		{"channel local", func(c *Config) { c.Channels = map[string]ChannelConfig{"local": {Target: 2, LowWater: 1}} }, "channels:"},
		{"low-water", func(c *Config) { c.Channels = map[string]ChannelConfig{"web": {Target: 2, LowWater: 3}} }, "channels.web.low-water:"},
		{"target", func(c *Config) { c.Channels = map[string]ChannelConfig{"web": {LowWater: 1}} }, "channels.web.target:"},
		{"hub url", func(c *Config) { c.Hub = HubUplink{URL: "https://h1,h2:7080", Token: "t"} }, "hub.url:"},
		{"hub token", func(c *Config) { c.Hub = HubUplink{URL: "https://h1"} }, "hub.token:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Warehouse = "wh1"
			tc.mutate(&cfg)
			err := cfg.Validate()
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), tc.field), err.Error())
		})
	}
	cfg := DefaultConfig()
	cfg.Normalize()
	require.NoError(t, cfg.Validate(), "defaults with the host name as warehouse are valid")
	require.Equal(t, "edgestock-agent-"+cfg.Warehouse, cfg.MQTT.ClientID)
}

// hub.url (SPEC §11) holds one hub or several, comma-separated, as
// --hub does.
func TestConfig_HubURLs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.yaml")
	require.NoError(t, os.WriteFile(path, []byte("warehouse: wh1\nhub:\n  url: https://h1.example.com, https://h2.example.com:7080\n  token: t\n"), 0o600))
	cfg, err := LoadConfig(path)
	require.NoError(t, err)
	require.Equal(t, []string{"https://h1.example.com", "https://h2.example.com:7080"}, cfg.Hub.URLs())
	require.NoError(t, cfg.Validate())
	require.Empty(t, DefaultConfig().Hub.URLs(), "no hub: the hub dials the agent")
}
