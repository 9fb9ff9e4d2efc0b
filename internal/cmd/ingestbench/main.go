// Command ingestbench is edgestock's benchmark (docs/BENCHMARKS.md): the
// agent side by side with what a user would otherwise run, in one process
// tree, every figure of issue #18 in one report:
//
//  1. throughput through one mosquitto: a counting paho subscriber ("bare")
//     against the agent in external broker mode, alternating reps;
//  2. publish → result latency at a steady rate through mosquitto, per rep;
//  3. against the agent's embedded broker: the agent as it ships, with
//     alerts and live topics off, and the same mochi broker with a no-op
//     hook, rotating;
//  4. cart holds: the agent against Redis with a Lua script and
//     appendfsync always behind a minimal Go HTTP front, and paced;
//  5. the outage reconcile (BenchmarkHub_Reconnect);
//  6. the agent's peak RSS over all its runs.
//
// It starts its own mosquitto, redis-server, agent and reference processes
// on free loopback ports and stops them before it exits. Progress goes to
// stderr, the report to stdout (and to -out); -out-dir also writes
// bench.json, report.html (SVG charts) and the agent's CPU and allocation
// profiles.
//
// Usage:
//
//	go build -o bin/edgestock ./cmd/edgestock
//	go run ./internal/cmd/ingestbench -bin bin/edgestock [-quick] [-events 100000] [-reps 5]
//	    [-out FILE] [-out-dir bench-out] [-sections throughput,latency,embedded,holds,reconcile]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/edgestock/edgestock/internal/mosquitto"
)

// options are the command line.
type options struct {
	bin        string
	events     int
	reps       int
	out        string
	timeout    time.Duration
	rate       int
	duration   time.Duration
	holdTime   time.Duration // length of each hold run
	profiles   string
	outDir     string
	reconciles int
	scratch    string
	sections   map[string]bool // which of throughput, latency, embedded run
}

// allSections are the benchmark's sections, in the order they run.
var allSections = []string{"throughput", "latency", "embedded", "holds", "reconcile"}

func main() {
	if runChild() {
		return
	}
	var o options
	flag.StringVar(&o.bin, "bin", "bin/edgestock", "edgestock binary to benchmark")
	flag.IntVar(&o.events, "events", 100000, "events per throughput run")
	// Five, not three: on a shared machine single runs vary by ±10 %, and an
	// agent run now and then meets an fsync that stalls for 100 ms or more.
	flag.IntVar(&o.reps, "reps", 5, "repetitions of each throughput and embedded run")
	flag.StringVar(&o.out, "out", "", "also write the report to this file")
	flag.DurationVar(&o.timeout, "timeout", 120*time.Second, "bound on every wait")
	flag.IntVar(&o.rate, "rate", 2000, "events/s of the latency run")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of the latency run")
	flag.StringVar(&o.profiles, "profiles", "", "save the agent's CPU and allocation profiles of one run of each section in this directory")
	flag.DurationVar(&o.holdTime, "hold-time", 3*time.Second, "length of each hold run")
	flag.StringVar(&o.scratch, "scratch", os.TempDir(), "where the agents' data directories go (its disk is part of what is measured)")
	sections := flag.String("sections", strings.Join(allSections, ","), "comma-separated sections to run")
	quick := flag.Bool("quick", false, "the short version (make bench-quick): 20,000 events per throughput run, 3 s latency runs, 2 s hold runs, one reconcile; flags given override it")
	flag.StringVar(&o.outDir, "out-dir", "", "write report.txt, bench.json, report.html and the agent's profiles here")
	flag.IntVar(&o.reconciles, "reconciles", 3, "runs of the outage reconcile")
	flag.Parse()
	if *quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range map[string]string{"events": "20000", "duration": "3s", "hold-time": "2s", "reconciles": "1"} {
			if !set[name] {
				_ = flag.Set(name, v)
			}
		}
	}
	if o.outDir != "" && o.profiles == "" {
		o.profiles = filepath.Join(o.outDir, "profiles")
	}
	o.sections = map[string]bool{}
	for _, s := range strings.Split(*sections, ",") {
		if !slices.Contains(allSections, s) {
			log.Fatalf("-sections: unknown section %q (have %s)", s, strings.Join(allSections, ", "))
		}
		o.sections[s] = true
	}
	log.SetFlags(log.Ltime)
	if o.events < 1 || o.reps < 1 || o.rate < 1 || o.duration < time.Second {
		log.Fatal("-events, -reps and -rate must be at least 1, -duration at least 1s")
	}

	// An interrupt cancels the runs, so the deferred cleanup stops every
	// child process.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, o)
	if err != nil {
		stop()
		log.Fatal(err) // after run's deferred cleanup
	}
	report := res.report()
	fmt.Print(report)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	if o.outDir != "" {
		if err := writeOutDir(o.outDir, res, report); err != nil {
			log.Fatal(err)
		}
		log.Printf("wrote %s", filepath.Join(o.outDir, "report.html"))
	}
}

// runChild runs this program as one of the children it starts for the
// side-by-side runs, when the environment names one; false: it is not one.
func runChild() bool {
	if front, ok := os.LookupEnv(redisFrontEnv); ok { // Redis's HTTP front
		listen, redis, _ := strings.Cut(front, ",")
		log.Fatal(runRedisFront(listen, redis))
	}
	if addr, ok := os.LookupEnv(mochiEnv); ok { // the reference broker
		if err := runMochi(addr); err != nil {
			log.Fatal(err)
		}
		return true
	}
	return false
}

// writeOutDir writes the report, its figures as JSON and as a page.
func writeOutDir(dir string, res results, report string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.txt"), []byte(report), 0o644); err != nil {
		return err
	}
	j, err := res.json()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bench.json"), j, 0o644); err != nil {
		return err
	}
	var parsed benchJSON
	if err := json.Unmarshal(j, &parsed); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "report.html"))
	if err != nil {
		return err
	}
	if err := writeHTML(f, parsed); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// run does every section and returns the results. Whatever happens, the
// processes it started are gone when it returns.
func run(ctx context.Context, o options) (results, error) {
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return results{}, err
	}
	if _, err := os.Stat(bin); err != nil {
		return results{}, fmt.Errorf("agent binary: %w (build it: go build -o bin/edgestock ./cmd/edgestock)", err)
	}
	dir, err := os.MkdirTemp(o.scratch, "ingestbench-")
	if err != nil {
		return results{}, err
	}
	defer os.RemoveAll(dir)

	res := results{facts: machineFacts(bin, dir), events: o.events, reps: o.reps, sections: o.sections}
	b := &bench{bin: bin, dir: dir, events: o.events, timeout: o.timeout, profiles: o.profiles}
	if b.profiles != "" {
		if err := os.MkdirAll(b.profiles, 0o755); err != nil {
			return results{}, err
		}
	}

	if o.sections["throughput"] || o.sections["latency"] {
		mq, err := mosquitto.Start(dir)
		if err != nil {
			return results{}, err
		}
		defer mq.Stop()
		log.Printf("mosquitto on %s, scratch dir %s", mq.Addr, dir)
		if o.sections["throughput"] {
			if res.throughput, err = b.throughput(ctx, mq, o.reps); err != nil {
				return results{}, err
			}
		}
		for rep := range o.reps {
			if !o.sections["latency"] {
				break
			}
			l, err := b.latency(ctx, mq, o.rate, o.duration, rep+1)
			if err != nil {
				return results{}, fmt.Errorf("latency: %w", err)
			}
			res.latency = append(res.latency, l)
		}
		mq.Stop() // the embedded runs should not share the CPUs with an idle broker
	}

	if o.sections["embedded"] {
		if res.embedded, err = b.embedded(ctx, o.reps); err != nil {
			return results{}, err
		}
	}
	if o.sections["holds"] {
		if res.holds, err = b.holds(ctx, o.reps, o.holdTime); err != nil {
			return results{}, fmt.Errorf("holds: %w", err)
		}
	}
	if o.sections["reconcile"] {
		if res.reconcile, err = reconcile(ctx, o.reconciles); err != nil {
			return results{}, err
		}
	}
	res.rss = b.rss
	return res, nil
}

// machineFacts collects what the report's header shows; a fact that cannot
// be read is shown as unknown rather than failing the benchmark.
func machineFacts(bin, dir string) facts {
	f := facts{
		date:      time.Now(),
		nproc:     runtime.NumCPU(), // what nproc prints: the CPUs this process may use
		cpu:       cpuModel(),
		goVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		mosquitto: mosquitto.Version(),
		agent:     "unknown",
		scratch:   dir + " (" + fsType(dir) + ")",
	}
	if out, err := exec.Command(bin, "version").Output(); err == nil {
		f.agent = strings.TrimSpace(string(out))
	}
	// The build time shows whether the binary is older than the code one
	// thinks one is measuring.
	if st, err := os.Stat(bin); err == nil {
		f.agent += fmt.Sprintf(" (%s, built %s)", bin, st.ModTime().UTC().Format("2006-01-02 15:04:05 MST"))
	}
	return f
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	fh, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// fsType is the type of the file system holding path, from the longest
// mount point in /proc/self/mounts that contains it: on tmpfs the agent's
// fsyncs cost nothing and its numbers would flatter it.
func fsType(path string) string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "unknown file system"
	}
	best, typ := "", "unknown file system"
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		mnt := f[1]
		inside := path == mnt || strings.HasPrefix(path, strings.TrimSuffix(mnt, "/")+"/")
		if inside && len(mnt) > len(best) {
			best, typ = mnt, f[2]
		}
	}
	return typ
}
