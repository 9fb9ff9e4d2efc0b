package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/sync/hub"
)

// defaultTokenTTL is a token's life unless --ttl says otherwise.
const defaultTokenTTL = 90 * 24 * time.Hour

// tokenDir is where `edgestock token` finds the tokens: an agent's data
// dir (the flags, else the agent's config file, else the agent's
// defaults), or with --role hub a hub's data dir or --store URL.
type tokenDir struct {
	dataDir, config, warehouse, role, storeURL *string
}

func tokenDirFlags(fs *flag.FlagSet, withWarehouse bool) tokenDir {
	d := tokenDir{
		dataDir:  fs.String("data-dir", "", "the data directory (default: the config's data-dir, else ./edgestock-data; a hub's ./edgestock-hub-data)"),
		config:   fs.String("config", "", "the agent's config file, for its data-dir and warehouse"),
		role:     fs.String("role", "agent", "whose tokens: agent or hub"),
		storeURL: fs.String("store", "", "a hub's postgres:// store (implies --role hub)"),
	}
	if withWarehouse {
		d.warehouse = fs.String("warehouse", "", "the warehouse a new data dir is created for (default: the config's, else the host name, as the agent); "+
			"with --role hub, the warehouse an uplink token is for")
	} else {
		d.warehouse = new(string)
	}
	return d
}

// tokens is an open token store with the signer and binding of its role.
type tokens struct {
	hub.TokenStore
	signer auth.Signer
	// warehouse or audience bind the tokens issued (auth.Request).
	warehouse, audience string
}

// open opens the role's token store: token works with the agent or hub
// running or not (a revocation applies to its next request). With create,
// a missing database is created, so the first token can be issued before
// the agent or hub ever starts (SPEC §8).
func (d tokenDir) open(ctx context.Context, create bool) (*tokens, error) {
	if *d.storeURL != "" {
		*d.role = "hub"
	}
	switch *d.role {
	case "hub":
		return d.openHub(ctx)
	case "agent":
		return d.openAgent(ctx, create)
	}
	return nil, usageError{fmt.Errorf("--role %q: must be agent or hub", *d.role)}
}

func (d tokenDir) openHub(ctx context.Context) (*tokens, error) {
	if *d.config != "" {
		return nil, usageError{errors.New("--config is an agent's: a hub's tokens take --data-dir or --store (and --warehouse for an uplink token)")}
	}
	dataDir := *d.dataDir
	if dataDir == "" {
		dataDir = hub.DefaultFileConfig().DataDir
	}
	st, signer, err := hub.OpenTokens(ctx, dataDir, *d.storeURL)
	if err != nil {
		return nil, err
	}
	return &tokens{TokenStore: st, signer: signer, audience: auth.AudienceHub}, nil
}

func (d tokenDir) openAgent(ctx context.Context, create bool) (*tokens, error) {
	cfg := agent.DefaultConfig()
	if *d.config != "" {
		var err error
		if cfg, err = agent.LoadConfig(*d.config); err != nil {
			return nil, usageError{err}
		}
	}
	if *d.dataDir != "" {
		cfg.DataDir = *d.dataDir
	}
	explicit := *d.warehouse
	if explicit != "" {
		cfg.Warehouse = explicit
	}
	cfg.Normalize()
	path := filepath.Join(cfg.DataDir, store.FileName)
	_, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && !create:
		return nil, usageError{fmt.Errorf("no agent database at %s: no token was ever issued there "+
			"(token issue creates it; is --data-dir or --config right? a hub's tokens take --role hub)", absPath(path))}
	case errors.Is(err, os.ErrNotExist):
		explicit = cfg.Warehouse // a new database records it; the agent must match
	case err != nil:
		return nil, err
	}
	db, err := store.Open(ctx, cfg.DataDir, store.Options{Warehouse: explicit, Beside: true})
	if errors.Is(err, store.ErrWrongWarehouse) {
		return nil, usageError{err}
	}
	if err != nil {
		return nil, err
	}
	signer, err := auth.LoadSigner(cfg.DataDir)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return &tokens{TokenStore: db, signer: signer, warehouse: db.Warehouse()}, nil
}

// runTokenIssue is `edgestock token issue`.
func (m *Main) runTokenIssue(ctx context.Context, c *command, args []string) error {
	fs := m.flagSet(c)
	dir := tokenDirFlags(fs, true)
	name := fs.String("name", "", "who or what the token is for (required)")
	scopes := fs.String("scope", "", "scopes, comma-separated (required): "+strings.Join(auth.Scopes, ", "))
	device := fs.String("device", "", "the device ID a device token is for")
	channel := fs.String("channel", "", "bind a hub token to one sales channel (orders:write, stock:read on it only)")
	ttl := fs.Duration("ttl", defaultTokenTTL, "how long the token is valid")
	if _, err := m.parse(fs, c, args); err != nil {
		return err
	}
	if *name == "" || *scopes == "" {
		return usageError{errors.New("token issue: --name and --scope are required")}
	}
	if slices.Contains(strings.Split(*scopes, ","), auth.ScopeUplink) && !flagSet(fs, "role") {
		*dir.role = "hub" // only a hub issues uplink tokens (SPEC §11)
	}
	t, err := dir.open(ctx, true)
	if err != nil {
		return err
	}
	defer t.Close()
	wh := t.warehouse
	if t.audience == auth.AudienceHub {
		wh = *dir.warehouse // an uplink token's
	}
	token, claims, err := auth.Issue(ctx, t, t.signer, auth.Request{Name: *name, Scopes: strings.Split(*scopes, ","), Device: *device,
		Channel: *channel, Warehouse: wh, Audience: t.audience, TTL: *ttl}, time.Now().UTC())
	if err != nil {
		return usageError{fmt.Errorf("token issue: %w", err)}
	}
	fmt.Fprintln(m.Stdout, token)
	fmt.Fprintf(m.Stderr, "issued %s for %s (%s), expires %s\n", claims.ID, claims.Name, strings.Join(claims.Scopes, ","), time.Unix(claims.Expires, 0).UTC().Format(time.RFC3339))
	return nil
}

// runTokenList is `edgestock token list`.
func (m *Main) runTokenList(ctx context.Context, c *command, args []string) error {
	fs := m.flagSet(c)
	dir := tokenDirFlags(fs, false)
	if _, err := m.parse(fs, c, args); err != nil {
		return err
	}
	t, err := dir.open(ctx, false)
	if err != nil {
		return err
	}
	defer t.Close()
	list, err := t.Tokens(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tSCOPES\tDEVICE\tEXPIRES\tSTATE")
	for _, t := range list {
		state := "valid"
		switch {
		case !t.RevokedAt.IsZero():
			state = "revoked " + t.RevokedAt.Format(time.RFC3339)
		case time.Now().After(t.ExpiresAt):
			state = "expired"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, strings.Join(t.Scopes, ","), t.Device, t.ExpiresAt.Format(time.RFC3339), state)
	}
	return w.Flush()
}

// runTokenRevoke is `edgestock token revoke ID`.
func (m *Main) runTokenRevoke(ctx context.Context, c *command, args []string) error {
	fs := m.flagSet(c)
	dir := tokenDirFlags(fs, false)
	ids, err := m.parse(fs, c, args)
	if err != nil {
		return err
	}
	t, err := dir.open(ctx, false)
	if err != nil {
		return err
	}
	defer t.Close()
	if err := t.RevokeToken(ctx, ids[0], time.Now().UTC()); err != nil {
		if errors.Is(err, store.ErrTokenNotFound) {
			return usageError{fmt.Errorf("%w (edgestock token list shows the IDs)", err)}
		}
		return err
	}
	fmt.Fprintf(m.Stderr, "revoked %s\n", ids[0])
	return nil
}
