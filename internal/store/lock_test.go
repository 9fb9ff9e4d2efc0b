package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A data dir's lock is exclusive, names its holder's PID, is free again
// after Release, and does not keep the token CLI's plain Open out.
func TestLockDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first, err := LockDir(dir)
	require.NoError(t, err)
	pid, err := os.ReadFile(filepath.Join(dir, LockFileName))
	require.NoError(t, err)
	require.Equal(t, fmt.Sprint(os.Getpid()), strings.TrimSpace(string(pid)))

	_, err = LockDir(dir)
	require.ErrorIs(t, err, ErrDirLocked)
	require.ErrorContains(t, err, dir)
	require.ErrorContains(t, err, fmt.Sprintf("pid %d", os.Getpid()))

	db := openTest(t, dir) // as `edgestock token` does while the agent runs
	_, err = db.Apply(t.Context(), &Batch{Events: []Event{ev("d1", "1", "receive", "SKU-1", 1)}})
	require.NoError(t, err)
	require.NoError(t, db.Close())

	require.NoError(t, first.Release())
	again, err := LockDir(dir)
	require.NoError(t, err)
	require.NoError(t, again.Release())
}
