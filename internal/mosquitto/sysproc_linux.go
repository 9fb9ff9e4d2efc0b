package mosquitto

import "syscall"

// ChildAttrs makes the kernel kill a child process (a broker, or the
// benchmark's agents) if its starter dies without running its deferred
// cleanup (SIGKILL, a crash), so none outlives it. (Strictly the signal follows the OS thread that
// started the child; Go ends a thread only when a goroutine exits locked to
// it, which this program never does.)
func ChildAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
