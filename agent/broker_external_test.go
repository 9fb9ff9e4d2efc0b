package agent

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// The agent dials mqtt and mqtts brokers itself (buffered connection);
// WebSocket URLs keep autopaho's own dialler.
func TestDialer_Schemes(t *testing.T) {
	for scheme, own := range map[string]bool{"mqtt": true, "tcp": true, "mqtts": true, "tls": true, "ssl": true, "ws": false, "wss": false} {
		u, err := url.Parse(scheme + "://127.0.0.1:1883")
		require.NoError(t, err)
		require.Equal(t, own, dialer(u) != nil, scheme)
	}
}
