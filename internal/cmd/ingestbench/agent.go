package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/edgestock/edgestock/internal/mosquitto"
	"github.com/edgestock/edgestock/internal/procstat"
)

// warehouse is the warehouse every agent run serves.
const warehouse = "wh1"

// agentStopTimeout bounds a graceful stop; the agent's own limit is 15 s.
const agentStopTimeout = 20 * time.Second

// httpClient queries the agent; the timeout keeps a hung agent from hanging
// the benchmark.
var httpClient = &http.Client{Timeout: 5 * time.Second}

// agentOptions select the agent's mode.
type agentOptions struct {
	mqttURL string // external broker; empty runs the embedded broker
	config  string // YAML config file, optional
}

// agent is an edgestock agent child process with its own data directory.
type agent struct {
	name     string
	base     string // HTTP API, http://host:port
	mqttAddr string // embedded broker address; empty in external mode
	logPath  string
	*child
}

// startAgent runs `edgestock agent` with a fresh data directory under
// dir/name and waits until /readyz answers 200.
func startAgent(ctx context.Context, bin, dir, name string, o agentOptions, timeout time.Duration) (*agent, error) {
	runDir := filepath.Join(dir, name)
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, err
	}
	httpAddr, err := mosquitto.FreeAddr()
	if err != nil {
		return nil, err
	}
	a := &agent{name: name, base: "http://" + httpAddr, logPath: filepath.Join(runDir, "agent.log")}
	args := []string{"agent", "--warehouse", warehouse, "--data-dir", filepath.Join(runDir, "data"), "--http", httpAddr}
	if o.mqttURL != "" {
		args = append(args, "--mqtt-url", o.mqttURL)
	} else {
		if a.mqttAddr, err = mosquitto.FreeAddr(); err != nil {
			return nil, err
		}
		args = append(args, "--mqtt-listen", a.mqttAddr, "--mqtt-anonymous", "allow")
	}
	if o.config != "" {
		args = append(args, "--config", o.config)
	}
	logFile, err := os.Create(a.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child keeps its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if a.child, err = startChild(cmd); err != nil {
		return nil, fmt.Errorf("start agent %s: %w", name, err)
	}
	if err := a.waitReady(ctx, timeout); err != nil {
		a.kill()
		return nil, err
	}
	return a, nil
}

// waitReady polls /readyz until it answers 200.
func (a *agent) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if resp, err := httpClient.Get(a.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := a.sleep(ctx, 20*time.Millisecond); err != nil {
			return fmt.Errorf("agent %s not ready: %w", a.name, err)
		}
	}
}

// sleep waits d, failing early when ctx ends or the agent exits.
func (a *agent) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w%s", context.Cause(ctx), a.logTail())
	case <-a.exited:
		return fmt.Errorf("agent exited (%v)%s", a.cmd.ProcessState, a.logTail())
	}
}

// onHand is the SKU's on_hand, 0 while the agent has not seen it (404).
func (a *agent) onHand(ctx context.Context, sku string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/v1/stock/"+sku, nil)
	if err != nil {
		return 0, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotFound:
		return 0, nil
	case http.StatusOK:
		var v struct {
			OnHand int64 `json:"on_hand"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			return 0, fmt.Errorf("GET /v1/stock/%s: %w", sku, err)
		}
		return v.OnHand, nil
	default:
		return 0, fmt.Errorf("GET /v1/stock/%s: %s", sku, resp.Status)
	}
}

// waitOnHand polls the SKU every interval until on_hand reaches want. ctx
// bounds the wait; its cause says why it ended.
func (a *agent) waitOnHand(ctx context.Context, sku string, want int64, interval time.Duration) error {
	for {
		n, err := a.onHand(ctx, sku)
		if err != nil && ctx.Err() == nil {
			return err
		}
		if n >= want {
			return nil
		}
		if err := a.sleep(ctx, interval); err != nil {
			return fmt.Errorf("%s on_hand %d of %d: %w", sku, n, want, err)
		}
	}
}

// commitStats reads the agent's group-commit totals from /metrics: how
// many transactions, carrying how many items (events, rejections, holds).
func (a *agent) commitStats(ctx context.Context) (commits, items float64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, _ := strings.Cut(sc.Text(), " ")
		switch name {
		case "edgestock_commit_batch_items_count":
			commits, err = strconv.ParseFloat(value, 64)
		case "edgestock_commit_batch_items_sum":
			items, err = strconv.ParseFloat(value, 64)
		}
		if err != nil {
			return 0, 0, fmt.Errorf("GET /metrics: %q: %w", sc.Text(), err)
		}
	}
	if commits == 0 {
		return 0, 0, errors.New("GET /metrics: no edgestock_commit_batch_items")
	}
	return commits, items, sc.Err()
}

// saw reports whether the agent has applied at least one event for sku.
func (a *agent) saw(sku string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		n, err := a.onHand(ctx, sku)
		return n >= 1, err
	}
}

// stop reads the agent's peak resident set, then asks it to shut down
// (SIGTERM) and waits, killing it if it takes longer than agentStopTimeout.
func (a *agent) stop() (peakRSS int64, err error) {
	peakRSS, err = procstat.PeakRSS(a.cmd.Process.Pid)
	if err != nil {
		a.kill()
		return 0, err
	}
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		a.kill()
		return 0, fmt.Errorf("stop agent %s: %w", a.name, err)
	}
	select {
	case <-a.exited:
	case <-time.After(agentStopTimeout):
		a.kill()
		return 0, fmt.Errorf("agent %s did not exit within %s of SIGTERM", a.name, agentStopTimeout)
	}
	if !a.cmd.ProcessState.Success() {
		return 0, fmt.Errorf("agent %s exited with %v%s", a.name, a.cmd.ProcessState, a.logTail())
	}
	return peakRSS, nil
}

// logTail is the end of the agent's log, for error messages.
func (a *agent) logTail() string {
	b, err := os.ReadFile(a.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return "\nagent log (last lines):\n  " + strings.Join(lines, "\n  ")
}

// profile saves the agent's CPU profile of the next d to dir/name-cpu.pprof
// and then its allocation profile (allocs since start) to
// dir/name-allocs.pprof, for go tool pprof with the agent binary.
func (a *agent) profile(ctx context.Context, dir, name string, d time.Duration) error {
	for _, p := range []struct{ file, path string }{
		{name + "-cpu.pprof", fmt.Sprintf("/debug/pprof/profile?seconds=%d", max(1, int(d.Seconds())))},
		{name + "-allocs.pprof", "/debug/pprof/allocs"},
	} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+p.path, nil)
		if err != nil {
			return err
		}
		resp, err := (&http.Client{Timeout: d + 10*time.Second}).Do(req)
		if err != nil {
			return fmt.Errorf("profile %s: %w", name, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("profile %s: %s %v", name, resp.Status, err)
		}
		if err := os.WriteFile(filepath.Join(dir, p.file), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
