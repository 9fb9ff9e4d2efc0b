package yamlconf_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/yamlconf"
)

type mqttConfig struct {
	Listen    string        `yaml:"listen"`
	Anonymous string        `yaml:"anonymous"`
	KeepAlive int           `yaml:"keep-alive"`
	Expiry    time.Duration `yaml:"session-expiry"`
}

type channel struct {
	Target   int `yaml:"target"`
	LowWater int `yaml:"low-water"`
}

type config struct {
	Warehouse string             `yaml:"warehouse"`
	MQTT      mqttConfig         `yaml:"mqtt"`
	Channels  map[string]channel `yaml:"channels"`
	Agents    map[string]string  `yaml:"agents"`
	Hooks     []struct {
		URL string `yaml:"url"`
	} `yaml:"webhooks"`
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		errs       []string // each must appear in the error; none: no error
	}{
		{"valid", "warehouse: wh1\nmqtt:\n  anonymous: deny\n  session-expiry: 1h\nchannels:\n  web: {target: 5}\n", nil},
		{"empty file", "", nil},
		{"typo in a section", "mqtt:\n  anonymus: deny\n",
			[]string{"line 2: mqtt.anonymus: unknown key (did you mean mqtt.anonymous?)"}},
		{"typo at the top", "warehose: wh1\n", []string{"line 1: warehose: unknown key (did you mean warehouse?)"}},
		{"typo in a map value", "channels:\n  web:\n    low_water: 3\n",
			[]string{"line 3: channels.web.low_water: unknown key (did you mean channels.web.low-water?)"}},
		{"typo in a list item", "webhooks:\n  - urll: x\n", []string{"line 2: webhooks[0].urll: unknown key (did you mean webhooks[0].url?)"}},
		{"far from anything", "mqtt:\n  frobnicate: 1\n",
			[]string{"line 2: mqtt.frobnicate: unknown key (known keys of mqtt: anonymous, keep-alive, listen, session-expiry)"}},
		{"every unknown key at once", "mqtt:\n  lisen: x\nwarehose: y\n",
			[]string{"line 2: mqtt.lisen: unknown key (did you mean mqtt.listen?)", "line 3: warehose: unknown key"}},
		{"a wrong type names its key", "mqtt:\n  keep-alive: soon\n", []string{"line 2: mqtt.keep-alive: cannot unmarshal"}},
		{"syntax error", "mqtt: [\n", []string{"line"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg config
			err := yamlconf.Decode([]byte(tc.yaml), &cfg)
			if tc.errs == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, e := range tc.errs {
				require.Contains(t, err.Error(), e)
			}
			require.NotContains(t, err.Error(), "yamlconf_test.", "no Go type names")
		})
	}
}

func TestLoad_NamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.yaml")
	require.NoError(t, os.WriteFile(path, []byte("mqtt:\n  anonymus: deny\n"), 0o600))
	var cfg config
	err := yamlconf.Load(path, &cfg)
	require.ErrorContains(t, err, path+": unknown keys:\n  line 2: mqtt.anonymus: unknown key (did you mean mqtt.anonymous?)")
}
