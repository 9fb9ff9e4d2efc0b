package store

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// makeUnwritable makes path unwritable for this process until the test
// ends: chmod for a normal user, the immutable attribute for root (whom
// permissions do not stop).
func makeUnwritable(tb testing.TB, path string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		require.NoError(tb, os.Chmod(path, 0o444))
		tb.Cleanup(func() { _ = os.Chmod(path, 0o644) })
		return
	}
	if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		tb.Skipf("cannot make %s unwritable as root: chattr: %v %s", path, err, out)
	}
	tb.Cleanup(func() { _ = exec.Command("chattr", "-i", path).Run() })
}

// A database the process cannot write is refused at open, naming the file,
// instead of running without ever acknowledging.
func TestOpen_Unwritable(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)
	require.NoError(t, db.Close())
	path := filepath.Join(dir, FileName)
	makeUnwritable(t, path)
	db, err := Open(t.Context(), dir, Options{Warehouse: "wh1"})
	if err == nil {
		_ = db.Close()
	}
	require.ErrorIs(t, err, ErrUnwritable)
	require.ErrorContains(t, err, path)
}

// A data dir may be named anything a file system allows: '#', '?' and '%'
// are escaped in the SQLite URI, or "wh#2" opened a file of another name
// (and a database another run had left there).
func TestDB_OpensAnyDirName(t *testing.T) {
	for _, name := range []string{"wh#2", "wh?mode=memory", "wh%41", "wh 1"} {
		dir := filepath.Join(t.TempDir(), name)
		db, err := Open(t.Context(), dir, Options{Warehouse: "wh1"})
		require.NoError(t, err, name)
		_, err = db.Apply(t.Context(), &Batch{Events: []Event{ev("d1", "e1", "receive", "SKU-1", 3)}})
		require.NoError(t, err)
		require.NoError(t, db.Close())
		require.FileExists(t, filepath.Join(dir, FileName), name)
		db = openTest(t, dir)
		require.Equal(t, int64(3), onHand(t, db, "SKU-1"), name)
	}
}
