package hub

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLoadFileConfig_Example(t *testing.T) {
	cfg, err := LoadFileConfig("../../configs/hub.yaml")
	require.NoError(t, err)
	sc, err := cfg.Validate()
	require.NoError(t, err)
	require.Empty(t, sc.Agents, "the shipped config names no example agent")
	require.Equal(t, "127.0.0.1:7080", sc.HTTP)
	require.Equal(t, LogConfig{Level: "info", Format: "text"}, cfg.Log)
}

func TestFileConfig_Validate(t *testing.T) {
	cfg := DefaultFileConfig()
	cfg.Store = "mysql://x"
	cfg.Agents = map[string]string{"wh 1": "http://x", "wh2": "ftp://x"}
	cfg.Log = LogConfig{Level: "loud", Format: "xml"}
	_, err := cfg.Validate()
	require.ErrorContains(t, err, `log.level: "loud" must be debug, info, warn or error`)
	require.ErrorContains(t, err, `log.format: "xml" must be text or json`)
	require.ErrorContains(t, err, "store:")
	require.ErrorContains(t, err, `agents: "wh 1" is not a warehouse ID`)
	require.ErrorContains(t, err, `agents.wh2: "ftp://x" is not an http(s) URL`)
	_, _, err = ParseAgentFlag("wh1")
	require.ErrorContains(t, err, "WAREHOUSE=URL")

	cfg = DefaultFileConfig()
	cfg.Webhooks = []WebhookConfig{{Name: "oms", URL: "https://oms.example/h", Secret: "0123456789abcdef"},
		{Name: "oms", URL: "https://x", Secret: "0123456789abcdef"}, {Name: "short", URL: "https://x", Secret: "s"},
		{Name: "ch", URL: "https://x", Secret: "0123456789abcdef", Channel: "local"}, {Name: "ftp", URL: "ftp://x", Secret: "0123456789abcdef"}}
	sc, err := cfg.Validate()
	require.ErrorContains(t, err, `webhooks[1].name: "oms" must be a unique ID`)
	require.ErrorContains(t, err, "webhooks.short.secret: at least 16 characters")
	require.ErrorContains(t, err, `webhooks.ch.channel: "local" is not a channel`)
	require.ErrorContains(t, err, `webhooks.ftp.url: "ftp://x" is not an http(s) URL`)
	require.Zero(t, sc.Webhooks[0].MaxAttempts, "the default: retried until delivered (SPEC §10)")

	cfg = DefaultFileConfig()
	cfg.Publish = PublishConfig{URL: "http://broker:1883", TopicPrefix: "a/#", Channels: []string{"local"}}
	_, err = cfg.Validate()
	require.ErrorContains(t, err, `publish.url: "http://broker:1883" is not an mqtt:// or mqtts:// URL`)
	require.ErrorContains(t, err, `publish.channels: "local" is not a channel`)
	cfg.Publish = PublishConfig{URL: "mqtt://broker:1883"}
	sc, err = cfg.Validate()
	require.NoError(t, err)
	require.Equal(t, "edgestock", sc.Publish.TopicPrefix, "the default")

	cfg = DefaultFileConfig()
	cfg.Name = "east 1"
	_, err = cfg.Validate()
	require.ErrorContains(t, err, `name: "east 1" is not an ID`)
}

// A webhook's events pick its sources: orders of its channel without the
// channel's ats events unless asked for; the default as before.
func TestWebhook_Source(t *testing.T) {
	o := Webhook{Events: []string{"order"}, Channel: "web"}.source()
	require.True(t, o.orders)
	require.False(t, o.ats, "orders only: no ats events")
	require.False(t, o.stock)
	require.Equal(t, []string{"web"}, o.channels)
	o = Webhook{Events: []string{"ats", "alert"}, Channel: "web"}.source()
	require.True(t, o.ats && o.alerts && !o.orders && !o.stock)
	require.Equal(t, sourceOptions{stock: true}, Webhook{}.source())
	require.Equal(t, sourceOptions{ats: true, channels: []string{"web"}}, Webhook{Channel: "web"}.source())
}
