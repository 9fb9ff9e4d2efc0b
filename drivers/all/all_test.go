package all

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/drivers"
)

// Every built-in driver is in the registry, each on its own topic kind, and
// each can be built with an empty environment.
func TestRegistered(t *testing.T) {
	topics := map[string]string{}
	for _, r := range drivers.Registered() {
		topics[r.Name] = r.Topic
		d, err := r.New(drivers.Env{})
		require.NoError(t, err, r.Name)
		require.NotNil(t, d, r.Name)
	}
	require.Equal(t, map[string]string{"events": "events", "scanner": "scan", "pos": "pos", "filedrop": ""}, topics)
}
