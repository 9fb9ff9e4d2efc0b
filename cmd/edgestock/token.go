package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/agent/store"
)

// defaultTokenTTL is a token's life unless --ttl says otherwise.
const defaultTokenTTL = 90 * 24 * time.Hour

// tokenDir is where `edgestock token` finds the agent's database: the
// flags, else the agent's config file, else the agent's defaults.
type tokenDir struct {
	dataDir, config, warehouse *string
}

func tokenDirFlags(fs *flag.FlagSet, withWarehouse bool) tokenDir {
	d := tokenDir{
		dataDir: fs.String("data-dir", "", "the agent's data directory (default: the config's data-dir, else ./edgestock-data)"),
		config:  fs.String("config", "", "the agent's config file, for its data-dir and warehouse"),
	}
	if withWarehouse {
		d.warehouse = fs.String("warehouse", "", "the warehouse a new data dir is created for (default: the config's, else the host name, as the agent)")
	} else {
		d.warehouse = new(string)
	}
	return d
}

// open opens the agent's database: token works with the agent running or
// not (a revocation applies to its next request). With create, a missing
// database is created for the warehouse the agent would serve, so the
// first token can be issued before the agent ever starts (SPEC §8).
func (d tokenDir) open(ctx context.Context, create bool) (*store.DB, string, error) {
	cfg := agent.DefaultConfig()
	if *d.config != "" {
		var err error
		if cfg, err = agent.LoadConfig(*d.config); err != nil {
			return nil, "", usageError{err}
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
		return nil, "", usageError{fmt.Errorf("no agent database at %s: no token was ever issued there "+
			"(token issue creates it; is --data-dir or --config right?)", absPath(path))}
	case errors.Is(err, os.ErrNotExist):
		explicit = cfg.Warehouse // a new database records it; the agent must match
	case err != nil:
		return nil, "", err
	}
	db, err := store.Open(ctx, cfg.DataDir, store.Options{Warehouse: explicit})
	if errors.Is(err, store.ErrWrongWarehouse) {
		return nil, "", usageError{err}
	}
	return db, cfg.DataDir, err
}

// runTokenIssue is `edgestock token issue`.
func (m *Main) runTokenIssue(ctx context.Context, c *command, args []string) error {
	fs := m.flagSet(c)
	dir := tokenDirFlags(fs, true)
	name := fs.String("name", "", "who or what the token is for (required)")
	scopes := fs.String("scope", "", "scopes, comma-separated (required): "+strings.Join(agent.Scopes, ", "))
	device := fs.String("device", "", "the device ID a device token is for")
	ttl := fs.Duration("ttl", defaultTokenTTL, "how long the token is valid")
	if _, err := m.parse(fs, c, args); err != nil {
		return err
	}
	if *name == "" || *scopes == "" {
		return usageError{errors.New("token issue: --name and --scope are required")}
	}
	db, dataDir, err := dir.open(ctx, true)
	if err != nil {
		return err
	}
	defer db.Close()
	signer, err := agent.LoadSigner(dataDir)
	if err != nil {
		return err
	}
	token, claims, err := agent.IssueToken(ctx, db, signer, *name, strings.Split(*scopes, ","), *device, *ttl, time.Now().UTC())
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
	db, _, err := dir.open(ctx, false)
	if err != nil {
		return err
	}
	defer db.Close()
	tokens, err := db.Tokens(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tSCOPES\tDEVICE\tEXPIRES\tSTATE")
	for _, t := range tokens {
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
	db, _, err := dir.open(ctx, false)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.RevokeToken(ctx, ids[0], time.Now().UTC()); err != nil {
		if errors.Is(err, store.ErrTokenNotFound) {
			return usageError{fmt.Errorf("%w (edgestock token list shows the IDs)", err)}
		}
		return err
	}
	fmt.Fprintf(m.Stderr, "revoked %s\n", ids[0])
	return nil
}
