// Package apidoc owns the HTTP API contract of both roles as OpenAPI 3.1
// documents (agent.openapi.yaml, hub.openapi.yaml in this folder: the one
// copy, embedded in the binary and served at GET /v1/openapi.yaml), the mux
// both roles register their routes on, and the check that holds the two to
// each other: a route registered but not documented, or documented but not
// registered, fails the roles' tests.
//
// One document per role, because both serve some paths (GET /v1/stock/{sku},
// POST /v1/events) with different bodies, and an OpenAPI document has one
// operation per path and method.
package apidoc

import (
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The documents, as served.
var (
	//go:embed agent.openapi.yaml
	Agent []byte
	//go:embed hub.openapi.yaml
	Hub []byte
)

// Path is the route both roles serve their document on.
const Path = "/v1/openapi.yaml"

// Handler serves doc as YAML (RFC 9512).
func Handler(doc []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(doc)
	}
}

// Mux is an http.ServeMux that remembers the patterns registered on it, so
// a test can hold them to the role's document.
type Mux struct {
	mux      *http.ServeMux
	patterns []string
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{mux: http.NewServeMux()} }

// Handle registers h for pattern, as http.ServeMux.Handle.
func (m *Mux) Handle(pattern string, h http.Handler) {
	m.mux.Handle(pattern, h)
	m.patterns = append(m.patterns, pattern)
}

// HandleFunc registers h for pattern, as http.ServeMux.HandleFunc.
func (m *Mux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// Patterns lists the registered patterns in registration order.
func (m *Mux) Patterns() []string { return slices.Clone(m.patterns) }

// ServeHTTP dispatches to the handler of the matching pattern.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.mux.ServeHTTP(w, r) }

// methods are the operation keys of an OpenAPI path item.
var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// Operation is one documented operation and who may call it.
type Operation struct {
	Route string // "METHOD /path", the ServeMux pattern form
	// Open: no token needed anywhere (security: []). Otherwise a bearer
	// token with one of Scopes, or any valid token when Scopes is empty.
	Open   bool
	Scopes []string
}

// Operations lists doc's operations, sorted by route. An operation without
// its own security takes the document's.
func Operations(doc []byte) ([]Operation, error) {
	type requirements = *[]map[string][]string // nil: not given
	var d struct {
		Security requirements                    `yaml:"security"`
		Paths    map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("parse openapi document: %w", err)
	}
	var ops []Operation
	for path, item := range d.Paths {
		for key, node := range item {
			if !slices.Contains(methods, key) {
				continue
			}
			var op struct {
				Security requirements `yaml:"security"`
			}
			if err := node.Decode(&op); err != nil {
				return nil, fmt.Errorf("paths: %s: %s: %w", path, key, err)
			}
			sec := op.Security
			if sec == nil {
				sec = d.Security
			}
			o := Operation{Route: strings.ToUpper(key) + " " + path, Open: sec == nil || len(*sec) == 0}
			if !o.Open {
				for _, req := range *sec {
					o.Scopes = append(o.Scopes, req["bearer"]...)
				}
			}
			ops = append(ops, o)
		}
	}
	slices.SortFunc(ops, func(a, b Operation) int { return strings.Compare(a.Route, b.Route) })
	return ops, nil
}

// CheckRoutes holds the patterns a role's mux registered to its document
// (named by file in the errors): every route must be documented, and every
// documented operation registered. Patterns need a method ("GET /x"); Go's
// wildcards {name...} are written {name} in the document.
func CheckRoutes(doc []byte, file string, patterns []string) error {
	docOps, err := Operations(doc)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	ops := make([]string, len(docOps))
	for i, o := range docOps {
		ops[i] = o.Route
	}
	var errs []error
	routes := make([]string, 0, len(patterns))
	for _, p := range patterns {
		method, path, ok := strings.Cut(p, " ")
		if !ok || method == "" || strings.ContainsAny(method, "/{") {
			errs = append(errs, fmt.Errorf("route %q has no method: register it as \"GET %s\" (or the method it serves) so it can be documented", p, p))
			continue
		}
		path = strings.TrimPrefix(path, "/") // host patterns are not used
		path = "/" + strings.ReplaceAll(strings.TrimSuffix(path, "{$}"), "...}", "}")
		route := method + " " + path
		routes = append(routes, route)
		if !slices.Contains(ops, route) {
			errs = append(errs, fmt.Errorf("route %s is served but not documented: add it to internal/apidoc/%s (paths: %s: %s:) with its parameters, request body, responses, security and an example", route, file, path, strings.ToLower(method)))
		}
	}
	for _, op := range ops {
		if !slices.Contains(routes, op) {
			errs = append(errs, fmt.Errorf("operation %s is documented in internal/apidoc/%s but no route serves it: register it or remove it from the document", op, file))
		}
	}
	return errors.Join(errs...)
}
