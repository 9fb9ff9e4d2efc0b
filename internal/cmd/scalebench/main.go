// Command scalebench measures the hub with many sites (issue #17, SPEC
// §11): N light agents (agent/sites) in this process, each committing
// receives at a steady rate, and one hub process on PostgreSQL, with the
// sites dialling it (uplink) and, side by side, the hub dialling them
// (pull). For each mode it reports the receives acknowledged per second,
// the entries the hub merged per second, the latency from a site's
// acknowledgement to the hub's stream event, the hub's CPU and memory,
// and PostgreSQL transactions per merged entry.
//
// Usage:
//
//	go build -o bin/edgestock ./cmd/edgestock
//	go run ./internal/cmd/scalebench -bin bin/edgestock -store postgres://… [-sites 500] [-rate 10]
//	    [-warmup 10s] [-duration 30s] [-modes uplink,pull] [-out FILE]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edgestock/edgestock/agent/sites"
	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/internal/mosquitto"
	"github.com/edgestock/edgestock/internal/procstat"
	"github.com/edgestock/edgestock/internal/store/pgstore"
)

type options struct {
	bin, store, out  string
	sites            int
	rate             float64
	warmup, duration time.Duration
	modes            []string
}

func main() {
	var o options
	var modes string
	flag.StringVar(&o.bin, "bin", "bin/edgestock", "edgestock binary (the hub runs as its own process)")
	flag.StringVar(&o.store, "store", os.Getenv("EDGESTOCK_TEST_POSTGRES"), "PostgreSQL DSN (a schema of its own is made per mode)")
	flag.IntVar(&o.sites, "sites", 500, "sites")
	flag.Float64Var(&o.rate, "rate", 10, "receives per second per site")
	flag.DurationVar(&o.warmup, "warmup", 10*time.Second, "sending before the measured window")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "the measured window")
	flag.StringVar(&modes, "modes", "uplink,pull", "uplink (the sites dial the hub), pull (the hub dials them)")
	flag.StringVar(&o.out, "out", "", "also write the report here")
	cpuProfile := flag.String("cpuprofile", "", "write this process's CPU profile (the sites' side) here")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	o.modes = strings.Split(modes, ",")
	if o.store == "" {
		log.Fatal("scalebench: -store postgres://… (or EDGESTOCK_TEST_POSTGRES) is required")
	}
	var report strings.Builder
	fmt.Fprintf(&report, "scalebench: %d sites × %g receives/s, %v warm-up, %v measured, hub on PostgreSQL\n\n", o.sites, o.rate, o.warmup, o.duration)
	fmt.Fprintf(&report, "| mode | acked/s | merged entries/s | commit→hub p50 | p99 | max | hub CPU (cores) | hub RSS MiB | hub KiB/site | PG xacts/entry |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, mode := range o.modes {
		r, err := run(o, mode)
		if err != nil {
			pprof.StopCPUProfile()
			log.Fatalf("scalebench %s: %v", mode, err)
		}
		row := fmt.Sprintf("| %s | %.0f | %.0f | %.0f ms | %.0f ms | %.0f ms | %.2f | %.0f | %.1f | %.2f |\n", mode, r.acked, r.merged,
			r.p50.Seconds()*1000, r.p99.Seconds()*1000, r.max.Seconds()*1000, r.cpu, r.rssMiB, r.kibPerSite, r.xactsPerEntry)
		progress("%s done: %s", mode, strings.TrimSpace(row))
		report.WriteString(row)
	}
	fmt.Print(report.String())
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(report.String()), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

type result struct {
	acked, merged, cpu, rssMiB, kibPerSite, xactsPerEntry float64
	p50, p99, max                                         time.Duration
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "scalebench: "+format+"\n", args...)
}

func run(o options, mode string) (result, error) {
	ctx := context.Background()
	dsn, drop, err := freshSchema(ctx, o.store)
	if err != nil {
		return result{}, err
	}
	defer drop()
	dir, err := os.MkdirTemp("", "scalebench-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

	// The hub's port is taken just before it starts (in pull mode, after
	// the sites took theirs).
	var addr, hubURL string
	pickAddr := func() error {
		a, err := mosquitto.FreeAddr()
		addr, hubURL = a, "http://"+a
		return err
	}
	agents := map[string]string{}
	var all []*sites.Site
	var hub *exec.Cmd
	startHub := func() error {
		cfg := "agents:\n"
		for wh, u := range agents {
			cfg += fmt.Sprintf("  %s: %q\n", wh, u)
		}
		file := filepath.Join(dir, "hub.yaml")
		if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
			return err
		}
		hub = exec.Command(o.bin, "hub", "--config", file, "--store", dsn, "--name", "bench", "--http", addr, "--data-dir", filepath.Join(dir, "hub"), "--log-level", "error")
		hub.Stderr = os.Stderr
		if err := hub.Start(); err != nil {
			return err
		}
		return waitFor(2*time.Minute, func() bool { return get(hubURL+"/healthz", nil) == nil })
	}
	defer func() {
		sites.Close(all)
		if hub != nil && hub.Process != nil {
			_ = hub.Process.Kill()
			_ = hub.Wait()
		}
	}()
	switch mode {
	case "uplink":
		for i := range o.sites {
			agents[sites.Warehouse("site", i)] = "uplink"
		}
		if err := pickAddr(); err != nil {
			return result{}, err
		}
		if err := startHub(); err != nil {
			return result{}, err
		}
		st, err := pgstore.Open(ctx, dsn, func() {}, logger)
		if err != nil {
			return result{}, err
		}
		defer st.Close()
		key, err := st.SigningKey(ctx, auth.NewKey)
		if err != nil {
			return result{}, err
		}
		signer, err := auth.NewSigner(key)
		if err != nil {
			return result{}, err
		}
		progress("uplink: starting %d sites…", o.sites)
		all, err = sites.Start(ctx, sites.Config{Count: o.sites, Prefix: "site", Hub: hubURL, Dir: dir, Logger: logger,
			Token: sites.Issuer(st, signer, time.Hour)})
		if err != nil {
			return result{}, err
		}
	case "pull":
		progress("pull: starting %d sites…", o.sites)
		if all, err = sites.Start(ctx, sites.Config{Count: o.sites, Prefix: "site", Dir: dir, Logger: logger}); err != nil {
			return result{}, err
		}
		for _, s := range all {
			agents[s.Warehouse] = s.Base
		}
		if err := pickAddr(); err != nil {
			return result{}, err
		}
		if err := startHub(); err != nil {
			return result{}, err
		}
	default:
		return result{}, fmt.Errorf("mode %q: uplink or pull", mode)
	}
	progress("%s: waiting for %d sites online at the hub…", mode, o.sites)
	if err := waitFor(3*time.Minute, func() bool { return online(hubURL) == o.sites }); err != nil {
		return result{}, fmt.Errorf("sites online: %d of %d: %w", online(hubURL), o.sites, err)
	}
	baseRSS, _ := procstat.RSS(hub.Process.Pid)

	// The stream: every stock event's time, per warehouse.
	seen := newSightings()
	streamCtx, stopStream := context.WithCancel(ctx)
	defer stopStream()
	go follow(streamCtx, hubURL, seen)

	var mu sync.Mutex
	type ack struct {
		wh    string
		level int64
		at    time.Time
	}
	var acks []ack
	runCtx, stop := context.WithTimeout(ctx, o.warmup+o.duration)
	defer stop()
	windowStart := time.Now().Add(o.warmup)
	var before, after snapshot
	go func() {
		time.Sleep(o.warmup)
		before = snap(ctx, hub.Process.Pid, hubURL, dsn)
		time.Sleep(o.duration)
		after = snap(ctx, hub.Process.Pid, hubURL, dsn)
	}()
	progress("%s: sending %g receives/s from each of %d sites for %v…", mode, o.rate, o.sites, o.warmup+o.duration)
	acked, failed := sites.Run(runCtx, all, o.rate, func(s *sites.Site, level int64, at time.Time) {
		if at.After(windowStart) {
			mu.Lock()
			acks = append(acks, ack{s.Warehouse, level, at})
			mu.Unlock()
		}
	})
	time.Sleep(100 * time.Millisecond) // the snapshot goroutine's last read
	progress("%s: %d acknowledged, %d failed; waiting for the hub to pull everything…", mode, acked, failed)
	dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	behind := sites.Drain(dctx, all)
	cancel()
	time.Sleep(500 * time.Millisecond) // the last stream events
	stopStream()
	if behind > 0 {
		progress("%s: %d sites not pulled in full within 2 minutes", mode, behind)
	}
	peak, _ := procstat.PeakRSS(hub.Process.Pid)

	var lat []time.Duration
	for _, a := range acks {
		if t, ok := seen.first(a.wh, a.level); ok {
			lat = append(lat, max(t.Sub(a.at), 0))
		}
	}
	if len(lat) == 0 {
		return result{}, fmt.Errorf("no acknowledged receive was seen on the hub's stream")
	}
	slices.Sort(lat)
	window := after.at.Sub(before.at).Seconds()
	merged := float64(after.pulled - before.pulled)
	r := result{
		acked:  float64(len(acks)) / o.duration.Seconds(),
		merged: merged / window,
		p50:    lat[len(lat)/2], p99: lat[len(lat)*99/100], max: lat[len(lat)-1],
		cpu:    (after.cpu - before.cpu).Seconds() / window,
		rssMiB: float64(peak) / (1 << 20),
	}
	r.kibPerSite = float64(peak-baseRSS) / 1024 / float64(o.sites)
	if baseRSS == 0 || peak < baseRSS {
		r.kibPerSite = float64(peak) / 1024 / float64(o.sites)
	}
	if merged > 0 {
		r.xactsPerEntry = float64(after.xacts-before.xacts) / merged
	}
	progress("%s: %d latencies of %d acks in the window", mode, len(lat), len(acks))
	return r, nil
}

// sightings are the times the hub's stream showed each warehouse's level.
type sightings struct {
	mu  sync.Mutex
	per map[string][]sighting
}

type sighting struct {
	level int64
	at    time.Time
}

func newSightings() *sightings { return &sightings{per: map[string][]sighting{}} }

func (s *sightings) add(wh string, level int64, at time.Time) {
	s.mu.Lock()
	s.per[wh] = append(s.per[wh], sighting{level, at})
	s.mu.Unlock()
}

// first is when the stream first showed wh at level or above.
func (s *sightings) first(wh string, level int64) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.per[wh] { // in arrival order; levels only grow
		if x.level >= level {
			return x.at, true
		}
	}
	return time.Time{}, false
}

// follow reads the hub's stream of stock events into seen until ctx ends.
func follow(ctx context.Context, hub string, seen *sightings) {
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hub+"/v1/stream?prefix=S-", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = line[7:]
			case strings.HasPrefix(line, "data: ") && event == "stock":
				var c struct {
					Warehouse string `json:"warehouse"`
					OnHand    int64  `json:"on_hand"`
				}
				if json.Unmarshal([]byte(line[6:]), &c) == nil {
					seen.add(c.Warehouse, c.OnHand, time.Now())
				}
			}
		}
		resp.Body.Close()
	}
}

// snapshot is the hub's counters at one moment.
type snapshot struct {
	at     time.Time
	cpu    time.Duration
	pulled int64
	xacts  int64
}

func snap(ctx context.Context, pid int, hub, dsn string) snapshot {
	s := snapshot{at: time.Now()}
	s.cpu, _ = procstat.CPUTime(pid)
	s.pulled = pulled(hub)
	if conn, err := pgx.Connect(ctx, dsn); err == nil {
		_ = conn.QueryRow(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&s.xacts)
		_ = conn.Close(ctx)
	}
	return s
}

// pulled sums edgestock_hub_entries_pulled_total over the warehouses.
func pulled(hub string) int64 {
	resp, err := http.Get(hub + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var n int64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "edgestock_hub_entries_pulled_total{") {
			f, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			n += int64(f)
		}
	}
	return n
}

func online(hub string) int {
	var w struct {
		Warehouses []struct {
			Online bool `json:"online"`
		} `json:"warehouses"`
	}
	if get(hub+"/v1/warehouses", &w) != nil {
		return -1
	}
	n := 0
	for _, s := range w.Warehouses {
		if s.Online {
			n++
		}
	}
	return n
}

func get(u string, out any) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", u, resp.Status)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func waitFor(limit time.Duration, ok func() bool) error {
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", limit)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}

// freshSchema makes a schema of its own in dsn's database and returns a
// DSN using it, and a func that drops it.
func freshSchema(ctx context.Context, dsn string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", nil, err
	}
	schema := fmt.Sprintf("scalebench_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		conn.Close(ctx)
		return "", nil, err
	}
	u, err := url.Parse(dsn)
	if err != nil {
		conn.Close(ctx)
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), func() {
		_, _ = conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		_ = conn.Close(context.Background())
	}, nil
}
