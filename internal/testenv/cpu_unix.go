//go:build unix

package testenv

import (
	"syscall"
	"time"
)

// ProcessCPU is the user plus system CPU time this process has used, for
// benchmarks that report CPU per operation: on a shared machine it is far
// steadier than wall time. 0 where unsupported.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
