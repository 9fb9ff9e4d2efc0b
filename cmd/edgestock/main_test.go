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
		{"unknown flag", []string{"agent", "--nope"}, exitUsage, "", "flag provided but not defined: -nope"},
		{"unknown config key", []string{"agent", "--config", badConfig}, exitUsage, "", "field lisen not found"},
		{"invalid config value", []string{"agent", "--config", invalid}, exitUsage, "", "log.level:"},
		{"missing config", []string{"agent", "--config", "/nonexistent.yaml"}, exitUsage, "", "no such file"},
		{"bad warehouse flag", []string{"agent", "--warehouse", "a b"}, exitUsage, "", "warehouse:"},
		{"config check agent example", []string{"config", "check", "../../configs/agent.yaml"}, exitOK, "ok (agent)", ""},
		{"config check hub example", []string{"config", "check", "../../configs/hub.yaml"}, exitOK, "ok (hub)", ""},
		{"config check unknown key", []string{"config", "check", badConfig}, exitUsage, "", "line 2: field lisen not found"},
		{"config check bad value", []string{"config", "check", invalid}, exitUsage, "", "log.level:"},
		{"config check no file", []string{"config", "check"}, exitUsage, "", "want a FILE"},
		// -h prints the flags and succeeds, as Go's flag package does on its own.
		{"agent -h", []string{"agent", "-h"}, exitOK, "", "-mqtt-url"},
		{"hub -h", []string{"hub", "-h"}, exitOK, "", "-config"},
		{"config check -h", []string{"config", "check", "-h"}, exitOK, "", "-role"},
		{"token issue -h", []string{"token", "issue", "-h"}, exitOK, "", "-scope"},
		{"status -h", []string{"status", "-h"}, exitOK, "", "-url"},
		{"simulate -h", []string{"simulate", "-h"}, exitOK, "", "-duplicates"},
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
	code, _, stderr = run("token", "revoke", "--data-dir", dir, id)
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, http.StatusUnauthorized, get(token), "and refuses it on the next request once revoked")
	code, out, _ = run("token", "list", "--data-dir", dir)
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "revoked")
	code, _, stderr = run("token", "revoke", "--data-dir", dir, "tok-nope")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "no such token")
	code, _, stderr = run("token", "list", "--data-dir", t.TempDir())
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "no agent database")
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
	// The database must exist before a token can be issued: start once.
	c := startChild(t, "agent", "--config", config, "--warehouse", "wh1", "--data-dir", dir, "--http", testenv.FreeAddr(t), "--mqtt-listen", mqttAddr)
	require.Equal(t, exitOK, (&Main{Stdout: &stdout, Stderr: &stderr}).Run(t.Context(),
		[]string{"token", "issue", "--data-dir", dir, "--name", "devA", "--scope", "device", "--device", "devA"}), stderr.String())
	token := strings.TrimSpace(stdout.String())
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
	code, _, errOut = run("stock", "--url", c.base, "NOPE")
	require.Equal(t, exitFailure, code)
	require.Contains(t, errOut, "404")
	code, _, errOut = run("status", "--url", "http://"+testenv.FreeAddr(t))
	require.Equal(t, exitFailure, code)
	require.Contains(t, errOut, "is the agent running?")
}

// simulate against a running agent: sent = acked = applied + duplicates +
// rejected, and the agent's /metrics agree.
func TestMain_Simulate(t *testing.T) {
	mqttAddr := testenv.FreeAddr(t)
	c := startChild(t, "agent", "--warehouse", "wh1", "--data-dir", t.TempDir(), "--http", testenv.FreeAddr(t), "--mqtt-listen", mqttAddr, "--mqtt-anonymous", "allow")
	var stdout, stderr bytes.Buffer
	code := (&Main{Stdout: &stdout, Stderr: &stderr}).Run(t.Context(), []string{"simulate", "--mqtt-url", "mqtt://" + mqttAddr,
		"--devices", "4", "--rate", "200", "--duration", "2s", "--skus", "20", "--duplicates", "0.1", "--malformed", "0.05"})
	require.Equal(t, exitOK, code, stderr.String())
	var sent, acked, applied, dups, rejected int
	_, err := fmt.Sscanf(stdout.String(), "sent %d, acked %d, applied %d, duplicates %d, rejected %d", &sent, &acked, &applied, &dups, &rejected)
	require.NoError(t, err, stdout.String())
	// 400 at the nominal rate; a loaded machine drops ticks (298 seen), and
	// a few hundred still make duplicates and rejections certain enough.
	require.Greater(t, sent, 200)
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
