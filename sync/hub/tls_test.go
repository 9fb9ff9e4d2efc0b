package hub_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/internal/testenv"
	"github.com/edgestock/edgestock/internal/tlsconf"
	"github.com/edgestock/edgestock/sync/hub"
)

// The agent serves HTTPS: a client trusting another CA fails the handshake;
// the hub, pinning the agent's CA and holding a sync token, pulls over it.
func TestTLS_HubPullsOverHTTPS(t *testing.T) {
	files := testenv.TLS(t)
	cfg := agent.DefaultConfig()
	cfg.Warehouse, cfg.DataDir = "wh1", t.TempDir()
	cfg.HTTP.Listen, cfg.MQTT.Listen, cfg.HTTP.Auth = "127.0.0.1:0", "127.0.0.1:0", "required"
	cfg.HTTP.TLSCert, cfg.HTTP.TLSKey = files.Cert, files.Key
	cfg.Normalize()
	require.NoError(t, cfg.Validate())
	a := agent.New(cfg, logger())
	require.NoError(t, a.Open(t.Context()))
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	base := "https://" + a.HTTPAddr()

	client := func(ca string) *http.Client {
		c, err := tlsconf.Client(ca, "", "")
		require.NoError(t, err)
		return &http.Client{Transport: &http.Transport{TLSClientConfig: c}, Timeout: 5 * time.Second}
	}
	_, err := client(files.OtherCA).Get(base + "/healthz")
	var certErr *tls.CertificateVerificationError
	require.ErrorAs(t, err, &certErr, "a client trusting another CA fails the handshake")
	resp, err := client(files.CA).Get(base + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	tok, _, err := a.IssueToken(t.Context(), "hub", []string{auth.ScopeSync}, "", time.Hour)
	require.NoError(t, err)
	write, _, err := a.IssueToken(t.Context(), "pos", []string{auth.ScopeEventsWrite}, "", time.Hour)
	require.NoError(t, err)
	req, _ := http.NewRequest("POST", base+"/v1/events", strings.NewReader(`{"id":"1","type":"receive","sku":"TLS","qty":3}`))
	req.Header.Set("Authorization", "Bearer "+write)
	resp, err = client(files.CA).Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	fc := hub.DefaultFileConfig()
	fc.DataDir, fc.HTTP, fc.AgentCA = t.TempDir(), "127.0.0.1:0", files.CA
	fc.Agents, fc.AgentTokens = map[string]string{"wh1": base}, map[string]string{"wh1": tok}
	sc, err := fc.Validate()
	require.NoError(t, err)
	sc.Timing = hub.Timing{PollWait: time.Second, RetryMax: time.Second}
	h := hub.NewServer(sc, logger())
	require.NoError(t, h.Open(t.Context()))
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	hubURL := "http://" + h.HTTPAddr()
	require.Eventually(t, func() bool { return hubStock(t, hubURL, "TLS", "wh1") == 3 }, 10*time.Second, 20*time.Millisecond)
}

// A certificate that cannot be loaded fails Open and leaves the port free:
// the hub loads it before it listens.
func TestTLS_HubBadCertLeavesNoListener(t *testing.T) {
	addr := testenv.FreeAddr(t)
	h := hub.NewServer(hub.Config{DataDir: t.TempDir(), HTTP: addr, TLSCert: "/nonexistent/cert.pem", TLSKey: "/nonexistent/key.pem"}, logger())
	err := h.Open(t.Context())
	require.ErrorContains(t, err, "tls-cert/tls-key")
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err, "the failed Open left %s bound", addr)
	require.NoError(t, ln.Close())
}
