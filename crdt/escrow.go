package crdt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// Kind is what an escrow total counts.
type Kind byte

// The kinds of escrow totals. Each only grows.
const (
	// Supply is rights a holder's owner created: for the warehouse's own
	// holder, units that physically arrived.
	Supply Kind = 's'
	// Move is rights a holder's owner handed to another holder.
	Move Kind = 'm'
	// Spend is rights a holder's owner used up: a promise it made, or a
	// physical loss it had to take (see Consume).
	Spend Kind = 'x'
	// Pick is a holder's spends that were delivered: for a channel, order
	// lines the warehouse picked. Spent but not picked is committed stock.
	// The warehouse's owner writes it, for any holder.
	Pick Kind = 'p'
)

func (k Kind) valid() bool { return k == Supply || k == Move || k == Spend || k == Pick }

// EscrowKey names one grow-only total: the replica that writes it (one
// writer per total, like a PN-counter entry), its kind, the holder whose
// rights it counts, and for a move the holder that receives them.
type EscrowKey struct {
	Replica string
	Kind    Kind
	Holder  string
	To      string // Move only
}

// EscrowEntry is a key with its total, as the stores and the wire carry it.
type EscrowEntry struct {
	EscrowKey
	Total uint64
}

// Escrow is a bounded counter (Balegas et al. 2015; AntidoteDB's bcounter):
// rights to promise units, split among holders (the warehouse, and one per
// sales channel), so that each holder's owner can promise its own rights
// without asking anyone, even while partitioned, and the holders together
// never promise more than there is.
//
//	rights(h) = Σ supply(h) + Σ moves to h − Σ moves from h − Σ spends(h)
//
// Only a holder's owner writes its supply, its outgoing moves and its
// spends, and only within its rights; a peer's stale view of h can only
// miss moves into h, so it can only under-estimate h's rights. Merge is
// the per-entry maximum: commutative, associative and idempotent.
//
// The zero value is an empty counter ready to use.
type Escrow struct {
	totals map[EscrowKey]uint64
}

// MaxTotal bounds every escrow total (2^53: exact in JSON, and sums of up
// to 1,024 of them stay in int64). A larger total is not a state any owner
// wrote: MergeEntry ignores it and UnmarshalBinary refuses it, or one bad
// peer total could flip a holder's rights through the int64 sums.
const MaxTotal = 1 << 53

// ErrInsufficientRights is returned by Move and Spend past a holder's rights.
var ErrInsufficientRights = errors.New("crdt: insufficient rights")

// Rights is holder's rights: what its owner may still move or spend. It is
// negative only after Consume took more than there was.
func (e Escrow) Rights(holder string) int64 {
	var r int64
	for k, v := range e.totals {
		switch {
		case k.Kind == Supply && k.Holder == holder:
			r += int64(v)
		case k.Kind == Move && k.To == holder:
			r += int64(v)
		case k.Kind == Move && k.Holder == holder:
			r -= int64(v)
		case k.Kind == Spend && k.Holder == holder:
			r -= int64(v)
		}
	}
	return r
}

// Spent is the total holder spent, over every replica.
func (e Escrow) Spent(holder string) uint64 {
	var s uint64
	for k, v := range e.totals {
		if k.Kind == Spend && k.Holder == holder {
			s += v
		}
	}
	return s
}

// Picked is the total of holder's spends that were delivered.
func (e Escrow) Picked(holder string) uint64 {
	var p uint64
	for k, v := range e.totals {
		if k.Kind == Pick && k.Holder == holder {
			p += v
		}
	}
	return p
}

// Committed is what holder spent and was not delivered yet: orders not
// picked. It is never negative in the owners' views (MarkPicked checks);
// a stale view may count a pick it has not seen as still committed.
func (e Escrow) Committed(holder string) int64 {
	return int64(e.Spent(holder)) - int64(e.Picked(holder))
}

// Total returns one total (zero when never written).
func (e Escrow) Total(k EscrowKey) uint64 { return e.totals[k] }

func (e *Escrow) grow(k EscrowKey, n uint64) EscrowEntry {
	if n == 0 { // no entry for nothing: equal states encode alike
		return EscrowEntry{EscrowKey: k, Total: e.totals[k]}
	}
	if e.totals == nil {
		e.totals = make(map[EscrowKey]uint64)
	}
	e.totals[k] += n
	return EscrowEntry{EscrowKey: k, Total: e.totals[k]}
}

// AddSupply grows holder's rights by n, as replica (holder's owner). It
// returns the entry that changed.
func (e *Escrow) AddSupply(replica, holder string, n uint64) EscrowEntry {
	return e.grow(EscrowKey{Replica: replica, Kind: Supply, Holder: holder}, n)
}

// Move hands n of from's rights to to, as replica (from's owner), or
// returns ErrInsufficientRights and changes nothing.
func (e *Escrow) Move(replica, from, to string, n uint64) (EscrowEntry, error) {
	if from == to {
		return EscrowEntry{}, fmt.Errorf("crdt: move from %s to itself", from)
	}
	if err := e.within(from, n); err != nil {
		return EscrowEntry{}, err
	}
	return e.grow(EscrowKey{Replica: replica, Kind: Move, Holder: from, To: to}, n), nil
}

// Allot hands n of from's rights to to, as replica (from's owner), without
// checking them here: for a holder whose rights the counter does not hold,
// as the warehouse's own rights follow its physical stock (see Promised).
// The caller checks them first.
func (e *Escrow) Allot(replica, from, to string, n uint64) (EscrowEntry, error) {
	if from == to {
		return EscrowEntry{}, fmt.Errorf("crdt: move from %s to itself", from)
	}
	return e.grow(EscrowKey{Replica: replica, Kind: Move, Holder: from, To: to}, n), nil
}

// Promised is what every holder but own may still promise or has promised
// and not delivered: Σ over the other holders of rights + committed. For
// a warehouse, own's rights are its physical stock less Promised(own).
func (e Escrow) Promised(own string) int64 {
	var n int64
	for _, h := range e.Holders() {
		if h != own {
			n += e.Rights(h) + e.Committed(h)
		}
	}
	return n
}

// Spend uses up n of holder's rights, as replica (holder's owner), or
// returns ErrInsufficientRights and changes nothing: a promise.
func (e *Escrow) Spend(replica, holder string, n uint64) (EscrowEntry, error) {
	if err := e.within(holder, n); err != nil {
		return EscrowEntry{}, err
	}
	return e.Consume(replica, holder, n), nil
}

// Consume uses up n of holder's rights even past them, as replica: a fact
// (a unit sold at the till, lost, found broken) is never refused. Rights
// below zero are a shortfall the owner must make good.
func (e *Escrow) Consume(replica, holder string, n uint64) EscrowEntry {
	return e.grow(EscrowKey{Replica: replica, Kind: Spend, Holder: holder}, n)
}

// MarkPicked records n of holder's spends as delivered, as replica (the
// warehouse's owner), or returns ErrInsufficientRights past what is
// committed: a pick never delivers more than was promised.
func (e *Escrow) MarkPicked(replica, holder string, n uint64) (EscrowEntry, error) {
	if c := e.Committed(holder); n > 0 && (c < 0 || n > uint64(c)) {
		return EscrowEntry{}, fmt.Errorf("%w: %s has %d committed, picked %d", ErrInsufficientRights, holder, c, n)
	}
	return e.grow(EscrowKey{Replica: replica, Kind: Pick, Holder: holder}, n), nil
}

// Deliver records n of holder's spends as delivered, as replica, without
// checking them against this view: for a delivery of a spend the caller
// knows was made (an order line names its order's spend) though this
// view may not have merged it yet. Committed(holder) may read below zero
// here until it has; Promised, which spends do not enter, is right at once.
func (e *Escrow) Deliver(replica, holder string, n uint64) EscrowEntry {
	return e.grow(EscrowKey{Replica: replica, Kind: Pick, Holder: holder}, n)
}

func (e Escrow) within(holder string, n uint64) error {
	if r := e.Rights(holder); n > 0 && (r < 0 || n > uint64(r)) {
		return fmt.Errorf("%w: %s holds %d, asked %d", ErrInsufficientRights, holder, r, n)
	}
	return nil
}

// MergeEntry joins one entry into e. It reports whether e changed; a total
// past MaxTotal changes nothing (the stores refuse it before).
func (e *Escrow) MergeEntry(x EscrowEntry) bool {
	if cur := e.totals[x.EscrowKey]; cur >= x.Total || x.Total > MaxTotal {
		return false
	}
	if e.totals == nil {
		e.totals = make(map[EscrowKey]uint64)
	}
	e.totals[x.EscrowKey] = x.Total
	return true
}

// Merge joins every entry of o into e. It reports whether e changed.
func (e *Escrow) Merge(o Escrow) bool {
	changed := false
	for k, v := range o.totals {
		if e.MergeEntry(EscrowEntry{EscrowKey: k, Total: v}) {
			changed = true
		}
	}
	return changed
}

// Entries returns every entry, sorted by key.
func (e Escrow) Entries() []EscrowEntry {
	out := make([]EscrowEntry, 0, len(e.totals))
	for k, v := range e.totals {
		out = append(out, EscrowEntry{EscrowKey: k, Total: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].EscrowKey.less(out[j].EscrowKey) })
	return out
}

func (k EscrowKey) less(o EscrowKey) bool {
	if k.Replica != o.Replica {
		return k.Replica < o.Replica
	}
	if k.Kind != o.Kind {
		return k.Kind < o.Kind
	}
	if k.Holder != o.Holder {
		return k.Holder < o.Holder
	}
	return k.To < o.To
}

// Holders returns every holder the counter names, sorted.
func (e Escrow) Holders() []string {
	set := map[string]bool{}
	for k := range e.totals {
		set[k.Holder] = true
		if k.Kind == Move {
			set[k.To] = true
		}
	}
	out := make([]string, 0, len(set))
	for h := range set {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}

// Clone returns an independent copy of e.
func (e Escrow) Clone() Escrow {
	out := Escrow{totals: make(map[EscrowKey]uint64, len(e.totals))}
	for k, v := range e.totals {
		out.totals[k] = v
	}
	return out
}

// Equal reports whether e and o hold the same totals; a zero total counts
// as absent.
func (e Escrow) Equal(o Escrow) bool {
	for k, v := range e.totals {
		if o.totals[k] != v {
			return false
		}
	}
	for k, v := range o.totals {
		if e.totals[k] != v {
			return false
		}
	}
	return true
}

// ErrBadEscrowEncoding is returned by UnmarshalBinary for malformed input.
var ErrBadEscrowEncoding = errors.New("crdt: bad escrow encoding")

// MarshalBinary encodes e canonically: uvarint count, then per entry in key
// order: replica, kind byte, holder, to (each string as uvarint length and
// bytes; to empty unless a move), uvarint total.
func (e Escrow) MarshalBinary() ([]byte, error) {
	entries := e.Entries()
	buf := binary.AppendUvarint(nil, uint64(len(entries)))
	for _, x := range entries {
		if err := x.EscrowKey.check(); err != nil {
			return nil, err
		}
		buf = appendString(buf, x.Replica)
		buf = append(buf, byte(x.Kind))
		buf = appendString(buf, x.Holder)
		buf = appendString(buf, x.To)
		buf = binary.AppendUvarint(buf, x.Total)
	}
	return buf, nil
}

func (k EscrowKey) check() error {
	switch {
	case !k.Kind.valid():
		return fmt.Errorf("crdt: escrow kind %q", k.Kind)
	case len(k.Replica) == 0 || len(k.Replica) > maxReplicaID, len(k.Holder) == 0 || len(k.Holder) > maxReplicaID:
		return fmt.Errorf("crdt: escrow replica %q or holder %q: length must be 1..%d", k.Replica, k.Holder, maxReplicaID)
	case (k.Kind == Move) != (k.To != ""), len(k.To) > maxReplicaID, k.Kind == Move && k.To == k.Holder:
		return fmt.Errorf("crdt: escrow %c entry of %s: to %q", k.Kind, k.Holder, k.To)
	}
	return nil
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// UnmarshalBinary decodes the form MarshalBinary writes, replacing e. Only
// the canonical form decodes: the same state never has two encodings.
func (e *Escrow) UnmarshalBinary(b []byte) error {
	var got Escrow
	if err := got.decode(b); err != nil {
		return err
	}
	if again, err := got.MarshalBinary(); err != nil || !bytes.Equal(again, b) {
		return ErrBadEscrowEncoding // e.g. a varint longer than it needs
	}
	*e = got
	return nil
}

func (e *Escrow) decode(b []byte) error {
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	str := func() (string, bool) {
		l, ok := next()
		if !ok || l > maxReplicaID || l > uint64(len(b)) {
			return "", false
		}
		s := string(b[:l])
		b = b[l:]
		return s, true
	}
	count, ok := next()
	if !ok || count > uint64(len(b)) { // every entry takes several bytes
		return ErrBadEscrowEncoding
	}
	totals := make(map[EscrowKey]uint64, count)
	var prev *EscrowKey
	for range count {
		var k EscrowKey
		if k.Replica, ok = str(); !ok || len(b) == 0 {
			return ErrBadEscrowEncoding
		}
		k.Kind, b = Kind(b[0]), b[1:]
		if k.Holder, ok = str(); !ok {
			return ErrBadEscrowEncoding
		}
		if k.To, ok = str(); !ok {
			return ErrBadEscrowEncoding
		}
		v, ok := next()
		if !ok || v == 0 || v > MaxTotal || k.check() != nil || (prev != nil && !prev.less(k)) { // canonical: sorted, no duplicates or zeros
			return ErrBadEscrowEncoding
		}
		totals[k] = v
		prev = &k
	}
	if len(b) != 0 {
		return ErrBadEscrowEncoding
	}
	e.totals = totals
	return nil
}
