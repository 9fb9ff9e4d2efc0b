package apidoc_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/edgestock/edgestock/internal/apidoc"
)

var documents = []struct {
	name, tag string
	doc       []byte
}{
	{"agent.openapi.yaml", "agent", apidoc.Agent},
	{"hub.openapi.yaml", "hub", apidoc.Hub},
}

// httpScopes are the token scopes of SPEC §6 an HTTP operation may ask for
// (device is for MQTT logins only).
var httpScopes = []string{"stock:read", "events:write", "reservations:write", "orders:write", "sync", "admin", "uplink"}

// Each document parses and has the OpenAPI 3.1 shape: the version, info,
// operations with unique ids, the role's tag and responses, path
// parameters declared, security that names the bearer scheme and real
// scopes, and every $ref resolving.
func TestDocuments_OpenAPI31(t *testing.T) {
	for _, d := range documents {
		t.Run(d.name, func(t *testing.T) {
			var root map[string]any
			require.NoError(t, yaml.Unmarshal(d.doc, &root))
			require.Regexp(t, `^3\.1\.\d+$`, root["openapi"])
			info := mapAt(t, root, "info")
			require.NotEmpty(t, info["title"], "info.title")
			require.NotEmpty(t, info["version"], "info.version")
			tags := listAt(t, root, "tags")
			require.Len(t, tags, 1)
			require.Equal(t, d.tag, tags[0].(map[string]any)["name"])

			ids := map[string]string{}
			paths := mapAt(t, root, "paths")
			require.NotEmpty(t, paths)
			for path, item := range paths {
				require.True(t, strings.HasPrefix(path, "/"), path)
				for method, o := range item.(map[string]any) {
					where := method + " " + path
					op, ok := o.(map[string]any)
					require.True(t, ok, where)
					id, _ := op["operationId"].(string)
					require.NotEmpty(t, id, "%s: operationId", where)
					require.NotContains(t, ids, id, "%s: operationId %s is also %s's", where, id, ids[id])
					ids[id] = where
					require.Equal(t, []any{d.tag}, op["tags"], "%s: tags", where)
					responses := mapAt(t, op, "responses")
					require.NotEmpty(t, responses, "%s: responses", where)
					for code, r := range responses {
						require.Regexp(t, `^[1-5]\d\d$`, code, where)
						resp := resolve(t, root, r.(map[string]any))
						require.NotEmpty(t, resp["description"], "%s: %s: description", where, code)
						if code[0] == '4' || code[0] == '5' {
							requireErrorShape(t, root, resp, where+": "+code)
						}
					}
					declared := map[string]bool{}
					if ps, ok := op["parameters"].([]any); ok {
						for _, p := range ps {
							p := resolve(t, root, p.(map[string]any))
							if p["in"] == "path" {
								require.Equal(t, true, p["required"], "%s: path parameter %s must be required", where, p["name"])
								declared[p["name"].(string)] = true
							}
						}
					}
					for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(path, -1) {
						require.True(t, declared[m[1]], "%s: path parameter %s is not declared", where, m[1])
					}
					if sec, ok := op["security"].([]any); ok {
						for _, req := range sec {
							for scheme, scopes := range req.(map[string]any) {
								require.Equal(t, "bearer", scheme, where)
								for _, s := range scopes.([]any) {
									require.Contains(t, httpScopes, s, "%s: scope", where)
								}
							}
						}
					}
				}
			}
			requireWellFormed(t, root, root)
		})
	}
}

// requireErrorShape checks that an error response's JSON body is, or may be,
// the {"error":{"code","message"}} shape.
func requireErrorShape(t *testing.T, root, resp map[string]any, where string) {
	t.Helper()
	content, ok := resp["content"].(map[string]any)
	require.True(t, ok, "%s: an error response needs a body", where)
	media, ok := content["application/json"].(map[string]any)
	require.True(t, ok, "%s: an error response is JSON", where)
	var schemas []map[string]any
	var walk func(s map[string]any)
	walk = func(s map[string]any) {
		s = resolve(t, root, s)
		schemas = append(schemas, s)
		for _, k := range []string{"oneOf", "allOf", "anyOf"} {
			if l, ok := s[k].([]any); ok {
				for _, e := range l {
					walk(e.(map[string]any))
				}
			}
		}
	}
	walk(mapAt(t, media, "schema"))
	for _, s := range schemas {
		props, _ := s["properties"].(map[string]any)
		if e, ok := props["error"].(map[string]any); ok {
			ep, _ := e["properties"].(map[string]any)
			require.Contains(t, ep, "code", where)
			require.Contains(t, ep, "message", where)
			return
		}
		if s["type"] == "object" && slices.Contains(toStrings(s["required"]), "ready") { // /readyz: 503 reports its checks
			return
		}
		if props["results"] != nil { // POST /v1/events: per-event results
			return
		}
	}
	t.Fatalf("%s: the body is not {\"error\":{\"code\",\"message\"}}", where)
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

// resolve follows a local $ref.
func resolve(t *testing.T, root, node map[string]any) map[string]any {
	t.Helper()
	ref, ok := node["$ref"].(string)
	if !ok {
		return node
	}
	path, ok := strings.CutPrefix(ref, "#/")
	require.True(t, ok, "$ref %s: only local references", ref)
	var cur any = root
	for _, part := range strings.Split(path, "/") {
		m, ok := cur.(map[string]any)
		require.True(t, ok, "$ref %s does not resolve", ref)
		cur, ok = m[part]
		require.True(t, ok, "$ref %s does not resolve", ref)
	}
	m, ok := cur.(map[string]any)
	require.True(t, ok, "$ref %s is not an object", ref)
	return resolve(t, root, m)
}

// requireWellFormed walks the document: every $ref resolves, and no
// mapping has a key that is a piece of prose: an unquoted comma inside a
// flow mapping ({description: a, b}) silently turns the rest of a
// sentence into a key with no value.
func requireWellFormed(t *testing.T, root map[string]any, node any) {
	t.Helper()
	switch n := node.(type) {
	case map[string]any:
		if _, ok := n["$ref"]; ok {
			resolve(t, root, n)
		}
		for k, v := range n {
			if v == nil && (strings.Contains(k, " ") || strings.HasSuffix(k, ".")) {
				t.Errorf("key %q has no value: a comma or colon in an unquoted string? Quote it", k)
			}
			requireWellFormed(t, root, v)
		}
	case []any:
		for _, v := range n {
			requireWellFormed(t, root, v)
		}
	}
}

func mapAt(t *testing.T, m map[string]any, key string) map[string]any {
	t.Helper()
	v, ok := m[key].(map[string]any)
	require.True(t, ok, "%s: must be a mapping", key)
	return v
}

func listAt(t *testing.T, m map[string]any, key string) []any {
	t.Helper()
	v, ok := m[key].([]any)
	require.True(t, ok, "%s: must be a list", key)
	return v
}

const doc = `
openapi: 3.1.0
security: [{bearer: []}]
paths:
  /healthz:
    get: {security: [], responses: {"200": {description: up}}}
  /v1/stock/{sku}:
    get: {security: [{bearer: ["stock:read"]}], responses: {"200": {description: ok}}}
  /v1/files/{path}:
    get: {responses: {"200": {description: ok}}}
`

func TestOperations(t *testing.T) {
	ops, err := apidoc.Operations([]byte(doc))
	require.NoError(t, err)
	require.Equal(t, []apidoc.Operation{
		{Route: "GET /healthz", Open: true},
		{Route: "GET /v1/files/{path}"},
		{Route: "GET /v1/stock/{sku}", Scopes: []string{"stock:read"}},
	}, ops)

	_, err = apidoc.Operations([]byte("paths: [not, a, mapping]"))
	require.ErrorContains(t, err, "parse openapi document")
}

func TestCheckRoutes(t *testing.T) {
	all := []string{"GET /healthz", "GET /v1/stock/{sku}", "GET /v1/files/{path...}"}
	for _, c := range []struct {
		name     string
		patterns []string
		want     []string // error parts; none: no error
	}{
		{"every route documented", all, nil},
		{"registration order does not matter", []string{all[2], all[0], all[1]}, nil},
		{"an undocumented route", append(slices.Clone(all), "POST /v1/orders"),
			[]string{"route POST /v1/orders is served but not documented: add it to internal/apidoc/test.yaml (paths: /v1/orders: post:)"}},
		{"a documented operation nobody serves", all[:2],
			[]string{"operation GET /v1/files/{path} is documented in internal/apidoc/test.yaml but no route serves it"}},
		{"a pattern without a method", append(slices.Clone(all), "/v1/x"),
			[]string{`route "/v1/x" has no method`}},
		{"the same path with another method", append(slices.Clone(all), "DELETE /healthz"),
			[]string{"route DELETE /healthz is served but not documented"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := apidoc.CheckRoutes([]byte(doc), "test.yaml", c.patterns)
			if c.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range c.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestMux(t *testing.T) {
	mux := apidoc.NewMux()
	mux.HandleFunc("GET /a", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "a") })
	mux.Handle("GET "+apidoc.Path, apidoc.Handler(apidoc.Hub))
	require.Equal(t, []string{"GET /a", "GET /v1/openapi.yaml"}, mux.Patterns())

	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + apidoc.Path)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/yaml", resp.Header.Get("Content-Type"))
	require.Equal(t, apidoc.Hub, body)
}
