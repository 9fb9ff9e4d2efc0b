package agent_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/internal/apidoc"
)

func TestOpenAPI_Served(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil) // loopback: no token needed
	resp, err := http.Get(a.base + "/v1/openapi.yaml")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/yaml", resp.Header.Get("Content-Type"))
	require.Equal(t, string(apidoc.Agent), string(body))
}

// With tokens required, each documented operation answers as its
// documented security says: 401 without a token unless it is open, 403 with
// a token of a scope it does not list, and neither with one it lists.
func TestOpenAPI_ScopesAsDocumented(t *testing.T) {
	a := startAgentAuth(t)
	ops, err := apidoc.Operations(apidoc.Agent)
	require.NoError(t, err)
	issue := func(scope string) string {
		tok, _, err := a.IssueToken(t.Context(), "t", []string{scope}, "", time.Hour)
		require.NoError(t, err)
		return tok
	}
	// device is an MQTT scope: no HTTP operation may list it.
	other := issue(agent.ScopeDevice)
	param := regexp.MustCompile(`\{[^}]+\}`)
	for _, op := range ops {
		t.Run(op.Route, func(t *testing.T) {
			method, path, _ := strings.Cut(op.Route, " ")
			path = param.ReplaceAllString(path, "none")
			do := func(token string) int {
				req, err := http.NewRequest(method, a.base+path, nil)
				require.NoError(t, err)
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				resp.Body.Close()
				return resp.StatusCode
			}
			if op.Open {
				require.NotContains(t, []int{401, 403}, do(""), "documented open")
				return
			}
			require.Equal(t, http.StatusUnauthorized, do(""), "documented to need a token")
			if len(op.Scopes) == 0 {
				require.NotContains(t, []int{401, 403}, do(other), "documented to take any valid token")
				return
			}
			require.Equal(t, http.StatusForbidden, do(other), "documented to need one of %v", op.Scopes)
			for _, s := range op.Scopes {
				require.NotContains(t, []int{401, 403}, do(issue(s)), "documented to take scope %s", s)
			}
		})
	}
}
