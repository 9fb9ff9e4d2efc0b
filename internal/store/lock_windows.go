//go:build windows

package store

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// lockFile takes an exclusive LockFileEx lock on f without waiting; false
// when another handle holds it. Windows locks are mandatory: the locked
// range lies far past the PID at the start of the file, so another process
// can still read who holds the lock.
func lockFile(f *os.File) (bool, error) {
	ol := &windows.Overlapped{Offset: 0, OffsetHigh: 0x7fff0000}
	err := windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, windows.ERROR_LOCK_VIOLATION), errors.Is(err, windows.ERROR_IO_PENDING):
		return false, nil
	}
	return false, err
}
