package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/internal/ingest"
	"github.com/edgestock/edgestock/internal/testenv"
)

// logLines records an agent's log, one text line per record.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
	h   slog.Handler
}

func newLogLines() *logLines {
	l := &logLines{}
	l.h = slog.NewTextHandler(lockedWriter{l}, &slog.HandlerOptions{Level: slog.LevelDebug})
	return l
}

type lockedWriter struct{ l *logLines }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	return w.l.buf.Write(p)
}

func (l *logLines) logger() *slog.Logger { return slog.New(l.h) }

// matching returns the lines containing every one of parts.
func (l *logLines) matching(parts ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.buf.String(), "\n") {
		ok := line != ""
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// startAgentLogs starts an agent on its embedded broker, recording its log.
func startAgentLogs(t *testing.T, mutate func(*agent.Config)) (*testAgent, *logLines) {
	t.Helper()
	logs := newLogLines()
	a := startAgentLogger(t, t.TempDir(), mutate, logs.logger())
	require.Eventually(t, func() bool { return a.Get(t, "/readyz", nil) == 200 }, 10*time.Second, 10*time.Millisecond)
	return a, logs
}

// dialWill connects an MQTT 5 client with a will; it returns the CONNACK.
func dialWill(t *testing.T, addr, device, password string, will *paho.WillMessage) (*paho.Connack, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	c := paho.NewClient(paho.ClientConfig{ClientID: device, Conn: conn})
	t.Cleanup(func() { _ = conn.Close() })
	cp := &paho.Connect{ClientID: device, KeepAlive: 30, CleanStart: true, WillMessage: will}
	if password != "" {
		cp.Username, cp.UsernameFlag, cp.Password, cp.PasswordFlag = device, true, []byte(password), true
	}
	return c.Connect(t.Context(), cp)
}

// A will is checked like a publish: a device cannot use one to leave a
// retained stock level or status, nor a message on another device's topics,
// nor anything retained on a device topic. Refused: CONNACK "not
// authorized" with the reason, and one log line naming client and device.
func TestBrokerAuth_WillChecked(t *testing.T) {
	const base = "edgestock/" + wh + "/"
	a, logs := startAgentLogs(t, func(c *agent.Config) { c.MQTT.Anonymous = "deny" })
	token, _, err := a.IssueToken(t.Context(), "scanner", []string{auth.ScopeDevice}, "devW", time.Hour)
	require.NoError(t, err)
	for _, c := range []struct {
		name    string
		topic   string
		retain  bool
		refused bool
	}{
		{"fake stock level", base + "stock/SKU-1", true, true},
		{"fake offline status", base + "status", true, true},
		{"another device's results", base + "devices/devX/results", false, true},
		{"retained on its own topic", base + "devices/devW/state", true, true},
		{"its own topic", base + "devices/devW/state", false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			will := &paho.WillMessage{Topic: c.topic, QoS: 1, Retain: c.retain, Payload: []byte(`{"on_hand":999999}`)}
			ca, err := dialWill(t, a.MQTTAddr(), "devW", token, will)
			if !c.refused {
				require.NoError(t, err)
				return
			}
			require.Error(t, err, "the will is refused")
			require.NotNil(t, ca)
			require.Equal(t, byte(0x87), ca.ReasonCode, "not authorized")
			require.Contains(t, ca.Properties.ReasonString, "will refused")
			require.Len(t, logs.matching("mqtt connection refused: will not allowed", "client=devW", "device=devW", "topic="+c.topic), 1)
		})
	}
	require.Empty(t, logs.matching(`msg=""`), "no empty warnings")
}

// No client retains a message on a device topic (SPEC §3: the agent
// ingests them; retained, the broker would hand them out again as
// current). Not even with anonymous access: on an ingest topic it is
// rejected, quarantined and answered (MQTT 5: PUBACK "not authorized"),
// nothing applied; elsewhere under devices/ it is refused and not kept.
func TestEmbedded_RetainedDeviceTopicRefused(t *testing.T) {
	a, logs := startAgentLogs(t, nil) // anonymous, as startAgent's tests are
	ctx := t.Context()
	watcher := testenv.Dial(t, a.MQTTAddr(), "watcher")
	watcher.SubscribeQoS1(t, "edgestock/"+wh+"/devices/devR/results")
	dev := testenv.Dial(t, a.MQTTAddr(), "devR")

	pr, err := dev.Publish(ctx, &paho.Publish{Topic: eventsTopic("devR"), QoS: 1, Retain: true, Payload: receive("r1", "RET", 5)})
	require.Error(t, err, "MQTT 5 hears the refusal")
	require.Equal(t, byte(0x87), pr.ReasonCode)
	require.Contains(t, pr.Properties.ReasonString, "never retained")
	require.Equal(t, int64(0), a.OnHand(t, "RET"), "nothing applied")
	q := a.Quarantine(t)
	require.Len(t, q, 1)
	require.Equal(t, "unauthorized", q[0].Reason)
	require.Equal(t, "devR", q[0].Device)
	select {
	case m := <-watcher.Received:
		var res ingest.Result
		require.NoError(t, json.Unmarshal(m.Payload, &res))
		require.Equal(t, ingest.StatusRejected, res.Status)
		require.Contains(t, res.Message, "never retained")
	case <-time.After(10 * time.Second):
		t.Fatal("no result for the device")
	}

	const state = "edgestock/" + wh + "/devices/devR/state"
	pr, err = dev.Publish(ctx, &paho.Publish{Topic: state, QoS: 1, Retain: true, Payload: []byte("online")})
	require.Error(t, err)
	require.Equal(t, byte(0x87), pr.ReasonCode)
	// Ordered after the refused one: had it been kept, it would come first.
	require.NoError(t, dev.PublishQoS1(ctx, "edgestock/"+wh+"/devices/devR/marker", []byte("x")))
	late := testenv.Dial(t, a.MQTTAddr(), "late")
	late.SubscribeQoS1(t, state)
	require.NoError(t, dev.PublishQoS1(ctx, state, []byte("now")))
	select {
	case m := <-late.Received:
		require.Equal(t, "now", string(m.Payload), "the retained publish was not kept")
	case <-time.After(10 * time.Second):
		t.Fatal("subscriber got nothing")
	}
	require.Len(t, logs.matching("mqtt publish refused", "client=devR", "device=devR", "topic="+eventsTopic("devR"), "retain=true"), 1)
	require.Len(t, logs.matching("mqtt publish refused", "client=devR", "device=devR", "topic="+state, "retain=true"), 1)
}

// A publish outside the device's topics is refused with one clear log line
// (client, device, topic, reason): no empty message, no packet dump.
// MQTT 5 gets PUBACK "not authorized"; 3.1.1 (mosquitto_pub) is disconnected.
func TestBrokerAuth_RefusedPublishOneLogLine(t *testing.T) {
	a, logs := startAgentLogs(t, func(c *agent.Config) { c.MQTT.Anonymous = "deny" })
	token, _, err := a.IssueToken(t.Context(), "scanner", []string{auth.ScopeDevice}, "devL", time.Hour)
	require.NoError(t, err)
	payload := receive("x1", "LOG", 1)
	payload = append(payload[:len(payload)-1], []byte(`,"note":"`+strings.Repeat("z", 2048)+`"}`)...)

	c, err := testenv.DialAuth(t.Context(), a.MQTTAddr(), "devL-5", "devL", token)
	require.NoError(t, err)
	defer c.Close()
	pr, err := c.Publish(t.Context(), &paho.Publish{Topic: eventsTopic("devOther"), QoS: 1, Payload: payload})
	require.Error(t, err)
	require.Equal(t, byte(0x87), pr.ReasonCode)
	require.Len(t, logs.matching("mqtt publish refused", "client=devL-5", "device=devL", "topic="+eventsTopic("devOther"), "reason="), 1)

	if pub, err := exec.LookPath("mosquitto_pub"); err == nil {
		host, port, _ := net.SplitHostPort(a.MQTTAddr())
		out, err := exec.Command(pub, "-h", host, "-p", port, "-V", "mqttv311", "-q", "1", "-i", "devL-3", "-u", "devL", "-P", token,
			"-t", eventsTopic("devOther"), "-m", string(payload)).CombinedOutput()
		require.Error(t, err, string(out))
		require.Eventually(t, func() bool {
			return len(logs.matching("mqtt publish refused", "client=devL-3", "device=devL", "disconnected")) == 1
		}, 10*time.Second, 10*time.Millisecond)
	}
	require.Empty(t, logs.matching(`msg=""`), "no empty warnings")
	require.Empty(t, logs.matching("zzzzzzzz"), "no packet dump")
	require.Equal(t, int64(0), a.OnHand(t, "LOG"))
}

// A payload over the 256 KiB limit is rejected too_large and quarantined
// with its first 4 KiB; a packet over the broker's limit cannot be read,
// so its client is disconnected and one log line names client and device.
// MQTT 5 clients are told the limit in the CONNACK.
func TestEmbedded_OversizePublish(t *testing.T) {
	a, logs := startAgentLogs(t, func(c *agent.Config) { c.MQTT.Anonymous = "deny" })
	token, _, err := a.IssueToken(t.Context(), "scanner", []string{auth.ScopeDevice}, "devBig", time.Hour)
	require.NoError(t, err)
	conn, err := net.DialTimeout("tcp", a.MQTTAddr(), 5*time.Second)
	require.NoError(t, err)
	c := paho.NewClient(paho.ClientConfig{ClientID: "big-1", Conn: conn})
	defer conn.Close()
	ca, err := c.Connect(t.Context(), &paho.Connect{ClientID: "big-1", KeepAlive: 30, CleanStart: true,
		Username: "devBig", UsernameFlag: true, Password: []byte(token), PasswordFlag: true})
	require.NoError(t, err)
	require.NotNil(t, ca.Properties.MaximumPacketSize, "the CONNACK says the packet limit")
	limit := int(*ca.Properties.MaximumPacketSize)
	require.Greater(t, limit, 256<<10+1024, "room for a 256 KiB payload and its topic")

	_, err = c.Publish(t.Context(), &paho.Publish{Topic: eventsTopic("devBig"), QoS: 1, Payload: bytes.Repeat([]byte("a"), 300<<10)})
	require.NoError(t, err)
	q := a.Quarantine(t)
	require.Len(t, q, 1)
	require.Equal(t, "too_large", q[0].Reason)
	require.NotNil(t, q[0].Payload)
	require.Len(t, *q[0].Payload, 4<<10)

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = c.Publish(ctx, &paho.Publish{Topic: eventsTopic("devBig"), QoS: 1, Payload: bytes.Repeat([]byte("b"), limit)})
	require.Error(t, err, "over the packet limit: disconnected")
	require.Eventually(t, func() bool {
		return len(logs.matching("over the broker's limit", "client=big-1", "device=devBig")) == 1
	}, 10*time.Second, 10*time.Millisecond)
	require.Empty(t, logs.matching(`msg=""`), "no empty warnings")
}
