// Package dashboard serves the live dashboards at GET / of the agent and
// the hub (SPEC §10): plain HTML, CSS and JavaScript embedded in the
// binary, with no CDN and nothing fetched from elsewhere, so they work on
// a warehouse PC with no internet. The pages hold no data: they read the
// API and follow GET /v1/stream with the token the operator gives them,
// kept in the browser's local storage, asked for only when the API
// answers 401 or 403.
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/edgestock/edgestock/internal/httpjson"
)

//go:embed assets
var assets embed.FS

// Roles with a dashboard.
const (
	Agent = "agent"
	Hub   = "hub"
)

// Page serves role's dashboard page (GET /).
func Page(role string) http.HandlerFunc {
	page, err := fs.ReadFile(assets, "assets/"+role+".html")
	if err != nil {
		panic("dashboard: no page for role " + role) // a programming error: the roles are fixed
	}
	return func(w http.ResponseWriter, _ *http.Request) {
		headers(w, "text/html; charset=utf-8")
		_, _ = w.Write(page)
	}
}

// Assets serves the pages' scripts and styles (GET /ui/{file}).
func Assets(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	body, err := fs.ReadFile(assets, "assets/"+name)
	if err != nil || strings.HasSuffix(name, ".html") {
		httpjson.Error(w, http.StatusNotFound, "not_found", "the dashboard has no file %q", name)
		return
	}
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	headers(w, types[path.Ext(name)])
	_, _ = w.Write(body)
}

// headers set what every dashboard response carries: its type, and a
// policy that lets the page load its own scripts and talk to its own API
// and nothing else.
func headers(w http.ResponseWriter, contentType string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache") // a new binary's assets at once
}
