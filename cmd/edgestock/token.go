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

	"github.com/edgestock/edgestock/agent/store"
	"github.com/edgestock/edgestock/internal/auth"
)

// defaultTokenTTL is a token's life unless --ttl says otherwise.
const defaultTokenTTL = 90 * 24 * time.Hour

// runToken is `edgestock token issue|list|revoke`: it works on the data dir
// directly, with the agent running or not (revocations apply to the
// running agent's next request).
func (m *Main) runToken(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{errors.New("token: want issue, list or revoke")}
	}
	fs := flag.NewFlagSet("token "+args[0], flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	dataDir := fs.String("data-dir", "./edgestock-data", "the agent's data directory")
	name := fs.String("name", "", "who or what the token is for (issue)")
	scopes := fs.String("scope", "", "scopes, comma-separated: "+strings.Join(auth.Scopes, ", ")+" (issue)")
	device := fs.String("device", "", "the device ID a device token is for (issue)")
	ttl := fs.Duration("ttl", defaultTokenTTL, "how long the token is valid (issue)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(*dataDir, store.FileName)); err != nil {
		return usageError{fmt.Errorf("no agent database in %s (start the agent once, or pass --data-dir)", *dataDir)}
	}
	db, err := store.Open(ctx, *dataDir, store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	switch args[0] {
	case "issue":
		if *name == "" || *scopes == "" {
			return usageError{errors.New("token issue: --name and --scope are required")}
		}
		signer, err := auth.LoadSigner(*dataDir)
		if err != nil {
			return err
		}
		token, c, err := auth.Issue(ctx, db, signer, auth.Request{Name: *name, Scopes: strings.Split(*scopes, ","), Device: *device,
			Warehouse: db.Warehouse(), TTL: *ttl}, time.Now().UTC())
		if err != nil {
			return usageError{fmt.Errorf("token issue: %w", err)}
		}
		fmt.Fprintln(m.Stdout, token)
		fmt.Fprintf(m.Stderr, "issued %s for %s (%s), expires %s\n", c.ID, c.Name, strings.Join(c.Scopes, ","), time.Unix(c.Expires, 0).UTC().Format(time.RFC3339))
	case "list":
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
	case "revoke":
		if fs.NArg() != 1 {
			return usageError{errors.New("token revoke: want one token ID")}
		}
		if err := db.RevokeToken(ctx, fs.Arg(0), time.Now().UTC()); err != nil {
			if errors.Is(err, store.ErrTokenNotFound) {
				return usageError{err}
			}
			return err
		}
		fmt.Fprintf(m.Stderr, "revoked %s\n", fs.Arg(0))
	default:
		return usageError{fmt.Errorf("token: unknown command %q (issue, list, revoke)", args[0])}
	}
	return nil
}
