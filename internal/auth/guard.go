package auth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/edgestock/edgestock/internal/httpjson"
	"github.com/edgestock/edgestock/internal/store"
)

// Lookup reads an issued token's record: its revocation is checked on every
// request.
type Lookup interface {
	Token(ctx context.Context, id string) (store.TokenRecord, error)
}

// Guard checks the bearer token of HTTP requests.
type Guard struct {
	// Required says whether requests need a token now: always beyond
	// loopback (SPEC §6). Nil means always.
	Required func() bool
	Signer   Signer
	Tokens   Lookup
	// Bound checks that a token was issued for this installation (its
	// warehouse, or the hub audience): a nil error means it was.
	Bound func(Claims) error
	Now   func() time.Time
}

type claimsKey struct{}

// ClaimsOf returns the claims of the request's token; ok is false when the
// request went through without one (auth not required).
func ClaimsOf(r *http.Request) (Claims, bool) {
	c, ok := r.Context().Value(claimsKey{}).(Claims)
	return c, ok
}

// Require wraps h: when a token is required, the request needs a valid,
// unrevoked token of this installation with scope (one of them, for an
// AnyOf scope), or, for scope "", any API scope (a device token opens no HTTP route). 401 when the token is
// missing or not valid, 403 when it lacks the scope.
func (g *Guard) Require(scope string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if g.Required != nil && !g.Required() {
			h(w, r)
			return
		}
		token := bearer(r.Header.Get("Authorization"))
		if token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="edgestock"`)
			httpjson.Error(w, http.StatusUnauthorized, "unauthorized", "a bearer token is required (Authorization: Bearer TOKEN)")
			return
		}
		c, err := g.Valid(r.Context(), token)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="edgestock", error="invalid_token"`)
			httpjson.Error(w, http.StatusUnauthorized, "unauthorized", "%v", err)
			return
		}
		if g.Bound != nil {
			if err := g.Bound(c); err != nil {
				httpjson.Error(w, http.StatusForbidden, "forbidden", "token %s: %v", c.ID, err)
				return
			}
		}
		switch {
		case scope == "" && !c.HasAPIScope():
			httpjson.Error(w, http.StatusForbidden, "forbidden", "token %s opens no route of the HTTP API (a device token is for MQTT, an uplink token for the uplink)", c.ID)
			return
		case scope != "" && !slices.ContainsFunc(strings.Split(scope, "|"), c.Has):
			httpjson.Error(w, http.StatusForbidden, "forbidden", "token %s lacks the %s scope", c.ID, strings.ReplaceAll(scope, "|", " or "))
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, c)))
	}
}

// Valid checks token's signature and expiry, and that the store knows it
// and it is not revoked. Its binding and scopes are the caller's to check.
func (g *Guard) Valid(ctx context.Context, token string) (Claims, error) {
	now := time.Now
	if g.Now != nil {
		now = g.Now
	}
	c, err := g.Signer.Verify(token, now())
	if err != nil {
		return c, err
	}
	rec, err := g.Tokens.Token(ctx, c.ID)
	if err == nil && !rec.RevokedAt.IsZero() {
		err = fmt.Errorf("%w: token %s was revoked", ErrRevoked, c.ID)
	}
	return c, err
}

// ErrRevoked is Valid's error for a revoked token.
var ErrRevoked = errors.New("revoked")

// Refused reports whether err, from Valid, says the token is no good (not
// valid, expired, unknown, revoked), rather than that it could not be
// checked (the store failing).
func Refused(err error) bool {
	return errors.Is(err, ErrTokenInvalid) || errors.Is(err, ErrTokenExpired) || errors.Is(err, ErrRevoked) || errors.Is(err, store.ErrTokenNotFound)
}

// Bearer is the token of an Authorization header ("" when none).
func Bearer(header string) string { return bearer(header) }

// bearer returns the token of an Authorization header: the scheme is
// case-insensitive (RFC 9110 §11.1).
func bearer(header string) string {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// BoundToWarehouse accepts the tokens an agent of warehouse issued.
func BoundToWarehouse(warehouse string) func(Claims) error {
	return func(c Claims) error {
		if c.Audience != "" || c.Warehouse != warehouse {
			return fmt.Errorf("issued for %s, not warehouse %s", c.issuer(), warehouse)
		}
		return nil
	}
}

// BoundToHub accepts the tokens a hub issued.
func BoundToHub(c Claims) error {
	if c.Audience != AudienceHub {
		return fmt.Errorf("issued for %s, not this hub", c.issuer())
	}
	return nil
}

func (c Claims) issuer() string {
	if c.Audience == AudienceHub {
		return "a hub"
	}
	return "warehouse " + c.Warehouse
}

// IsLoopback reports whether a listen address only takes local connections.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
