package auth

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
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/internal/store"
)

// Token scopes (SPEC §6). admin includes every other scope but device.
const (
	ScopeStockRead         = "stock:read"
	ScopeEventsWrite       = "events:write"
	ScopeReservationsWrite = "reservations:write"
	ScopeOrdersWrite       = "orders:write"
	ScopeSync              = "sync"
	ScopeAdmin             = "admin"
	ScopeDevice            = "device"
	// ScopeUplink: a hub token an agent dials the hub with (SPEC §11),
	// bound to its warehouse, with no other scope.
	ScopeUplink = "uplink"
)

// Scopes lists the valid scopes.
// AnyOf is a route scope any of scopes opens (Guard.Require).
func AnyOf(scopes ...string) string { return strings.Join(scopes, "|") }

var Scopes = []string{ScopeStockRead, ScopeEventsWrite, ScopeReservationsWrite, ScopeOrdersWrite, ScopeSync, ScopeAdmin, ScopeDevice, ScopeUplink}

// AudienceHub marks a token issued by a hub: it names no warehouse.
const AudienceHub = "hub"

// KeyFile is the token signing key in a data dir, created with 0600 at
// first use; whoever can read it can mint tokens.
const KeyFile = "token.key"

// keySize is the HMAC-SHA256 key length.
const keySize = 32

// tokenPrefix versions the token format.
const tokenPrefix = "es1"

// Claims are what a token says; the signature makes them tamper-proof.
type Claims struct {
	ID        string   `json:"id"`
	Name      string   `json:"sub"`
	Scopes    []string `json:"scopes"`
	Warehouse string   `json:"wh,omitempty"`
	Audience  string   `json:"aud,omitempty"` // AudienceHub, or "" for an agent's token
	Device    string   `json:"dev,omitempty"`
	// Channel binds a hub token to one sales channel (SPEC §9): it orders
	// and reads ATS on that channel only.
	Channel string `json:"ch,omitempty"`
	Expires int64  `json:"exp"` // unix seconds
}

// Has reports whether the claims grant scope: admin grants every scope
// but device, which only a device token has.
func (c Claims) Has(scope string) bool {
	if slices.Contains(c.Scopes, scope) {
		return true
	}
	return scope != ScopeDevice && slices.Contains(c.Scopes, ScopeAdmin)
}

// HasAPIScope reports whether the claims grant any scope of the HTTP API:
// a device token is for MQTT alone, an uplink token for the uplink.
func (c Claims) HasAPIScope() bool {
	return slices.ContainsFunc(c.Scopes, func(s string) bool { return s != ScopeDevice && s != ScopeUplink })
}

// Signer issues and verifies tokens with an HMAC-SHA256 key.
type Signer struct{ key []byte }

// NewSigner returns a signer for key (at least 32 bytes).
func NewSigner(key []byte) (Signer, error) {
	if len(key) < keySize {
		return Signer{}, fmt.Errorf("token key: %d bytes, want at least %d", len(key), keySize)
	}
	return Signer{key: key}, nil
}

// NewKey returns a fresh random signing key.
func NewKey() []byte {
	key := make([]byte, keySize)
	_, _ = rand.Read(key) // never fails (crypto/rand)
	return key
}

// LoadSigner reads the data dir's key file, creating it (0600) if absent.
func LoadSigner(dataDir string) (Signer, error) {
	path := filepath.Join(dataDir, KeyFile)
	key, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if key, err = createKeyFile(dataDir, path); errors.Is(err, os.ErrExist) { // created meanwhile by another process
			return LoadSigner(dataDir)
		}
	}
	if err != nil {
		return Signer{}, fmt.Errorf("token key %s: %w", path, err)
	}
	return NewSigner(key)
}

func createKeyFile(dataDir, path string) ([]byte, error) {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	key := NewKey()
	if _, err := f.Write(key); err != nil {
		_ = f.Close()
		return nil, err
	}
	return key, errors.Join(f.Sync(), f.Close())
}

// Sign signs claims into a token: es1.<claims>.<signature>.
func (s Signer) Sign(c Claims) string {
	body, _ := json.Marshal(c) // Claims always marshal
	payload := base64.RawURLEncoding.EncodeToString(body)
	return tokenPrefix + "." + payload + "." + s.mac(payload)
}

func (s Signer) mac(payload string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(tokenPrefix + "." + payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// ErrNoToken is why a role refuses to listen beyond loopback: no token
// was ever issued, so every request would be refused.
var ErrNoToken = errors.New("no token has been issued")

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
	if !hmac.Equal([]byte(s.mac(parts[1])), []byte(parts[2])) {
		return Claims{}, fmt.Errorf("%w: bad signature (issued by another agent or hub?)", ErrTokenInvalid)
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

// newTokenID returns a random token id.
func newTokenID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "tok-" + hex.EncodeToString(b[:])
}

// Recorder is where issued tokens are recorded: an agent's or a hub's store.
type Recorder interface {
	AddToken(ctx context.Context, t store.TokenRecord) error
}

// Request is what a token is issued for.
type Request struct {
	Name   string
	Scopes []string
	// Device binds a device token to one device ID (MQTT username).
	Device string
	// Warehouse is the issuing agent's warehouse; "" with Audience set.
	Warehouse string
	Audience  string
	// Channel binds a hub token to one sales channel: orders:write and
	// stock:read only, and those on the channel alone (SPEC §9).
	Channel string
	TTL     time.Duration
}

// channelScopes are the scopes a channel-bound token may have.
var channelScopes = []string{ScopeOrdersWrite, ScopeStockRead}

// checkChannel validates a channel binding: a hub's token, a channel ID
// other than the warehouse's own holder, and only the channel scopes.
func (req Request) checkChannel() error {
	if req.Channel == "" {
		return nil
	}
	if req.Audience != AudienceHub {
		return errors.New("channel: only a hub's tokens are bound to a channel (--role hub)")
	}
	if !drivers.ValidChannel(req.Channel) {
		return fmt.Errorf("channel %q: must be 1-64 chars of [A-Za-z0-9._-], not %q", req.Channel, drivers.LocalHolder)
	}
	for _, sc := range req.Scopes {
		if !slices.Contains(channelScopes, sc) {
			return fmt.Errorf("scope %q: a channel-bound token has only %s", sc, strings.Join(channelScopes, ", "))
		}
	}
	return nil
}

// checkUplink: an uplink token is a hub's, names its warehouse, and has
// no other scope (it opens the uplink route alone).
func (req Request) checkUplink() error {
	if !slices.Contains(req.Scopes, ScopeUplink) {
		if req.Audience == AudienceHub && req.Warehouse != "" {
			return errors.New("warehouse: a hub's token names a warehouse only with the uplink scope")
		}
		return nil
	}
	switch {
	case req.Audience != AudienceHub:
		return errors.New("scope uplink: only a hub issues uplink tokens (--role hub)")
	case !drivers.ValidID(req.Warehouse):
		return fmt.Errorf("scope uplink: the token names the warehouse that dials with it (--warehouse ID), not %q", req.Warehouse)
	case len(req.Scopes) != 1:
		return errors.New("scope uplink: an uplink token has no other scope")
	}
	return nil
}

// Issue validates req, records the token and returns it signed.
func Issue(ctx context.Context, rec Recorder, s Signer, req Request, at time.Time) (string, Claims, error) {
	if req.Name == "" {
		return "", Claims{}, errors.New("name: required")
	}
	if len(req.Scopes) == 0 {
		return "", Claims{}, errors.New("scope: at least one is required")
	}
	for _, sc := range req.Scopes {
		if !slices.Contains(Scopes, sc) {
			return "", Claims{}, fmt.Errorf("scope %q: must be one of %s", sc, strings.Join(Scopes, ", "))
		}
	}
	if req.Device != "" && !drivers.ValidID(req.Device) {
		return "", Claims{}, fmt.Errorf("device %q: must be 1-64 chars of [A-Za-z0-9._-] (it is the MQTT username and a topic level)", req.Device)
	}
	if slices.Contains(req.Scopes, ScopeDevice) && req.Device == "" {
		return "", Claims{}, errors.New("device: a token with the device scope names its device (--device ID)")
	}
	if err := req.checkChannel(); err != nil {
		return "", Claims{}, err
	}
	if err := req.checkUplink(); err != nil {
		return "", Claims{}, err
	}
	if req.TTL <= 0 {
		return "", Claims{}, errors.New("ttl: must be > 0")
	}
	c := Claims{ID: newTokenID(), Name: req.Name, Scopes: req.Scopes, Warehouse: req.Warehouse, Audience: req.Audience,
		Device: req.Device, Channel: req.Channel, Expires: at.Add(req.TTL).Unix()}
	if err := rec.AddToken(ctx, store.TokenRecord{ID: c.ID, Name: c.Name, Scopes: c.Scopes, Device: c.Device, Warehouse: c.Warehouse,
		IssuedAt: at, ExpiresAt: time.Unix(c.Expires, 0)}); err != nil {
		return "", Claims{}, err
	}
	return s.Sign(c), c, nil
}

// FromFile resolves a configured token: "@FILE" is the token in FILE
// (trimmed; an empty file is an error), so a token need not be on the
// command line, where ps shows it, nor in a config file; anything else is
// the token itself.
func FromFile(value string) (string, error) {
	path, ok := strings.CutPrefix(value, "@")
	if !ok {
		return value, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the token file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("%s is empty: put the token in it", path)
	}
	return token, nil
}
