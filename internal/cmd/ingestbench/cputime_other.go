//go:build !linux

package main

import (
	"errors"
	"time"
)

// cpuTime is only implemented on Linux; the report shows it as unknown.
func cpuTime(int) (time.Duration, error) { return 0, errors.New("CPU time: /proc is Linux only") }
