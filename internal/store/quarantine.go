package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// QuarantineLimits bound what rejected payloads may take on disk. One
// device rejected at its full rate must not fill the disk (and so stop every
// device's acks). Past a quota a rejection is still recorded, counted and
// reported to its device, but without its payload; the row's message says
// so. Zero fields mean no limit.
type QuarantineLimits struct {
	// MaxPayload is how much of one payload is kept: a longer one keeps its
	// first MaxPayload bytes.
	MaxPayload int
	// DeviceBytes and TotalBytes bound the payload bytes stored for one
	// device and for all of them.
	DeviceBytes, TotalBytes int64
	// MaxAge and MaxRows are the retention: older rows, and the oldest rows
	// past MaxRows, are deleted by PruneQuarantine, which frees their quota.
	MaxAge  time.Duration
	MaxRows int64
}

// quarantineSweep is how often Open's retention loop prunes the quarantine.
const quarantineSweep = time.Minute

// quarantineUsage is the payload bytes stored, per device and in total, as
// the commit loop accounts them (loaded at open).
type quarantineUsage struct {
	byDevice map[string]int64
	total    int64
	// Published for monitoring.
	totalPub  atomic.Int64
	notStored atomic.Int64 // payloads not stored (over a quota) since open
}

// quarantineTx is a transaction's quarantine writes, applied to the usage
// once it commits.
type quarantineTx struct {
	db        *DB
	byDevice  map[string]int64
	notStored int64
}

func (q *quarantineTx) stored(device string) int64 {
	return q.db.qUsage.byDevice[device] + q.byDevice[device]
}

func (q *quarantineTx) total() int64 {
	t := q.db.qUsage.total
	for _, n := range q.byDevice {
		t += n
	}
	return t
}

// add writes one quarantine row, keeping the payload within the limits.
func (q *quarantineTx) add(ctx context.Context, s *boundStmts, r Rejected) error {
	lim := q.db.qLimits
	payload, msg := r.Payload, r.Message
	if lim.MaxPayload > 0 && len(payload) > lim.MaxPayload {
		msg += fmt.Sprintf(" [payload truncated: first %d of %d bytes kept]", lim.MaxPayload, len(payload))
		payload = payload[:lim.MaxPayload]
	}
	size := int64(len(payload))
	switch {
	case size == 0:
	case lim.DeviceBytes > 0 && q.stored(r.Device)+size > lim.DeviceBytes:
		msg += fmt.Sprintf(" [payload of %d bytes not stored: device %s is over its quarantine quota of %d bytes]", size, r.Device, lim.DeviceBytes)
		payload, size = nil, 0
	case lim.TotalBytes > 0 && q.total()+size > lim.TotalBytes:
		msg += fmt.Sprintf(" [payload of %d bytes not stored: the quarantine is over its total quota of %d bytes]", size, lim.TotalBytes)
		payload, size = nil, 0
	}
	if payload == nil && len(r.Payload) > 0 {
		q.notStored++
	}
	if _, err := s.use(s.src.quarantine).ExecContext(ctx, r.Source, r.Device, r.EventID, r.Reason, msg, nonNil(payload), r.ReceivedAt.UnixMilli()); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	if size > 0 {
		if q.byDevice == nil {
			q.byDevice = map[string]int64{}
		}
		q.byDevice[r.Device] += size
	}
	return nil
}

// commit applies the transaction's writes to the usage (commit loop).
func (q *quarantineTx) commit() {
	u := &q.db.qUsage
	for d, n := range q.byDevice {
		u.byDevice[d] += n
		if u.byDevice[d] <= 0 {
			delete(u.byDevice, d)
		}
		u.total += n
	}
	u.totalPub.Store(u.total)
	u.notStored.Add(q.notStored)
}

// loadQuarantineUsage reads the payload bytes stored per device.
func (db *DB) loadQuarantineUsage(ctx context.Context) error {
	db.qUsage.byDevice = map[string]int64{}
	rows, err := db.writer.QueryContext(ctx, `SELECT device, SUM(length(payload)) FROM quarantine GROUP BY device`)
	if err != nil {
		return fmt.Errorf("open store: quarantine usage: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d string
		var n int64
		if err := rows.Scan(&d, &n); err != nil {
			return fmt.Errorf("open store: quarantine usage: %w", err)
		}
		if n > 0 {
			db.qUsage.byDevice[d] = n
			db.qUsage.total += n
		}
	}
	db.qUsage.totalPub.Store(db.qUsage.total)
	return rows.Err()
}

// pruneOp is a retention run through the commit loop (see PruneQuarantine).
type pruneOp struct {
	now     time.Time
	deleted int64
}

// prune deletes the rows past the retention, taking their bytes off the usage.
func (q *quarantineTx) prune(ctx context.Context, s *boundStmts, op *pruneOp) error {
	lim := q.db.qLimits
	// The newest row always stays: seqs are rowids, and an empty table
	// would hand them out from 1 again, behind GET /v1/quarantine cursors.
	var queries []string
	var args [][]any
	if lim.MaxAge > 0 {
		queries = append(queries, `DELETE FROM quarantine WHERE received_at < ? AND seq < (SELECT MAX(seq) FROM quarantine)
			RETURNING device, length(payload)`)
		args = append(args, []any{op.now.Add(-lim.MaxAge).UnixMilli()})
	}
	if lim.MaxRows > 0 {
		queries = append(queries, `DELETE FROM quarantine WHERE seq <= (SELECT MAX(seq) FROM quarantine) - ? RETURNING device, length(payload)`)
		args = append(args, []any{lim.MaxRows})
	}
	for i, query := range queries {
		rows, err := s.tx.QueryContext(ctx, query, args[i]...)
		if err != nil {
			return fmt.Errorf("prune quarantine: %w", err)
		}
		for rows.Next() {
			var d string
			var n int64
			if err := rows.Scan(&d, &n); err != nil {
				rows.Close()
				return fmt.Errorf("prune quarantine: %w", err)
			}
			if q.byDevice == nil {
				q.byDevice = map[string]int64{}
			}
			q.byDevice[d] -= n
			op.deleted++
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("prune quarantine: %w", err)
		}
	}
	return nil
}

// PruneQuarantine deletes quarantine rows past the retention (older than
// MaxAge at now, the oldest past MaxRows) and returns how many. Open runs
// it every quarantineSweep.
func (db *DB) PruneQuarantine(ctx context.Context, now time.Time) (int64, error) {
	op := &pruneOp{now: now}
	if _, err := db.Apply(ctx, &Batch{prune: op}); err != nil {
		return 0, err
	}
	return op.deleted, nil
}

// QuarantineUsage is the payload bytes the quarantine holds and how many
// payloads were not stored (over a quota) since the store opened.
func (db *DB) QuarantineUsage() (bytes, notStored int64) {
	return db.qUsage.totalPub.Load(), db.qUsage.notStored.Load()
}

func (db *DB) retentionLoop() {
	defer db.wg.Done()
	t := time.NewTicker(quarantineSweep)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case now := <-t.C:
			if _, err := db.PruneQuarantine(context.Background(), now); err != nil {
				db.logger.Warn("quarantine retention failed; trying again later", "err", err)
			}
		}
	}
}
