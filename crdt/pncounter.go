package crdt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// Entry is one replica's contribution to a PNCounter: the total it ever added
// (P) and the total it ever removed (N). Both only grow.
type Entry struct {
	P uint64 `json:"p"`
	N uint64 `json:"n"`
}

// Value is the entry's net contribution, P − N.
func (e Entry) Value() int64 { return int64(e.P) - int64(e.N) }

// Dominates reports whether e is at least o in both components.
func (e Entry) Dominates(o Entry) bool { return e.P >= o.P && e.N >= o.N }

// Join returns the per-component maximum of e and o.
func (e Entry) Join(o Entry) Entry {
	return Entry{P: max(e.P, o.P), N: max(e.N, o.N)}
}

// Add returns e with delta applied as an own operation of its replica: a
// positive delta grows P, a negative one grows N, zero changes nothing.
func (e Entry) Add(delta int64) Entry {
	switch {
	case delta > 0:
		e.P += uint64(delta)
	case delta < 0:
		e.N += uint64(-delta)
	}
	return e
}

// PNCounter is a positive-negative counter: per replica a pair (P, N).
// The zero value is an empty counter ready to use.
type PNCounter struct {
	entries map[string]Entry
}

// Apply records an own operation of replica: delta is added to its P (when
// positive) or N (when negative). It returns the replica's new entry.
func (c *PNCounter) Apply(replica string, delta int64) Entry {
	if c.entries == nil {
		c.entries = make(map[string]Entry)
	}
	e := c.entries[replica].Add(delta)
	c.entries[replica] = e
	return e
}

// MergeEntry joins one replica's entry into c. It reports whether c changed.
func (c *PNCounter) MergeEntry(replica string, e Entry) bool {
	cur, ok := c.entries[replica]
	if ok && cur.Dominates(e) {
		return false
	}
	if c.entries == nil {
		c.entries = make(map[string]Entry)
	}
	c.entries[replica] = cur.Join(e)
	return true
}

// Merge joins every entry of o into c. It reports whether c changed.
func (c *PNCounter) Merge(o PNCounter) bool {
	changed := false
	for r, e := range o.entries {
		if c.MergeEntry(r, e) {
			changed = true
		}
	}
	return changed
}

// Value is Σp − Σn over all replicas.
func (c PNCounter) Value() int64 {
	var v int64
	for _, e := range c.entries {
		v += e.Value()
	}
	return v
}

// Entry returns replica's entry (zero when it never wrote).
func (c PNCounter) Entry(replica string) Entry { return c.entries[replica] }

// Replicas returns the replica IDs with an entry, sorted.
func (c PNCounter) Replicas() []string {
	ids := make([]string, 0, len(c.entries))
	for r := range c.entries {
		ids = append(ids, r)
	}
	sort.Strings(ids)
	return ids
}

// Clone returns an independent copy of c.
func (c PNCounter) Clone() PNCounter {
	out := PNCounter{entries: make(map[string]Entry, len(c.entries))}
	for r, e := range c.entries {
		out.entries[r] = e
	}
	return out
}

// Equal reports whether c and o hold the same entries. Zero entries count as
// absent, so a replica that never wrote equals one that wrote nothing.
func (c PNCounter) Equal(o PNCounter) bool {
	for r, e := range c.entries {
		if o.entries[r] != e {
			return false
		}
	}
	for r, e := range o.entries {
		if c.entries[r] != e {
			return false
		}
	}
	return true
}

// ReplicaEntry names an entry with its replica, as sent over the wire.
type ReplicaEntry struct {
	Replica string
	Entry
}

// DeltaSince returns the entries of c that since does not already dominate:
// exactly what a peer holding since needs to catch up with c. Merging the
// result into since yields a state equal to since merged with c. Sorted by
// replica ID.
func (c PNCounter) DeltaSince(since PNCounter) []ReplicaEntry {
	var out []ReplicaEntry
	for _, r := range c.Replicas() {
		e := c.entries[r]
		if since.entries[r].Dominates(e) {
			continue
		}
		out = append(out, ReplicaEntry{Replica: r, Entry: e})
	}
	return out
}

// ErrBadEncoding is returned by UnmarshalBinary for malformed input.
var ErrBadEncoding = errors.New("crdt: bad pn-counter encoding")

// maxReplicaID bounds replica IDs in the binary encoding; IDs are 1–64 chars
// by the data model, the slack lets composite IDs through.
const maxReplicaID = 255

// MarshalBinary encodes c as: uvarint count, then per replica (sorted)
// uvarint len, ID bytes, uvarint P, uvarint N. The encoding is canonical:
// equal counters encode to equal bytes.
func (c PNCounter) MarshalBinary() ([]byte, error) {
	buf := binary.AppendUvarint(nil, uint64(len(c.entries)))
	for _, r := range c.Replicas() {
		if len(r) == 0 || len(r) > maxReplicaID {
			return nil, fmt.Errorf("crdt: replica id %q: length must be 1..%d", r, maxReplicaID)
		}
		e := c.entries[r]
		buf = binary.AppendUvarint(buf, uint64(len(r)))
		buf = append(buf, r...)
		buf = binary.AppendUvarint(buf, e.P)
		buf = binary.AppendUvarint(buf, e.N)
	}
	return buf, nil
}

// UnmarshalBinary decodes the form MarshalBinary writes, replacing c.
func (c *PNCounter) UnmarshalBinary(b []byte) error {
	next := func() (uint64, error) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, ErrBadEncoding
		}
		b = b[n:]
		return v, nil
	}
	count, err := next()
	if err != nil {
		return err
	}
	if count > uint64(len(b)) { // every entry takes at least one byte
		return ErrBadEncoding
	}
	entries := make(map[string]Entry, count)
	for range count {
		l, err := next()
		if err != nil || l == 0 || l > maxReplicaID || l > uint64(len(b)) {
			return ErrBadEncoding
		}
		r := string(b[:l])
		b = b[l:]
		var e Entry
		if e.P, err = next(); err != nil {
			return err
		}
		if e.N, err = next(); err != nil {
			return err
		}
		if _, dup := entries[r]; dup {
			return ErrBadEncoding
		}
		entries[r] = e
	}
	if len(b) != 0 {
		return ErrBadEncoding
	}
	c.entries = entries
	return nil
}
