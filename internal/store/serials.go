package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"
)

// LoggedID is an event log row as the ingest's id checks need it: which
// device logged which id, of what type, with which body.
type LoggedID struct {
	Seq      int64
	Device   string
	ID       string
	Type     string
	BodyHash []byte
}

// idPrefixEnd is the first string after every string that starts with
// prefix, for a range scan: prefix with its last byte incremented (prefixes
// used here end in '/', so no byte overflows).
func idPrefixEnd(prefix string) string {
	b := []byte(prefix)
	b[len(b)-1]++
	return string(b)
}

// DeviceEventsWithPrefix returns device's logged events whose id starts
// with prefix (non-empty), in log order: the lines "{ticket}/{i}" of a POS
// ticket. A range scan of the (device, event_id) index.
func (db *DB) DeviceEventsWithPrefix(ctx context.Context, device, prefix string) ([]LoggedID, error) {
	return db.loggedIDs(ctx, `SELECT seq, device, event_id, type, body_hash FROM events
		WHERE device = ? AND event_id >= ? AND event_id < ? ORDER BY seq`, device, prefix, idPrefixEnd(prefix))
}

// EventsWithPrefix returns every device's logged events whose id starts
// with prefix (non-empty), in log order: the movements of one serialised
// unit. The (device, event_id) index is walked one device at a time (a
// skip scan: one seek per device that ever wrote), so the cost grows with
// the number of devices, not of events.
func (db *DB) EventsWithPrefix(ctx context.Context, prefix string) ([]LoggedID, error) {
	return db.loggedIDs(ctx, `WITH RECURSIVE devices(device) AS (
			SELECT MIN(device) FROM events
			UNION ALL
			SELECT (SELECT MIN(device) FROM events WHERE device > devices.device) FROM devices WHERE devices.device IS NOT NULL
		)
		SELECT e.seq, e.device, e.event_id, e.type, e.body_hash FROM devices JOIN events e
			ON e.device = devices.device AND e.event_id >= ? AND e.event_id < ?
		ORDER BY e.seq`, prefix, idPrefixEnd(prefix))
}

func (db *DB) loggedIDs(ctx context.Context, query string, args ...any) ([]LoggedID, error) {
	rows, err := db.reader.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query event ids: %w", err)
	}
	defer rows.Close()
	var out []LoggedID
	for rows.Next() {
		var l LoggedID
		if err := rows.Scan(&l.Seq, &l.Device, &l.ID, &l.Type, &l.BodyHash); err != nil {
			return nil, fmt.Errorf("query event ids: %w", err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query event ids: %w", err)
	}
	return out, nil
}

// QuarantinedKey identifies a quarantined payload for a re-read file: its
// event id, reason, message and a hash of the payload.
type QuarantinedKey struct {
	EventID, Reason, Message string
	PayloadSum               [sha256.Size]byte
}

// QuarantinedFrom returns the keys of the payloads quarantined from source
// and device at or after since: what an earlier, interrupted read of a
// file already kept. The quarantine has no index for it, so this reads the
// table once; a file drop calls it once per file.
func (db *DB) QuarantinedFrom(ctx context.Context, source, device string, since time.Time) ([]QuarantinedKey, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT event_id, reason, message, payload FROM quarantine
		WHERE source = ? AND device = ? AND received_at >= ?`, source, device, since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("query quarantine: %w", err)
	}
	defer rows.Close()
	var out []QuarantinedKey
	var payload []byte
	for rows.Next() {
		var k QuarantinedKey
		if err := rows.Scan(&k.EventID, &k.Reason, &k.Message, &payload); err != nil {
			return nil, fmt.Errorf("query quarantine: %w", err)
		}
		k.PayloadSum = sha256.Sum256(payload)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query quarantine: %w", err)
	}
	return out, nil
}
