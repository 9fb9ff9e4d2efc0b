package agent_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/internal/testenv"
	"github.com/edgestock/edgestock/internal/tlsconf"
)

// The embedded broker speaks MQTTS: a device trusting the CA publishes; one
// trusting another CA fails the handshake.
func TestTLS_EmbeddedMQTTS(t *testing.T) {
	files := testenv.TLS(t)
	a := startAgent(t, t.TempDir(), func(c *agent.Config) { c.MQTT.TLSCert, c.MQTT.TLSKey = files.Cert, files.Key })
	dial := func(ca string) (net.Conn, error) {
		cfg, err := tlsconf.Client(ca, "", "")
		require.NoError(t, err)
		return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", a.MQTTAddr(), cfg)
	}
	_, err := dial(files.OtherCA)
	var certErr *tls.CertificateVerificationError
	require.ErrorAs(t, err, &certErr)

	conn, err := dial(files.CA)
	require.NoError(t, err)
	c := paho.NewClient(paho.ClientConfig{ClientID: "tls-dev", Conn: conn})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = c.Connect(ctx, &paho.Connect{ClientID: "tls-dev", KeepAlive: 30, CleanStart: true})
	require.NoError(t, err)
	defer c.Disconnect(&paho.Disconnect{})
	_, err = c.Publish(ctx, &paho.Publish{Topic: eventsTopic("tls-dev"), QoS: 1, Payload: receive("t1", "MQTTS", 2)})
	require.NoError(t, err)
	require.Equal(t, int64(2), a.onHand(t, "MQTTS"))
}
