package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/testenv"
)

func TestMain_Run(t *testing.T) {
	badConfig := filepath.Join(t.TempDir(), "agent.yaml")
	require.NoError(t, os.WriteFile(badConfig, []byte("mqtt:\n  lisen: x\n"), 0o600))
	invalid := filepath.Join(t.TempDir(), "agent.yaml")
	require.NoError(t, os.WriteFile(invalid, []byte("log:\n  level: loud\n"), 0o600))
	hubTypo := filepath.Join(t.TempDir(), "hub.yaml")
	require.NoError(t, os.WriteFile(hubTypo, []byte("agent-token: {}\n"), 0o600))
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"version", []string{"version"}, exitOK, "edgestock ", ""},
		{"no command", nil, exitUsage, "", "usage: edgestock"},
		{"unknown command", []string{"frobnicate"}, exitUsage, "", `unknown command "frobnicate"`},
		{"unknown flag", []string{"agent", "--nope"}, exitUsage, "", "agent: unknown flag --nope (see edgestock agent -h)"},
		{"unknown config key", []string{"agent", "--config", badConfig}, exitUsage, "", "line 2: mqtt.lisen: unknown key (did you mean mqtt.listen?)"},
		{"invalid config value", []string{"agent", "--config", invalid}, exitUsage, "", "log.level:"},
		{"missing config", []string{"agent", "--config", "/nonexistent.yaml"}, exitUsage, "", "no such file"},
		{"bad warehouse flag", []string{"agent", "--warehouse", "a b"}, exitUsage, "", "warehouse:"},
		{"config check agent example", []string{"config", "check", "../../configs/agent.yaml"}, exitOK, "ok (agent)", ""},
		{"config check hub example", []string{"config", "check", "../../configs/hub.yaml"}, exitOK, "ok (hub)", ""},
		{"config check unknown key", []string{"config", "check", badConfig}, exitUsage, "", "line 2: mqtt.lisen: unknown key (did you mean mqtt.listen?)"},
		{"config check hub typo", []string{"config", "check", "--role", "hub", hubTypo}, exitUsage, "", "line 1: agent-token: unknown key (did you mean agent-tokens?)"},
		{"config check flag after the file", []string{"config", "check", "../../configs/hub.yaml", "--role", "hub"}, exitOK, "ok (hub)", ""},
		{"config check bad value", []string{"config", "check", invalid}, exitUsage, "", "log.level:"},
		{"config check no file", []string{"config", "check"}, exitUsage, "", "config check: want FILE"},
		// -h prints the command's own usage to stdout and succeeds.
		{"agent -h", []string{"agent", "-h"}, exitOK, "--mqtt-url", ""},
		{"hub -h", []string{"hub", "-h"}, exitOK, "--log-format", ""},
		{"config check -h", []string{"config", "check", "-h"}, exitOK, "--role", ""},
		{"token issue -h", []string{"token", "issue", "-h"}, exitOK, "--scope", ""},
		{"status -h", []string{"status", "-h"}, exitOK, "--url", ""},
		{"simulate devices -h", []string{"simulate", "devices", "-h"}, exitOK, "--events", ""},
		{"simulate sites -h", []string{"simulate", "sites", "-h"}, exitOK, "--count", ""},
		{"--version", []string{"--version"}, exitOK, "edgestock ", ""},
		{"help COMMAND", []string{"help", "token", "revoke"}, exitOK, "usage: edgestock token revoke ID", ""},
		// An empty flag value (--token $UNSET) is named once, with no usage dump.
		{"flag without a value", []string{"status", "--token"}, exitUsage, "", "edgestock: status: --token needs a value (an unset shell variable, as in --token $UNSET, gives none) (see edgestock status -h)\n"},
		{"flags before a subcommand", []string{"token", "--data-dir", "x", "list"}, exitUsage, "", "token: the command comes first"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := (&Main{Stdout: &stdout, Stderr: &stderr}).Run(t.Context(), tc.args)
			require.Equal(t, tc.code, code, stderr.String())
			require.Contains(t, stdout.String(), tc.stdout)
			require.Contains(t, stderr.String(), tc.stderr)
		})
	}
}

func TestMain_RunAgentPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	var stderr bytes.Buffer
	code := (&Main{Stdout: &stderr, Stderr: &stderr}).Run(context.Background(), []string{"agent", "--warehouse", "wh1",
		"--data-dir", t.TempDir(), "--mqtt-listen", "127.0.0.1:0", "--http", ln.Addr().String()})
	require.Equal(t, exitFailure, code)
	require.Contains(t, stderr.String(), "http.listen "+ln.Addr().String())
}

// The README tour: mosquitto_pub publishes a receive of 5, curl sees 5.
// mosquitto_pub speaks MQTT 3.1.1 by default; the tour also runs with v5
// and QoS 2.
func TestTour_MosquittoPub(t *testing.T) {
	pub, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		testenv.Missing(t, "mosquitto_pub (mosquitto-clients)")
	}
	mqttAddr := testenv.FreeAddr(t)
	c := startChild(t, "agent", "--warehouse", "wh1", "--data-dir", t.TempDir(), "--http", testenv.FreeAddr(t), "--mqtt-listen", mqttAddr, "--mqtt-anonymous", "allow")
	host, port, _ := net.SplitHostPort(mqttAddr)
	for i, extra := range [][]string{{"-q", "1"}, {"-q", "1", "-V", "mqttv5"}, {"-q", "2"}} {
		args := append([]string{"-h", host, "-p", port, "-t", "edgestock/wh1/devices/d1/events", "-i", "tour",
			"-m", `{"id":"scn1-00000` + string(rune('1'+i)) + `","type":"receive","sku":"SKU-1","qty":5}`}, extra...)
		out, err := exec.Command(pub, args...).CombinedOutput()
		require.NoError(t, err, string(out))
		require.Equal(t, int64(5*(i+1)), c.onHand(t, "SKU-1"), "mosquitto_pub %v: its PUBACK came after the commit", extra)
	}
}

// token issue/list/revoke on a data dir; the running agent honours a
// revocation on the next request.
func TestMain_Token(t *testing.T) {
	dir := t.TempDir()
	httpAddr := testenv.FreeAddr(t)
	config := filepath.Join(t.TempDir(), "agent.yaml")
	require.NoError(t, os.WriteFile(config, []byte("http:\n  auth: required\n"), 0o600))
	c := startChild(t, "agent", "--config", config, "--warehouse", "wh1", "--data-dir", dir, "--http", httpAddr, "--mqtt-listen", testenv.FreeAddr(t))
	get := func(token string) int {
		req, err := http.NewRequest("GET", c.base+"/v1/events", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := (&Main{Stdout: &stdout, Stderr: &stderr}).Run(t.Context(), args)
		return code, stdout.String(), stderr.String()
	}
	code, _, stderr := run("token", "issue", "--data-dir", dir, "--name", "ops")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "--name and --scope are required")
	code, _, stderr = run("token", "issue", "--data-dir", dir, "--name", "ops", "--scope", "stock:read,root")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, `scope "root"`)
	code, token, stderr := run("token", "issue", "--data-dir", dir, "--name", "ops", "--scope", "stock:read")
	require.Equal(t, exitOK, code, stderr)
	token = strings.TrimSpace(token)
	require.True(t, strings.HasPrefix(token, "es1."))
	id := strings.Fields(stderr)[1]

	code, out, _ := run("token", "list", "--data-dir", dir)
	require.Equal(t, exitOK, code)
	require.Contains(t, out, id)
	require.Contains(t, out, "valid")

	require.Equal(t, http.StatusOK, get(token), "the running agent accepts a token issued beside it")
	code, _, stderr = run("token", "revoke", id, "--data-dir", dir)
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, http.StatusUnauthorized, get(token), "and refuses it on the next request once revoked")
	code, out, _ = run("token", "list", "--data-dir", dir)
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "revoked")
	code, _, stderr = run("token", "revoke", "--data-dir", dir, "tok-nope")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "no such token")
	empty := t.TempDir()
	code, _, stderr = run("token", "list", "--data-dir", empty)
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "no agent database at "+filepath.Join(empty, "edgestock.db"), "says where it looked")
}

// mosquitto_pub, logged in as device A, cannot publish as device B.
func TestTour_MosquittoPubNotAuthorized(t *testing.T) {
	pub, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		testenv.Missing(t, "mosquitto_pub (mosquitto-clients)")
	}
	dir := t.TempDir()
	mqttAddr := testenv.FreeAddr(t)
	config := filepath.Join(t.TempDir(), "agent.yaml")
	require.NoError(t, os.WriteFile(config, []byte("mqtt:\n  anonymous: deny\n"), 0o600))
	var stdout, stderr bytes.Buffer
	// The device token comes first, on the fresh data dir.
	require.Equal(t, exitOK, (&Main{Stdout: &stdout, Stderr: &stderr}).Run(t.Context(),
		[]string{"token", "issue", "--warehouse", "wh1", "--data-dir", dir, "--name", "devA", "--scope", "device", "--device", "devA"}), stderr.String())
	token := strings.TrimSpace(stdout.String())
	c := startChild(t, "agent", "--config", config, "--warehouse", "wh1", "--data-dir", dir, "--http", testenv.FreeAddr(t), "--mqtt-listen", mqttAddr)
	host, port, _ := net.SplitHostPort(mqttAddr)
	publish := func(device string) (string, error) {
		out, err := exec.Command(pub, "-h", host, "-p", port, "-V", "mqttv5", "-q", "1", "-i", "devA", "-u", "devA", "-P", token,
			"-t", "edgestock/wh1/devices/"+device+"/events", "-m", `{"id":"x-`+device+`","type":"receive","sku":"AUTH","qty":1}`).CombinedOutput()
		return string(out), err
	}
	out, err := publish("devA")
	require.NoError(t, err, out)
	out, err = publish("devB")
	require.True(t, err != nil || strings.Contains(strings.ToLower(out), "not authorized"), "mosquitto_pub as A to B's topic: %v %s", err, out)
	require.Contains(t, strings.ToLower(out), "not authorized")
	require.Equal(t, int64(1), c.onHand(t, "AUTH"), "only A's own event applied")
}

// edgestock status and stock against a running agent.
func TestMain_StatusAndStock(t *testing.T) {
	httpAddr := testenv.FreeAddr(t)
	c := startChild(t, "agent", "--warehouse", "wh1", "--data-dir", t.TempDir(), "--http", httpAddr, "--mqtt-listen", testenv.FreeAddr(t))
	resp, err := http.Post(c.base+"/v1/events", "application/json", strings.NewReader(`[{"id":"1","type":"receive","sku":"SKU-1","qty":5},{"id":"2","type":"receive","sku":"SKU-2","qty":2,"location":"A-1"}]`))
	require.NoError(t, err)
	resp.Body.Close()
	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := (&Main{Stdout: &stdout, Stderr: &stderr}).Run(t.Context(), args)
		return code, stdout.String(), stderr.String()
	}
	code, out, errOut := run("status", "--url", c.base)
	require.Equal(t, exitOK, code, errOut)
	require.Regexp(t, `(?m)^warehouse\s+wh1$`, out)
	require.Regexp(t, `(?m)^replica\s+wh1\.[0-9a-f]{16}$`, out)
	require.Regexp(t, `(?m)^events/s\s+[0-9.]+ \(last minute; 2 applied since start\)$`, out)
	require.Regexp(t, `(?m)^pending deltas\s+2$`, out)
	require.Regexp(t, `(?m)^last hub contact\s+never$`, out)

	code, out, errOut = run("stock", "--url", c.base)
	require.Equal(t, exitOK, code, errOut)
	require.Regexp(t, `SKU-1\s+5\s+0\s+5\s+5\s+default=5`, out)
	require.Regexp(t, `SKU-2\s+2\s+0\s+2\s+2\s+A-1=2`, out)
	code, _, errOut = run("stock", "NOPE", "--url", c.base)
	require.Equal(t, exitFailure, code)
	require.Contains(t, errOut, "404")
	code, _, errOut = run("status", "--url", "http://"+testenv.FreeAddr(t))
	require.Equal(t, exitFailure, code)
	require.Contains(t, errOut, "is the agent or hub running at --url?")
}

// simulate against a running agent: sent = acked = applied + duplicates +
// rejected, and the agent's /metrics agree. --events makes the count exact
// whatever the machine's speed (a rate x duration run sends fewer when
// ticks are dropped).
func TestMain_Simulate(t *testing.T) {
	mqttAddr := testenv.FreeAddr(t)
	c := startChild(t, "agent", "--warehouse", "wh1", "--data-dir", t.TempDir(), "--http", testenv.FreeAddr(t), "--mqtt-listen", mqttAddr, "--mqtt-anonymous", "allow")
	var stdout, stderr bytes.Buffer
	code := (&Main{Stdout: &stdout, Stderr: &stderr}).Run(t.Context(), []string{"simulate", "devices", "--mqtt-url", "mqtt://" + mqttAddr,
		"--devices", "4", "--rate", "400", "--events", "400", "--skus", "20", "--duplicates", "0.1", "--malformed", "0.05"})
	require.Equal(t, exitOK, code, stderr.String())
	var sent, acked, applied, dups, rejected int
	_, err := fmt.Sscanf(stdout.String(), "sent %d, acked %d, applied %d, duplicates %d, rejected %d", &sent, &acked, &applied, &dups, &rejected)
	require.NoError(t, err, stdout.String())
	// 400 publishes make a duplicate (10 %) and a rejection (5 %) certain
	// enough: missing both has odds below 1e-8.
	require.Equal(t, 400, sent)
	require.Equal(t, sent, acked)
	require.Equal(t, acked, applied+dups+rejected)
	require.Positive(t, dups)
	require.Positive(t, rejected)

	resp, err := http.Get(c.base + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	for status, n := range map[string]int{"applied": applied, "duplicate": dups, "rejected": rejected} {
		require.Contains(t, string(body), fmt.Sprintf(`edgestock_events_total{driver="events",source="mqtt",status=%q} %d`, status, n))
	}
}

// simulate logs its devices in with a token where the broker refuses
// anonymous clients (the default), and hears every result on the Response
// Topic its devices may subscribe to.
func TestMain_SimulateWithToken(t *testing.T) {
	dir, mqttAddr := t.TempDir(), testenv.FreeAddr(t)
	code, token, stderr := run(t, "token", "issue", "--warehouse", "wh1", "--data-dir", dir, "--name", "sim", "--scope", "admin")
	require.Equal(t, exitOK, code, stderr)
	startChild(t, "agent", "--warehouse", "wh1", "--data-dir", dir, "--http", testenv.FreeAddr(t), "--mqtt-listen", mqttAddr)
	var stdout, errOut bytes.Buffer
	code = (&Main{Stdout: &stdout, Stderr: &errOut}).Run(t.Context(), []string{"simulate", "devices", "--mqtt-url", "mqtt://" + mqttAddr,
		"--token", strings.TrimSpace(token), "--devices", "2", "--rate", "200", "--events", "40", "--skus", "5"})
	require.Equal(t, exitOK, code, errOut.String())
	var sent, acked, applied, dups, rejected int
	_, err := fmt.Sscanf(stdout.String(), "sent %d, acked %d, applied %d, duplicates %d, rejected %d", &sent, &acked, &applied, &dups, &rejected)
	require.NoError(t, err, stdout.String())
	require.Equal(t, 40, sent)
	require.Equal(t, sent, acked)
	require.Equal(t, acked, applied+dups+rejected, "every result heard")
}
