package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/edgestock/edgestock/agent/sites"
)

// runSimulateSites is `edgestock simulate sites`: N light agents in this
// process (agent/sites), each dialling the hub over an uplink with a token
// this command issues in the hub's token store, each committing receives
// at --rate a second, with a progress line; for scale runs of the hub
// (docs/SCALE.md).
func (m *Main) runSimulateSites(ctx context.Context, c *command, args []string) error {
	fs := m.flagSet(c)
	count := fs.Int("count", 0, "how many sites (required)")
	hubs := fs.String("hub", "", "the hub URL(s) every site dials, URL[,URL…] (required)")
	hubStore := fs.String("store", "", "the hub's postgres:// store, where the sites' uplink tokens are issued")
	hubDir := fs.String("data-dir", "", "the SQLite hub's data dir, where the sites' uplink tokens are issued")
	prefix := fs.String("prefix", "site", "warehouse IDs are PREFIX000, PREFIX001, …; the hub lists them as --agent PREFIXnnn=uplink")
	rate := fs.Float64("rate", 10, "receives per second per site")
	duration := fs.Duration("duration", time.Minute, "how long to send, once every site is up")
	dir := fs.String("dir", "", "where the sites keep their data (default: a temporary directory, removed at the end)")
	if _, err := m.parse(fs, c, args); err != nil {
		return err
	}
	if *count < 1 || *hubs == "" || *rate <= 0 || (*hubStore == "") == (*hubDir == "") {
		return usageError{errors.New("simulate sites: need --count >= 1, --hub URL, --rate > 0, and the hub's --store or --data-dir (for the uplink tokens)")}
	}
	role := "hub"
	t, err := tokenDir{dataDir: hubDir, config: new(string), warehouse: new(string), role: &role, storeURL: hubStore}.open(ctx, false)
	if err != nil {
		return err
	}
	defer t.Close()
	if *dir == "" {
		if *dir, err = os.MkdirTemp("", "edgestock-sites-"); err != nil {
			return err
		}
		defer os.RemoveAll(*dir)
	}
	fmt.Fprintf(m.Stderr, "starting %d sites dialling %s (data in %s)…\n", *count, *hubs, *dir)
	started := time.Now()
	all, err := sites.Start(ctx, sites.Config{Count: *count, Prefix: *prefix, Hub: *hubs, Dir: *dir,
		Logger: newLogger(m.Stderr, "text", slog.LevelWarn), Token: sites.Issuer(t, t.signer, 24*time.Hour)})
	if err != nil {
		return err
	}
	defer sites.Close(all)
	fmt.Fprintf(m.Stderr, "%d sites up in %v; sending %g receives/s each for %v\n", len(all), time.Since(started).Round(time.Millisecond), *rate, *duration)

	runCtx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	var acked atomic.Int64
	done := make(chan struct{})
	go func() { // the progress line
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		start := time.Now()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-tick.C:
				el := time.Since(start)
				fmt.Fprintf(m.Stderr, "\r%s %3.0fs  %d acked  %.0f/s ", bar(int64(el), int64(*duration)),
					el.Seconds(), acked.Load(), float64(acked.Load())/el.Seconds())
			}
		}
	}()
	n, failed := sites.Run(runCtx, all, *rate, func(*sites.Site, int64, time.Time) { acked.Add(1) })
	<-done
	fmt.Fprintln(m.Stderr)
	drainCtx, stop := context.WithTimeout(ctx, time.Minute)
	defer stop()
	behind := sites.Drain(drainCtx, all) // the hub has pulled every site's last change
	fmt.Fprintf(m.Stdout, "sites: %d\nacked: %d (%.0f/s)\nfailed: %d\nnot pulled by the hub within a minute: %d sites\n",
		len(all), n, float64(n)/duration.Seconds(), failed, behind)
	return nil
}
