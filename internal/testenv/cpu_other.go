//go:build !unix

package testenv

import "time"

// ProcessCPU is unsupported here: 0 (see cpu_unix.go).
func ProcessCPU() time.Duration { return 0 }
