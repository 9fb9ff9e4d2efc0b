package hub_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/apidoc"
	"github.com/edgestock/edgestock/internal/apidoc/apidoctest"
	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/sync/hub"
)

// Every route the hub serves is in its OpenAPI document, and every
// operation there is served.
func TestAPI_RoutesDocumented(t *testing.T) {
	mux, ok := (&hub.API{Hub: &hub.Hub{}}).Routes().(*apidoc.Mux)
	require.True(t, ok, "Routes() must register on an apidoc.Mux so its routes can be checked")
	require.NoError(t, apidoc.CheckRoutes(apidoc.Hub, "hub.openapi.yaml", mux.Patterns()))
}

func TestAPI_OpenAPIServed(t *testing.T) {
	h := startHub(t, t.TempDir(), nil)
	resp, err := http.Get("http://" + h.HTTPAddr() + "/v1/openapi.yaml")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/yaml", resp.Header.Get("Content-Type"))
	require.Equal(t, string(apidoc.Hub), string(body))
}

// With tokens required, each documented operation answers as its
// documented security says.
func TestAPI_ScopesAsDocumented(t *testing.T) {
	a := startAgent(t, "wh1", t.TempDir())
	h := startHubAuth(t, "", hub.Agent{Warehouse: "wh1", URL: a.Base})
	apidoctest.RequireScopesAsDocumented(t, apidoc.Hub, "http://"+h.HTTPAddr(), func(scope string) string {
		if scope == auth.ScopeDevice {
			return "" // the hub has no devices
		}
		tok, _, err := h.IssueToken(t.Context(), "t", []string{scope}, time.Hour)
		require.NoError(t, err)
		return tok
	})
}
