package agent_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
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
	require.Equal(t, int64(2), a.OnHand(t, "MQTTS"))
}

// SPEC §6: TLS to an external broker, with its CA pinned and a client
// certificate. mosquitto requires client certificates: the agent with one
// connects (through its own dialler and buffered connection) and ingests
// what a device publishes; without one it never becomes ready.
func TestTLS_ExternalMQTTSClientCert(t *testing.T) {
	files := testenv.TLS(t)
	// user root: started as root, mosquitto drops to user mosquitto, which
	// cannot read the test's private temp dir (no effect as another user).
	// Devices use a second, plain listener: the TLS under test is the agent's.
	plain := testenv.FreeAddr(t)
	_, plainPort, _ := net.SplitHostPort(plain)
	m := testenv.StartMosquitto(t, "cafile "+files.CA, "certfile "+files.Cert, "keyfile "+files.Key, "require_certificate true",
		"user root", "listener "+plainPort+" 127.0.0.1")
	external := func(cert, key string) func(*agent.Config) {
		return func(c *agent.Config) {
			c.MQTT.URL = "mqtts://" + m.Addr
			c.MQTT.TLSCA, c.MQTT.TLSCert, c.MQTT.TLSKey = files.CA, cert, key
		}
	}
	a := startAgent(t, t.TempDir(), external(files.ClientCert, files.ClientKey))

	dev := testenv.Dial(t, plain, "tls-ext-dev")
	require.NoError(t, dev.PublishQoS1(t.Context(), eventsTopic("tls-ext-dev"), receive("x1", "MQTTS-EXT", 3)))
	require.Eventually(t, func() bool { return a.OnHand(t, "MQTTS-EXT") == 3 }, 10*time.Second, 10*time.Millisecond)

	noCert := startAgentNoWait(t, t.TempDir(), external("", ""))
	ready := func() bool {
		resp, err := http.Get(noCert.Base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	require.Never(t, ready, time.Second, 50*time.Millisecond,
		"an agent without a client certificate is refused by the broker")
}
