package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// LockFileName is the lock file in the data dir: while an agent runs it
// holds an exclusive lock on it, and the file names the agent's PID.
const LockFileName = "edgestock.lock"

// ErrDirLocked is returned by LockDir when another process holds the data
// dir's lock.
var ErrDirLocked = errors.New("data dir in use")

// DirLock is an exclusive lock on a data dir, held until Release (or the
// process's end: the operating system drops it with the file handle, so a
// killed agent never leaves a stale lock behind).
//
// Only one agent may write a data dir: two would share one replica ID and
// hand out the same versions, and max-merge would hide one's writes. The
// token CLI opens the database without the lock and with Options.Beside:
// SQLite serialises its writes with the agent's, and it decides nothing
// about the replica and runs no checkpoints, so all it writes is token
// rows, and it may run beside the agent, as SPEC §8 requires.
type DirLock struct {
	f    *os.File
	path string
}

// LockDir creates dataDir if needed and takes its lock, recording this
// process's PID in the lock file. It fails at once, naming the holder's
// PID, when another process holds it.
func LockDir(dataDir string) (*DirLock, error) {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	path := filepath.Join(dataDir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	locked, err := lockFile(f)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock data dir %s: %w", dataDir, err)
	}
	if !locked {
		holder := readHolder(f)
		_ = f.Close()
		return nil, fmt.Errorf("%w: %s is locked by another edgestock process (pid %s, lock file %s): "+
			"stop that process first, or give this one its own --data-dir", ErrDirLocked, dataDir, holder, path)
	}
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt(pid, 0)
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock data dir %s: write pid: %w", dataDir, err)
	}
	return &DirLock{f: f, path: path}, nil
}

// readHolder returns the PID the holder wrote ("unknown" if none yet).
func readHolder(f *os.File) string {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	if pid := string(bytes.TrimSpace(b[:n])); pid != "" {
		return pid
	}
	return "unknown"
}

// Release drops the lock. The file stays: removing it would let a third
// process lock a new file while a second still waits on the old one.
func (l *DirLock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
