package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/internal/testenv"
	"github.com/edgestock/edgestock/sync/hub"
)

// run runs one command line in-process.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = (&Main{Stdout: &out, Stderr: &errOut}).Run(t.Context(), args)
	return code, out.String(), errOut.String()
}

// every command and subcommand, as the user types it.
func walkCommands(cmds []*command, visit func(c *command)) {
	for _, c := range cmds {
		visit(c)
		walkCommands(c.subs, visit)
	}
}

// Every command and subcommand answers -h and --help with its own usage on
// stdout, exit 0, whatever else is on the line, and does nothing else.
func TestMain_HelpEverywhere(t *testing.T) {
	seen := 0
	walkCommands(commands(), func(c *command) {
		for _, h := range []string{"-h", "--help"} {
			for _, extra := range [][]string{nil, {"ARG"}} {
				args := append(append(strings.Fields(c.name), extra...), h)
				t.Run(strings.Join(args, " "), func(t *testing.T) {
					code, stdout, stderr := run(t, args...)
					require.Equal(t, exitOK, code, stderr)
					require.Empty(t, stderr)
					require.True(t, strings.HasPrefix(stdout, "usage: edgestock "+c.name+" "), stdout)
					require.Contains(t, stdout, c.summary)
					for _, sub := range c.subs {
						require.Contains(t, stdout, strings.TrimPrefix(sub.name, c.name+" "), "a parent lists its subcommands")
					}
				})
			}
		}
		seen++
	})
	require.GreaterOrEqual(t, seen, 19, "agent hub token(3) config(1) service(6) status stock simulate version")
	// A subcommand shows its own flags, not a sibling's.
	_, list, _ := run(t, "token", "list", "-h")
	require.NotContains(t, list, "--scope")
	_, issue, _ := run(t, "token", "issue", "-h")
	require.Contains(t, issue, "--scope")
	_, top, _ := run(t, "--help")
	walkCommands(commands(), func(c *command) {
		if !strings.Contains(c.name, " ") {
			require.Contains(t, top, "  "+c.name)
		}
	})
}

// An argument a command does not take is a usage error on every command,
// wherever it stands among the flags.
func TestMain_UnexpectedArgument(t *testing.T) {
	walkCommands(commands(), func(c *command) {
		if c.subs != nil {
			return
		}
		args := strings.Fields(c.name)
		for range c.maxArgs {
			args = append(args, "ARG")
		}
		for _, line := range [][]string{append(args, "EXTRA"), append(append(append([]string{}, args...), "EXTRA"), "--help-me-not")} {
			t.Run(strings.Join(line, " "), func(t *testing.T) {
				code, _, stderr := run(t, line...)
				require.Equal(t, exitUsage, code, stderr)
				require.NotContains(t, stderr, "usage: edgestock", "one message, no usage dump")
				if !strings.Contains(strings.Join(line, " "), "--help-me-not") {
					require.Contains(t, stderr, `unexpected argument "EXTRA"`)
				}
			})
		}
	})
	code, _, stderr := run(t, "hub", "wh5", "--http", "127.0.0.1:1")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, `hub: unexpected argument "wh5"`)
}

// Flags after positional arguments work: the brief's exact command lines.
func TestMain_FlagsAfterArguments(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := run(t, "token", "issue", "--data-dir", dir, "--warehouse", "wh1", "--name", "ops", "--scope", "stock:read")
	require.Equal(t, exitOK, code, stderr)
	id := strings.Fields(stderr)[1]
	code, _, stderr = run(t, "token", "revoke", id, "--data-dir", dir)
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stderr, "revoked "+id)
	code, _, stderr = run(t, "token", "revoke", "--data-dir", dir, "--", id)
	require.Equal(t, exitOK, code, stderr, "-- ends the flags")

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			_, _ = w.Write([]byte(`{"status":"ok","role":"agent"}`))
		case "/v1/stock/SKU-1":
			_, _ = w.Write([]byte(`{"sku":"SKU-1","on_hand":3,"available":3,"global":{"on_hand":3}}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	code, stdout, stderr := run(t, "stock", "SKU-1", "--url", srv.URL)
	require.Equal(t, exitOK, code, stderr)
	require.Regexp(t, `SKU-1\s+3\s+0\s+3\s+3`, stdout)
}

// HTTP errors say something useful even with an empty body.
func TestAPIClient_EmptyErrorBody(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"404 empty", http.StatusNotFound, "", "404 Not Found: no such resource here (is --url an edgestock agent or hub?)"},
		{"401 empty", http.StatusUnauthorized, "", "401 Unauthorized: pass a token with --token or $EDGESTOCK_TOKEN"},
		{"500 empty", http.StatusInternalServerError, "", "500 Internal Server Error: the server sent no explanation"},
		{"502 text", http.StatusBadGateway, "upstream down\n", "502 Bad Gateway: upstream down"},
		{"409 json", http.StatusConflict, `{"error":{"code":"x","message":"said why"}}`, "409 Conflict: said why"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			code, _, stderr := run(t, "status", "--url", srv.URL)
			require.Equal(t, exitFailure, code)
			require.Contains(t, stderr, "GET "+srv.URL+"/healthz: "+tc.want)
		})
	}
}

// stock and status against a hub show the hub's views, not zeroes or 404s.
func TestMain_StockAndStatusOnHub(t *testing.T) {
	a := startChild(t, "agent", "--warehouse", "wh1", "--data-dir", t.TempDir(), "--http", testenv.FreeAddr(t), "--mqtt-listen", testenv.FreeAddr(t))
	h := startChild(t, "hub", "--data-dir", t.TempDir(), "--http", testenv.FreeAddr(t), "--agent", "wh1="+a.base)
	resp, err := http.Post(a.base+"/v1/events", "application/json", strings.NewReader(`{"id":"1","type":"receive","sku":"SKU-1","qty":5}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Eventually(t, func() bool {
		code, stdout, _ := run(t, "stock", "--url", h.base, "SKU-1")
		return code == exitOK && strings.Contains(stdout, "wh1=5")
	}, 20*time.Second, 50*time.Millisecond, "the hub pulls wh1's receive")
	code, stdout, stderr := run(t, "stock", "SKU-1", "--url", h.base)
	require.Equal(t, exitOK, code, stderr)
	require.Regexp(t, `(?m)^\s*SKU\s+ON HAND\s+WAREHOUSES$`, stdout)
	require.Regexp(t, `SKU-1\s+5\s+wh1=5`, stdout)
	code, stdout, stderr = run(t, "stock", "--url", h.base)
	require.Equal(t, exitOK, code, stderr)
	require.Regexp(t, `SKU-1\s+5\s+wh1=5`, stdout)
	code, stdout, stderr = run(t, "status", "--url", h.base)
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "role: hub")
	require.Regexp(t, `(?m)^wh1\s+online\s`, stdout)
	code, stdout, stderr = run(t, "status", "--url", a.base)
	require.Equal(t, exitOK, code, stderr)
	require.Regexp(t, `(?m)^role\s+agent$`, stdout)
}

// The first token: issued on an empty data dir, it lets an agent that
// requires tokens (HTTP beyond loopback) start and serve it.
func TestMain_FirstToken(t *testing.T) {
	dir := t.TempDir()
	_, port, err := net.SplitHostPort(testenv.FreeAddr(t))
	require.NoError(t, err)
	config := filepath.Join(t.TempDir(), "agent.yaml")
	require.NoError(t, os.WriteFile(config, []byte("warehouse: wh1\n"), 0o600))

	code, token, stderr := run(t, "token", "issue", "--config", config, "--data-dir", dir, "--name", "ops", "--scope", "stock:read")
	require.Equal(t, exitOK, code, stderr)
	token = strings.TrimSpace(token)
	// 0.0.0.0: beyond loopback, so the agent requires a token to start.
	c := startChild(t, "agent", "--config", config, "--data-dir", dir, "--http", "0.0.0.0:"+port, "--mqtt-listen", testenv.FreeAddr(t))
	get := func(token string) int {
		req, err := http.NewRequest("GET", c.base+"/v1/stock", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, get(token))
	require.Equal(t, http.StatusUnauthorized, get("nope"))
}

// Beyond loopback with no token the agent refuses as bad usage (exit 2),
// says how to issue one, and creates nothing.
func TestMain_AgentRefusesWithoutToken(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"fresh data dir", func(*testing.T, string) {}},
		{"database with no token", func(t *testing.T, dir string) {
			db, err := store.Open(t.Context(), dir, store.Options{Warehouse: "wh1"})
			require.NoError(t, err)
			require.NoError(t, db.Close())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			tc.setup(t, dir)
			before, _ := os.ReadDir(dir)
			_, port, err := net.SplitHostPort(testenv.FreeAddr(t))
			require.NoError(t, err)
			code, _, stderr := run(t, "agent", "--warehouse", "wh1", "--data-dir", dir, "--http", "0.0.0.0:"+port, "--mqtt-listen", testenv.FreeAddr(t))
			require.Equal(t, exitUsage, code, stderr)
			require.Contains(t, stderr, "no token has been issued in "+dir)
			require.Contains(t, stderr, "edgestock token issue --name ops --scope admin --warehouse wh1 --data-dir "+dir)
			after, _ := os.ReadDir(dir)
			require.Equal(t, len(before), len(after), "nothing created")
		})
	}
}

// A data dir of another warehouse: exit 2 and a way out.
func TestMain_WrongWarehouse(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := run(t, "token", "issue", "--warehouse", "wh1", "--data-dir", dir, "--name", "ops", "--scope", "admin")
	require.Equal(t, exitOK, code, stderr)
	code, _, stderr = run(t, "agent", "--warehouse", "wh2", "--data-dir", dir, "--http", testenv.FreeAddr(t), "--mqtt-listen", testenv.FreeAddr(t))
	require.Equal(t, exitUsage, code, stderr)
	require.Contains(t, stderr, `holds warehouse "wh1", not "wh2"`)
	require.Contains(t, stderr, `set warehouse: wh1 (or --warehouse wh1), or give "wh2" a data dir of its own`)
	code, _, stderr = run(t, "token", "issue", "--warehouse", "wh2", "--data-dir", dir, "--name", "ops", "--scope", "admin")
	require.Equal(t, exitUsage, code, stderr)
}

// The shipped configs hold no live example values: every key they set is
// the default, so an install takes its warehouse from the host name.
func TestConfigs_OnlyDefaults(t *testing.T) {
	cfg, err := agent.LoadConfig("../../configs/agent.yaml")
	require.NoError(t, err)
	require.Equal(t, agent.DefaultConfig(), cfg)
	hcfg, err := hub.LoadFileConfig("../../configs/hub.yaml")
	require.NoError(t, err)
	require.Equal(t, hub.DefaultFileConfig(), hcfg)
}

func TestResolveAgentTokens(t *testing.T) {
	file := filepath.Join(t.TempDir(), "wh1.token")
	require.NoError(t, os.WriteFile(file, []byte("es1.from-file\n"), 0o600))
	empty := filepath.Join(t.TempDir(), "empty.token")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	env := map[string]string{"EDGESTOCK_AGENT_TOKEN_WH1": "es1.env-wh1", "EDGESTOCK_AGENT_TOKEN_STORE_7_B": "es1.env-store"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, tc := range []struct {
		name    string
		tokens  map[string]string
		want    map[string]string
		wantErr string
	}{
		{"from the environment", map[string]string{}, map[string]string{"wh1": "es1.env-wh1", "store-7.b": "es1.env-store"}, ""},
		{"a given token wins", map[string]string{"wh1": "es1.given"}, map[string]string{"wh1": "es1.given", "store-7.b": "es1.env-store"}, ""},
		{"from a file", map[string]string{"wh1": "@" + file}, map[string]string{"wh1": "es1.from-file", "store-7.b": "es1.env-store"}, ""},
		{"missing file", map[string]string{"wh1": "@/nonexistent"}, nil, "agent-tokens.wh1: read the token file"},
		{"empty file", map[string]string{"wh1": "@" + empty}, nil, "is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := hub.DefaultFileConfig()
			cfg.Agents = map[string]string{"wh1": "http://a:7070", "store-7.b": "http://b:7070"}
			cfg.AgentTokens = tc.tokens
			err := resolveAgentTokens(&cfg, lookup)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, cfg.AgentTokens)
		})
	}
}

// syncBuffer is a bytes.Buffer safe to read while Run writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The hub logs JSON with --log-format json, at the --log-level given.
func TestMain_HubLogFlags(t *testing.T) {
	code, _, stderr := run(t, "hub", "--log-level", "loud")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, `log.level: "loud" must be debug, info, warn or error`)
	code, _, stderr = run(t, "hub", "--log-format", "xml")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, `log.format: "xml" must be text or json`)

	ctx, cancel := context.WithCancel(t.Context())
	var stderrBuf syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- (&Main{Stdout: &stderrBuf, Stderr: &stderrBuf}).Run(ctx, []string{"hub", "--data-dir", t.TempDir(),
			"--http", testenv.FreeAddr(t), "--log-format", "json", "--log-level", "debug"})
	}()
	require.Eventually(t, func() bool { return strings.Contains(stderrBuf.String(), `{"time":`) }, 20*time.Second, 20*time.Millisecond)
	cancel()
	require.Equal(t, exitOK, <-done, stderrBuf.String())
	for _, line := range strings.Split(strings.TrimSpace(stderrBuf.String()), "\n") {
		require.True(t, strings.HasPrefix(line, `{"time":`), "every log line is JSON: %s", line)
	}
}

// A hub's first token: issued with --role hub on an empty data dir (or
// --store on PostgreSQL), it lets a hub beyond loopback start and serve
// it; without one the hub refuses as bad usage (exit 2), saying how.
func TestMain_HubFirstToken(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "hub")
		_, port, err := net.SplitHostPort(testenv.FreeAddr(t))
		require.NoError(t, err)
		code, _, stderr := run(t, "hub", "--data-dir", dir, "--http", "0.0.0.0:"+port)
		require.Equal(t, exitUsage, code, stderr)
		require.Contains(t, stderr, "edgestock token issue --role hub")

		code, token, stderr := run(t, "token", "issue", "--role", "hub", "--data-dir", dir, "--name", "oms", "--scope", "stock:read")
		require.Equal(t, exitOK, code, stderr)
		token = strings.TrimSpace(token)
		c := startChild(t, "hub", "--data-dir", dir, "--http", "0.0.0.0:"+port)
		get := func(token string) int {
			req, err := http.NewRequest("GET", c.base+"/v1/stock", nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			return resp.StatusCode
		}
		require.Equal(t, http.StatusOK, get(token))
		// A connector's token, bound to its channel: it opens no stock list.
		code, amazon, stderr := run(t, "token", "issue", "--role", "hub", "--data-dir", dir, "--name", "amazon", "--scope", "orders:write,stock:read", "--channel", "amazon")
		require.Equal(t, exitOK, code, stderr)
		require.Equal(t, http.StatusForbidden, get(strings.TrimSpace(amazon)))
		code, _, stderr = run(t, "token", "issue", "--role", "hub", "--data-dir", dir, "--name", "x", "--scope", "admin", "--channel", "amazon")
		require.Equal(t, exitUsage, code)
		require.Contains(t, stderr, `scope "admin"`)
		// An uplink token is always the hub's: SPEC §11 names no --role.
		code, _, stderr = run(t, "token", "issue", "--data-dir", dir, "--name", "wh1", "--scope", "uplink", "--warehouse", "wh1")
		require.Equal(t, exitOK, code, stderr)
		code, list, stderr := run(t, "token", "list", "--role", "hub", "--data-dir", dir)
		require.Equal(t, exitOK, code, stderr)
		require.Contains(t, list, "oms")
		require.Contains(t, list, "uplink")
		id := ""
		for _, line := range strings.Split(strings.TrimSpace(list), "\n")[1:] {
			if f := strings.Fields(line); f[1] == "oms" {
				id = f[0]
			}
		}
		code, _, stderr = run(t, "token", "revoke", id, "--role", "hub", "--data-dir", dir)
		require.Equal(t, exitOK, code, stderr)
		require.Equal(t, http.StatusUnauthorized, get(token), "revoked: refused from the next request")
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := testenv.PostgresDSN(t)
		code, _, stderr := run(t, "token", "issue", "--store", dsn, "--name", "oms", "--scope", "orders:write")
		require.Equal(t, exitOK, code, stderr)
		code, list, stderr := run(t, "token", "list", "--store", dsn)
		require.Equal(t, exitOK, code, stderr)
		require.Contains(t, list, "orders:write")
	})
}

// stock --replenishment prints an agent's figures, and a hub's per
// warehouse with their total.
func TestMain_StockReplenishment(t *testing.T) {
	a := startChild(t, "agent", "--warehouse", "wh1", "--data-dir", t.TempDir(), "--http", testenv.FreeAddr(t), "--mqtt-listen", testenv.FreeAddr(t))
	h := startChild(t, "hub", "--data-dir", t.TempDir(), "--http", testenv.FreeAddr(t), "--agent", "wh1="+a.base)
	events := []string{`{"id":"r","type":"receive","sku":"RP-1","qty":100}`, `{"id":"r2","type":"receive","sku":"RP-2","qty":1000}`}
	for d := 13; d >= 0; d-- {
		ts := time.Now().Add(-time.Duration(d) * 24 * time.Hour).UTC().Format(time.RFC3339)
		events = append(events, fmt.Sprintf(`{"id":"s%d","type":"sale","sku":"RP-1","qty":3,"ts":%q}`, d, ts),
			fmt.Sprintf(`{"id":"t%d","type":"sale","sku":"RP-2","qty":1,"ts":%q}`, d, ts))
	}
	resp, err := http.Post(a.base+"/v1/events", "application/json", strings.NewReader("["+strings.Join(events, ",")+"]"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Eventually(t, func() bool {
		code, stdout, _ := run(t, "stock", "--replenishment", "--url", a.base)
		return code == exitOK && strings.Contains(stdout, "RP-2")
	}, 20*time.Second, 50*time.Millisecond)
	code, stdout, stderr := run(t, "stock", "--replenishment", "--url", a.base)
	require.Equal(t, exitOK, code, stderr)
	require.Regexp(t, `(?m)^\s*SKU\s+WAREHOUSE\s+ON HAND\s+AVAILABLE\s+DEMAND/DAY\s+COVER DAYS\s+STOCKOUT\s+LEAD DAYS\s+REORDER AT\s+ORDER\s+RISK$`, stdout)
	require.Regexp(t, `(?m)^\s*RP-1\s+wh1\s+58\s+58\s+\d+\.\d\d\s+\d+\.\d\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+7\s+\d+\.\d\s+\d+`, stdout)
	code, stdout, stderr = run(t, "stock", "--replenishment", "--below-days", "100", "--url", a.base)
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "RP-1")
	require.NotContains(t, stdout, "RP-2", "986 units at about 1 a day")

	code, stdout, stderr = run(t, "stock", "RP-1", "--replenishment", "--url", h.base)
	require.Equal(t, exitOK, code, stderr)
	require.Regexp(t, `(?m)^\s*RP-1\s+wh1\s+58\s`, stdout)
	require.Regexp(t, `(?m)^\s*RP-1\s+\*\s+58\s`, stdout, "the total")
	require.NotContains(t, stdout, "RP-2")
}
