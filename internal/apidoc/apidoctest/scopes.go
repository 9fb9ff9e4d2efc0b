// Package apidoctest holds a running role to its OpenAPI document in tests.
package apidoctest

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/apidoc"
	"github.com/edgestock/edgestock/internal/auth"
)

// RequireScopesAsDocumented holds a running role at base, with tokens
// required, to doc's security: each operation answers 401 without a token
// unless it is open, 403 to a device token (MQTT only) and to a token of a
// scope it does not list, and neither 401 nor 403 to one it lists. issue
// returns a token of the role with one scope ("" for a scope the role does
// not issue). The uplink route and scope are left to their own tests: an
// uplink token names its warehouse, and the route upgrades the connection.
// A test helper, for both roles.
func RequireScopesAsDocumented(t *testing.T, doc []byte, base string, issue func(scope string) string) {
	t.Helper()
	ops, err := apidoc.Operations(doc)
	require.NoError(t, err)
	param := regexp.MustCompile(`\{[^}]+\}`)
	device := issue(auth.ScopeDevice)
	for _, op := range ops {
		if slices.Contains(op.Scopes, auth.ScopeUplink) {
			continue // TestUplink_SyncRefuseRevoke
		}
		t.Run(op.Route, func(t *testing.T) {
			method, path, _ := strings.Cut(op.Route, " ")
			path = param.ReplaceAllString(path, "none")
			do := func(token string) int {
				req, err := http.NewRequest(method, base+path, nil)
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
			if device != "" {
				require.Equal(t, http.StatusForbidden, do(device), "a device token opens no HTTP route")
			}
			if len(op.Scopes) == 0 {
				require.NotContains(t, []int{401, 403}, do(issue(auth.ScopeSync)), "documented to take any API token")
				return
			}
			for _, s := range auth.Scopes {
				if s == auth.ScopeAdmin || s == auth.ScopeDevice || s == auth.ScopeUplink || slices.Contains(op.Scopes, s) {
					continue
				}
				require.Equal(t, http.StatusForbidden, do(issue(s)), "documented to need one of %v, not %s", op.Scopes, s)
			}
			for _, s := range op.Scopes {
				require.NotContains(t, []int{401, 403}, do(issue(s)), "documented to take scope %s", s)
			}
		})
	}
}
