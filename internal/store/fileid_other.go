//go:build !windows

package store

import (
	"fmt"
	"os"
	"syscall"
)

// fileID names the file at path on its file system (device and inode): a
// copy of the file, restored from a backup, has another one.
func fileID(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", nil // no identity on this platform: not checked
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino), nil
}
