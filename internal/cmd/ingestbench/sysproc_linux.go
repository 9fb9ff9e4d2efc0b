package main

import "syscall"

// childAttrs makes the kernel kill a child process if the benchmark dies
// without running its deferred cleanup (SIGKILL, a crash), so no broker or
// agent outlives it.
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
