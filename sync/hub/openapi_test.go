package hub_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/apidoc"
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
