package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/internal/testenv"
)

// Device A cannot publish as device B nor read B's results; a revoked
// device is disconnected within 1 s and cannot come back.
func TestBrokerAuth_DeviceACL(t *testing.T) {
	a := startAgent(t, t.TempDir(), func(c *agent.Config) { c.MQTT.Anonymous = "deny" })
	ctx := t.Context()
	tokA, claimsA, err := a.IssueToken(ctx, "scanner A", []string{auth.ScopeDevice}, "devA", time.Hour)
	require.NoError(t, err)

	_, err = testenv.DialAuth(ctx, a.MQTTAddr(), "anon", "", "")
	require.Error(t, err, "no anonymous access")
	_, err = testenv.DialAuth(ctx, a.MQTTAddr(), "devB", "devB", tokA)
	require.Error(t, err, "A's token does not log in as B")

	c, err := testenv.DialAuth(ctx, a.MQTTAddr(), "devA", "devA", tokA)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.PublishQoS1(ctx, eventsTopic("devA"), receive("a1", "ACL", 2)))
	err = c.PublishQoS1(ctx, eventsTopic("devB"), receive("b1", "ACL", 5))
	require.Error(t, err, "publishing as B is not authorized")
	subscribe := func(topic string) byte {
		sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topic, QoS: 1}}})
		if sa == nil {
			require.NoError(t, err)
		}
		return sa.Reasons[0]
	}
	require.GreaterOrEqual(t, subscribe("edgestock/wh1/devices/devB/results"), byte(0x80), "B's results are not A's to read")
	require.Less(t, subscribe("edgestock/wh1/devices/devA/results"), byte(0x80))
	// Where the agent answers an MQTT 5 Response Topic: A's own subtree.
	require.Less(t, subscribe("edgestock/wh1/devices/devA/replies/7"), byte(0x80), "a Response Topic of its own")
	require.GreaterOrEqual(t, subscribe("edgestock/wh1/devices/devB/replies/7"), byte(0x80), "B's replies are not A's")
	require.GreaterOrEqual(t, subscribe("edgestock/wh1/devices/devA/#"), byte(0x80), "no wildcard over its own input")
	require.GreaterOrEqual(t, subscribe("edgestock/wh1/devices/devA/events"), byte(0x80), "not a topic the agent ingests")
	require.Less(t, subscribe("edgestock/wh1/stock/#"), byte(0x80))
	require.Less(t, subscribe("edgestock/wh1/status"), byte(0x80))
	require.Equal(t, int64(2), a.OnHand(t, "ACL"), "only A's own event applied")

	start := time.Now()
	require.NoError(t, a.RevokeToken(ctx, claimsA.ID))
	select {
	case <-c.Done():
		require.Less(t, time.Since(start), time.Second+200*time.Millisecond)
	case <-time.After(2 * time.Second):
		t.Fatal("revoked device still connected")
	}
	_, err = testenv.DialAuth(context.Background(), a.MQTTAddr(), "devA", "devA", tokA)
	require.Error(t, err, "and cannot reconnect")
}

// SPEC §6: anonymous MQTT only when enabled explicitly. The default, and
// "auto" from older configs, refuse a client without a login.
func TestBrokerAuth_AnonymousOnlyWhenAllowed(t *testing.T) {
	for _, c := range []struct {
		anonymous string
		allowed   bool
	}{
		{agent.DefaultConfig().MQTT.Anonymous, false},
		{"auto", false},
		{"deny", false},
		{"allow", true},
	} {
		t.Run(c.anonymous, func(t *testing.T) {
			a := startAgent(t, t.TempDir(), func(cfg *agent.Config) { cfg.MQTT.Anonymous = c.anonymous })
			cl, err := testenv.DialErr(t.Context(), a.MQTTAddr(), "anon")
			if c.allowed {
				require.NoError(t, err)
				cl.Close()
				return
			}
			require.Error(t, err, "anonymous client refused on loopback too")
		})
	}
}
