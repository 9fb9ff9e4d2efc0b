package agent

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/edgestock/edgestock/agent/store"
)

// Token scopes (SPEC §6). admin includes every other scope.
const (
	ScopeStockRead         = "stock:read"
	ScopeEventsWrite       = "events:write"
	ScopeReservationsWrite = "reservations:write"
	ScopeSync              = "sync"
	ScopeAdmin             = "admin"
	ScopeDevice            = "device"
)

// Scopes lists the valid scopes.
var Scopes = []string{ScopeStockRead, ScopeEventsWrite, ScopeReservationsWrite, ScopeSync, ScopeAdmin, ScopeDevice}

// KeyFile is the token signing key in the data dir, created with 0600 at
// first use; whoever can read it can mint tokens.
const KeyFile = "token.key"

// tokenPrefix versions the token format.
const tokenPrefix = "es1"

// Claims are what a token says; the signature makes them tamper-proof.
type Claims struct {
	ID        string   `json:"id"`
	Name      string   `json:"sub"`
	Scopes    []string `json:"scopes"`
	Warehouse string   `json:"wh"`
	Device    string   `json:"dev,omitempty"`
	Expires   int64    `json:"exp"` // unix seconds
}

// Has reports whether the claims grant scope.
func (c Claims) Has(scope string) bool {
	return slices.Contains(c.Scopes, scope) || slices.Contains(c.Scopes, ScopeAdmin)
}

// Signer issues and verifies tokens with an HMAC-SHA256 key.
type Signer struct{ key []byte }

// LoadSigner reads the data dir's key, creating it (0600) if absent.
func LoadSigner(dataDir string) (Signer, error) {
	path := filepath.Join(dataDir, KeyFile)
	key, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return Signer{}, err
		}
		if err := os.MkdirAll(dataDir, 0o750); err != nil {
			return Signer{}, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) { // created meanwhile by another process
			return LoadSigner(dataDir)
		}
		if err != nil {
			return Signer{}, fmt.Errorf("token key: %w", err)
		}
		if _, err := f.Write(key); err != nil {
			_ = f.Close()
			return Signer{}, fmt.Errorf("token key: %w", err)
		}
		if err := errors.Join(f.Sync(), f.Close()); err != nil {
			return Signer{}, fmt.Errorf("token key: %w", err)
		}
		return Signer{key: key}, nil
	}
	if err != nil {
		return Signer{}, fmt.Errorf("token key: %w", err)
	}
	if len(key) < 32 {
		return Signer{}, fmt.Errorf("token key %s: too short", path)
	}
	return Signer{key: key}, nil
}

// Issue signs claims into a token: es1.<claims>.<signature>.
func (s Signer) Issue(c Claims) string {
	body, _ := json.Marshal(c) // Claims always marshal
	payload := base64.RawURLEncoding.EncodeToString(body)
	return tokenPrefix + "." + payload + "." + s.sign(payload)
}

func (s Signer) sign(payload string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(tokenPrefix + "." + payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Errors of Verify.
var (
	ErrTokenInvalid = errors.New("token invalid")
	ErrTokenExpired = errors.New("token expired")
)

// Verify checks a token's signature and expiry and returns its claims.
func (s Signer) Verify(token string, at time.Time) (Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] != tokenPrefix {
		return Claims{}, fmt.Errorf("%w: not an edgestock token", ErrTokenInvalid)
	}
	if !hmac.Equal([]byte(s.sign(parts[1])), []byte(parts[2])) {
		return Claims{}, fmt.Errorf("%w: bad signature", ErrTokenInvalid)
	}
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrTokenInvalid, err)
	}
	var c Claims
	if err := json.Unmarshal(body, &c); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrTokenInvalid, err)
	}
	if at.Unix() >= c.Expires {
		return c, fmt.Errorf("%w at %s", ErrTokenExpired, time.Unix(c.Expires, 0).UTC().Format(time.RFC3339))
	}
	return c, nil
}

// NewTokenID returns a random token id.
func NewTokenID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "tok-" + hex.EncodeToString(b[:])
}

// IssueToken signs a token for the store's warehouse and records it.
func IssueToken(ctx context.Context, st *store.DB, s Signer, name string, scopes []string, device string, ttl time.Duration, at time.Time) (string, Claims, error) {
	for _, sc := range scopes {
		if !slices.Contains(Scopes, sc) {
			return "", Claims{}, fmt.Errorf("scope %q: must be one of %s", sc, strings.Join(Scopes, ", "))
		}
	}
	if name == "" {
		return "", Claims{}, errors.New("name: required")
	}
	if ttl <= 0 {
		return "", Claims{}, errors.New("ttl: must be > 0")
	}
	c := Claims{ID: NewTokenID(), Name: name, Scopes: scopes, Warehouse: st.Warehouse(), Device: device, Expires: at.Add(ttl).Unix()}
	if err := st.AddToken(ctx, store.TokenRecord{ID: c.ID, Name: name, Scopes: scopes, Device: device, IssuedAt: at,
		ExpiresAt: time.Unix(c.Expires, 0)}); err != nil {
		return "", Claims{}, err
	}
	return s.Issue(c), c, nil
}

// isLoopback reports whether a listen address only takes local connections.
func isLoopback(addr string) bool {
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

// authRequired says whether requests need a token: always on a non-loopback
// listener (SPEC §6), and on loopback when http.auth is "required".
func (a *Agent) authRequired() bool {
	return a.cfg.HTTP.Auth == "required" || !isLoopback(a.cfg.HTTP.Listen)
}

// requireScope wraps h: with auth required, the request needs a valid,
// unrevoked token of this warehouse with scope ("" = any scope). 401 when
// the token is missing or not valid, 403 when it lacks the scope.
func (a *Agent) requireScope(scope string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !a.authRequired() {
			h(w, r)
			return
		}
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="edgestock"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "a bearer token is required")
			return
		}
		c, err := a.validToken(r.Context(), token)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="edgestock", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "%v", err)
			return
		}
		if c.Warehouse != a.cfg.Warehouse {
			writeError(w, http.StatusForbidden, "forbidden", "token %s is for warehouse %s", c.ID, c.Warehouse)
			return
		}
		if scope != "" && !c.Has(scope) {
			writeError(w, http.StatusForbidden, "forbidden", "token %s lacks the %s scope", c.ID, scope)
			return
		}
		h(w, r)
	}
}

// validToken checks token's signature and expiry, and that this agent's
// store knows it and it is not revoked. Its warehouse and scopes are the
// caller's to check.
func (a *Agent) validToken(ctx context.Context, token string) (Claims, error) {
	c, err := a.signer.Verify(token, now())
	if err != nil {
		return c, err
	}
	rec, err := a.store.Token(ctx, c.ID)
	if err == nil && !rec.RevokedAt.IsZero() {
		err = fmt.Errorf("token %s was revoked", c.ID)
	}
	return c, err
}

// IssueToken issues a token from a running agent (the CLI does the same
// on the data dir with the agent stopped or running).
func (a *Agent) IssueToken(ctx context.Context, name string, scopes []string, device string, ttl time.Duration) (string, Claims, error) {
	return IssueToken(ctx, a.store, a.signer, name, scopes, device, ttl, now())
}

// RevokeToken revokes a token; it applies to the next request.
func (a *Agent) RevokeToken(ctx context.Context, id string) error {
	return a.store.RevokeToken(ctx, id, now())
}
