package dashboard

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The pages and assets come from the binary, with a policy that lets them
// load nothing from elsewhere; every file a page names is served.
func TestPagesAndAssets(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ui/{file}", Assets)
	for _, role := range []string{Agent, Hub} {
		w := httptest.NewRecorder()
		Page(role)(w, httptest.NewRequest("GET", "/", nil))
		require.Equal(t, http.StatusOK, w.Code)
		require.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"))
		require.Contains(t, w.Header().Get("Content-Security-Policy"), "script-src 'self'")
		page := w.Body.String()
		require.Contains(t, page, `data-role="`+role+`"`)
		require.NotContains(t, page, "http://", "nothing from elsewhere")
		require.NotContains(t, page, "https://", "nothing from elsewhere")
		for _, file := range []string{"app.css", "common.js", role + ".js"} {
			require.Contains(t, page, `"/ui/`+file+`"`)
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, httptest.NewRequest("GET", "/ui/"+file, nil))
			require.Equal(t, http.StatusOK, w.Code, file)
			require.True(t, strings.HasPrefix(w.Header().Get("Content-Type"), map[bool]string{true: "text/css", false: "text/javascript"}[strings.HasSuffix(file, ".css")]), file)
			require.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"))
		}
	}
	for _, file := range []string{"nope.js", "agent.html"} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", "/ui/"+file, nil))
		require.Equal(t, http.StatusNotFound, w.Code, file)
		require.Contains(t, w.Body.String(), `"not_found"`)
	}
	require.Panics(t, func() { Page("nobody") })
}
