//go:build !linux

package main

import (
	"errors"
	"syscall"
	"time"
)

// childAttrs: only Linux can tie a child's life to its parent; elsewhere the
// deferred cleanup is all there is.
func childAttrs() *syscall.SysProcAttr { return nil }

// cpuTime is only implemented on Linux; the report shows it as unknown.
func cpuTime(int) (time.Duration, error) { return 0, errors.New("CPU time: /proc is Linux only") }
