// Command ingestbench measures how fast an edgestock agent ingests device
// events over MQTT, side by side with what mosquitto alone delivers to a
// plain subscriber, in one run:
//
//  1. throughput through one mosquitto: a counting paho subscriber ("bare")
//     against the agent in external broker mode, alternating reps;
//  2. publish → result latency at a steady rate through mosquitto;
//  3. throughput against the agent's embedded broker, from several device
//     connections and from one gateway connection;
//  4. the agent's peak RSS over all its runs.
//
// It starts its own mosquitto and agent processes on free loopback ports
// and stops them before it exits. Progress goes to stderr, the report to
// stdout (and to -out).
//
// Usage:
//
//	go build -o bin/edgestock ./cmd/edgestock
//	go run ./internal/cmd/ingestbench -bin bin/edgestock [-events 100000] [-reps 5] [-out FILE]
//	    [-sections throughput,latency,embedded]
package main

import (
	"bufio"
	"context"
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
	bin      string
	events   int
	reps     int
	out      string
	timeout  time.Duration
	rate     int
	duration time.Duration
	holdTime time.Duration // length of each hold run
	profiles string
	scratch  string
	sections map[string]bool // which of throughput, latency, embedded run
}

// allSections are the benchmark's sections, in the order they run.
var allSections = []string{"throughput", "latency", "embedded", "holds"}

func main() {
	if front, ok := os.LookupEnv(redisFrontEnv); ok { // a child: Redis's HTTP front
		listen, redis, _ := strings.Cut(front, ",")
		log.Fatal(runRedisFront(listen, redis))
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
	flag.Parse()
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
	report, err := run(ctx, o)
	if err != nil {
		stop()
		log.Fatal(err) // after run's deferred cleanup
	}
	fmt.Print(report)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// run does every section and returns the report. Whatever happens, the
// processes it started are gone when it returns.
func run(ctx context.Context, o options) (string, error) {
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("agent binary: %w (build it: go build -o bin/edgestock ./cmd/edgestock)", err)
	}
	dir, err := os.MkdirTemp(o.scratch, "ingestbench-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)

	res := results{facts: machineFacts(bin, dir), events: o.events, reps: o.reps, sections: o.sections}
	b := &bench{bin: bin, dir: dir, events: o.events, timeout: o.timeout, profiles: o.profiles}
	if b.profiles != "" {
		if err := os.MkdirAll(b.profiles, 0o755); err != nil {
			return "", err
		}
	}

	if o.sections["throughput"] || o.sections["latency"] {
		mq, err := mosquitto.Start(dir)
		if err != nil {
			return "", err
		}
		defer mq.Stop()
		log.Printf("mosquitto on %s, scratch dir %s", mq.Addr, dir)
		if o.sections["throughput"] {
			if res.throughput, err = b.throughput(ctx, mq, o.reps); err != nil {
				return "", err
			}
		}
		if o.sections["latency"] {
			if res.latency, err = b.latency(ctx, mq, o.rate, o.duration); err != nil {
				return "", fmt.Errorf("latency: %w", err)
			}
		}
		mq.Stop() // the embedded runs should not share the CPUs with an idle broker
	}

	if o.sections["embedded"] {
		if res.embedded, err = b.embedded(ctx, o.reps); err != nil {
			return "", err
		}
	}
	if o.sections["holds"] {
		if res.holds, err = b.holds(ctx, o.reps, o.holdTime); err != nil {
			return "", fmt.Errorf("holds: %w", err)
		}
	}
	res.rss = b.rss
	return res.report(), nil
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
