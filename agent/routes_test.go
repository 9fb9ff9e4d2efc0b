package agent

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/apidoc"
)

// Every route the agent serves is in its OpenAPI document, and every
// operation there is served.
func TestAgent_RoutesDocumented(t *testing.T) {
	a := New(DefaultConfig(), slog.New(slog.DiscardHandler))
	a.metrics = newMetrics(a) // routes() takes its handler; nothing is scraped
	mux, ok := a.routes().(*apidoc.Mux)
	require.True(t, ok, "routes() must register on an apidoc.Mux so its routes can be checked")
	require.NoError(t, apidoc.CheckRoutes(apidoc.Agent, "agent.openapi.yaml", mux.Patterns()))
}
