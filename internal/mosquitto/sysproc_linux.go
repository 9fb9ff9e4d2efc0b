package mosquitto

import "syscall"

// childAttrs makes the kernel kill the broker if its starter dies
// without running its deferred cleanup (SIGKILL, a crash), so no broker or
// agent outlives it. (Strictly the signal follows the OS thread that
// started the child; Go ends a thread only when a goroutine exits locked to
// it, which this program never does.)
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
