package agent_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/apidoc"
	"github.com/edgestock/edgestock/internal/apidoc/apidoctest"
	"github.com/edgestock/edgestock/internal/auth"
)

func TestOpenAPI_Served(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil) // loopback: no token needed
	resp, err := http.Get(a.Base + "/v1/openapi.yaml")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/yaml", resp.Header.Get("Content-Type"))
	require.Equal(t, string(apidoc.Agent), string(body))
}

// With tokens required, each documented operation answers as its
// documented security says.
func TestOpenAPI_ScopesAsDocumented(t *testing.T) {
	a := startAgentAuth(t)
	apidoctest.RequireScopesAsDocumented(t, apidoc.Agent, a.Base, func(scope string) string {
		device := ""
		if scope == auth.ScopeDevice {
			device = "d1"
		}
		tok, _, err := a.IssueToken(t.Context(), "t", []string{scope}, device, time.Hour)
		require.NoError(t, err)
		return tok
	})
}
