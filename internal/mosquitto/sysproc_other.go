//go:build !linux

package mosquitto

import "syscall"

// ChildAttrs: only Linux can tie a child's life to its parent; elsewhere the
// deferred cleanup is all there is.
func ChildAttrs() *syscall.SysProcAttr { return nil }
