//go:build !linux

package mosquitto

import "syscall"

// childAttrs: only Linux can tie a child's life to its parent; elsewhere the
// deferred cleanup is all there is.
func childAttrs() *syscall.SysProcAttr { return nil }
