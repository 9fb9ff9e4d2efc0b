package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log"
	"os/exec"
	"strconv"
	"strings"
)

// reconcile runs BenchmarkHub_Reconnect (sync/hub) count times and
// returns each run's convergence in seconds: an agent ingested 1M events
// on 50k SKUs while the hub was away, then the hub comes up. It runs the
// benchmark as a child `go test` from the module root (the working
// directory: make runs it there).
func reconcile(ctx context.Context, count int) ([]float64, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^BenchmarkHub_Reconnect$", "-benchtime", "1x",
		"-count", strconv.Itoa(count), "./sync/hub/")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go test -bench Hub_Reconnect: %w\n%s", err, out.String())
	}
	var runs []float64
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || !strings.HasPrefix(f[0], "BenchmarkHub_Reconnect") {
			continue
		}
		for i := 1; i+1 < len(f); i++ {
			if f[i+1] == "converge-s" {
				v, err := strconv.ParseFloat(f[i], 64)
				if err != nil {
					return nil, fmt.Errorf("BenchmarkHub_Reconnect: %q: %w", sc.Text(), err)
				}
				runs = append(runs, v)
				log.Printf("%-20s converged in %.2fs", "reconcile", v)
			}
		}
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("BenchmarkHub_Reconnect reported no converge-s:\n%s", out.String())
	}
	return runs, nil
}
