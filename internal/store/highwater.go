package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The high-water files record, about once a second, the replica ID, the
// highest counter version committed under it and the database file's
// identity on its file system (device and inode). There are two: one
// next to the database, and one beside the data dir ("{parent}/.{name}.hwm"),
// which a copy of the data dir does not carry.
//
// A database must never write on under its replica ID once it is a copy
// of itself, restored from a backup: a peer may hold the newer, higher
// entries the original published after the backup, and max-merge would
// hide whatever the copy writes next (SPEC §2). So at open, before any
// write, the database starts a new incarnation when
//   - its versions are below the high-water mark of its own replica ID in
//     either file (an older copy);
//   - either file names another replica, or the inner one is missing while
//     the database has written (restored without it, or beside another's);
//   - the file is not the one the inner file describes (a copy, restored
//     onto new files).
//
// A false alarm (a data dir moved to a new disk) costs a new replica ID,
// never a unit. A copy the files cannot tell (the data dir restored with
// the file beside it, in place) is caught at the next sync instead: the
// hub's cursor or entries for this replica are then ahead of the database
// (checkRestored, and the agent's deltas handler); what it wrote before
// that sync, under the old ID, may be hidden (docs/OPERATIONS.md).
const highWaterSuffix = ".hwm"

func (db *DB) highWaterPath() string { return db.path + highWaterSuffix }

// outerHighWaterPath is the high-water file beside the data dir.
func (db *DB) outerHighWaterPath() string {
	dir, err := filepath.Abs(filepath.Dir(db.path))
	if err != nil {
		dir = filepath.Dir(db.path)
	}
	return filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+highWaterSuffix)
}

// highWater is what a high-water file records.
type highWater struct {
	replica string
	version int64
	file    string // fileID of the database; "" in files of older versions
}

// readHighWater returns what the file at path records; ok is false without one.
func readHighWater(path string) (hw highWater, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return highWater{}, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return highWater{}, false
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return highWater{}, false
	}
	hw = highWater{replica: f[0], version: n}
	if len(f) > 2 {
		hw.file = f[2]
	}
	return hw, true
}

// copyOfItself says why a database of replica at version is a restored copy
// of itself, or "" when nothing says so.
func (db *DB) copyOfItself(replica string, version int64) string {
	inner, innerOK := readHighWater(db.highWaterPath())
	outer, outerOK := readHighWater(db.outerHighWaterPath())
	for _, hw := range []struct {
		highWater
		ok    bool
		where string
	}{{inner, innerOK, db.highWaterPath()}, {outer, outerOK, db.outerHighWaterPath()}} {
		switch {
		case !hw.ok:
		case hw.replica != replica:
			return fmt.Sprintf("%s belongs to replica %s", hw.where, hw.replica)
		case version < hw.version:
			return fmt.Sprintf("its versions end at %d, below the %d its replica already published (%s)", version, hw.version, hw.where)
		}
	}
	switch {
	case !innerOK && version > 0:
		return "the database has written but " + db.highWaterPath() + " is missing"
	case !innerOK || inner.file == "": // none yet, or written by an older version
		return ""
	}
	if id, err := fileID(db.path); err == nil && id != "" && id != inner.file {
		return "the database file is a copy (its file identity changed)"
	}
	return ""
}

// writeHighWater records replica and version durably in both files
// (write, sync, rename). The one beside the data dir is best effort: its
// parent may not be writable, and the inner file still guards.
func (db *DB) writeHighWater(replica string, version int64) error {
	id, err := fileID(db.path)
	if err != nil {
		return err
	}
	line := fmt.Sprintf("%s %d %s\n", replica, version, id)
	if err := writeFileAtomic(db.highWaterPath(), line); err != nil {
		return err
	}
	if err := writeFileAtomic(db.outerHighWaterPath(), line); err != nil && !db.outerFailed {
		db.outerFailed = true
		db.logger.Info("high-water file beside the data dir not written: a restored copy of the whole data dir is then caught at the next sync, not at open",
			"err", err)
	}
	return nil
}

func writeFileAtomic(path, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".hwm-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(content); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// saveHighWater writes the committed version if it moved.
func (db *DB) saveHighWater() {
	v := db.committedVersion.Load()
	replica := db.ReplicaID()
	if v == db.savedVersion && replica == db.savedReplica {
		return
	}
	if err := db.writeHighWater(replica, v); err != nil {
		db.logger.Warn("high-water file not written", "err", err)
		return
	}
	db.savedVersion, db.savedReplica = v, replica
}
