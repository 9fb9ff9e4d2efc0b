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
}
