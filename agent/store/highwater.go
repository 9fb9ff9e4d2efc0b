package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The high-water file sits next to the database and records, about once a
// second, the replica ID and the highest counter version committed under
// it. The version only ever grows while a database lives; so a database
// whose versions are below the high-water mark of its own replica ID is an
// older copy of itself (restored from a backup), and it must not write on
// under that ID: a peer may hold the newer, higher entries, and max-merge
// would hide whatever it writes next. It is found at open, before any
// write. (If the file is restored with the database, the hub catches it at
// the next merge instead: see checkRestored.)
const highWaterSuffix = ".hwm"

func (db *DB) highWaterPath() string { return db.path + highWaterSuffix }

// readHighWater returns the replica and version recorded, or "" and 0.
func (db *DB) readHighWater() (string, int64) {
	b, err := os.ReadFile(db.highWaterPath())
	if err != nil {
		return "", 0
	}
	replica, v, ok := strings.Cut(strings.TrimSpace(string(b)), " ")
	if !ok {
		return "", 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return "", 0
	}
	return replica, n
}

// writeHighWater records replica and version durably (write, sync, rename).
func (db *DB) writeHighWater(replica string, version int64) error {
	tmp, err := os.CreateTemp(filepath.Dir(db.path), ".hwm-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := fmt.Fprintf(tmp, "%s %d\n", replica, version); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), db.highWaterPath())
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
