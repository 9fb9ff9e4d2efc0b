package replenish

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
)

// ErrBadEncoding is returned by UnmarshalBinary for input MarshalBinary
// would not have written.
var ErrBadEncoding = errors.New("replenish: bad demand encoding")

// encodingVersion is the first byte of every encoding; a change to the
// layout or to the estimator's constants takes a new one.
const encodingVersion = 1

// MarshalBinary encodes d as: a version byte; for an item with demand seen,
// then the newest day (zigzag varint), the span to the oldest (uvarint), the
// WindowDays exact totals oldest first (uvarints), and the 23 sums as
// big-endian float32 bits (fast0, fast1, slow0 by weekday, events,
// squares). The encoding is canonical: equal states encode to equal bytes.
func (d Demand) MarshalBinary() ([]byte, error) {
	buf := make([]byte, 0, 1+2*binary.MaxVarintLen32+WindowDays+23*4)
	buf = append(buf, encodingVersion)
	if !d.seen {
		return buf, nil
	}
	buf = binary.AppendVarint(buf, int64(d.last))
	buf = binary.AppendUvarint(buf, uint64(int64(d.last)-int64(d.first)))
	for i := int64(WindowDays - 1); i >= 0; i-- {
		buf = binary.AppendUvarint(buf, uint64(d.ring[ringSlot(int64(d.last)-i)]))
	}
	for _, v := range d.sums() {
		buf = binary.BigEndian.AppendUint32(buf, math.Float32bits(*v))
	}
	return buf, nil
}

func (d *Demand) sums() []*float32 {
	out := make([]*float32, 0, 23)
	for _, arr := range []*[7]float32{&d.fast0, &d.fast1, &d.slow0} {
		for w := range arr {
			out = append(out, &arr[w])
		}
	}
	return append(out, &d.events, &d.squares)
}

// UnmarshalBinary decodes the form MarshalBinary writes, replacing d. It
// rejects anything else: other versions, non-minimal varints, days out of
// range, totals for days before the oldest, negative, NaN or infinite sums,
// trailing bytes.
func (d *Demand) UnmarshalBinary(b []byte) error {
	in := b
	if len(b) == 0 || b[0] != encodingVersion {
		return ErrBadEncoding
	}
	b = b[1:]
	var out Demand
	if len(b) > 0 {
		out.seen = true
		last, n := binary.Varint(b)
		if n <= 0 || last < math.MinInt32 || last > math.MaxInt32 {
			return ErrBadEncoding
		}
		b = b[n:]
		span, n := binary.Uvarint(b)
		if n <= 0 || span > uint64(last-math.MinInt32) {
			return ErrBadEncoding
		}
		b = b[n:]
		out.last, out.first = int32(last), int32(last-int64(span))
		for i := int64(WindowDays - 1); i >= 0; i-- {
			v, n := binary.Uvarint(b)
			if n <= 0 || v > math.MaxUint32 || (v != 0 && uint64(i) > span) {
				return ErrBadEncoding
			}
			b = b[n:]
			out.ring[ringSlot(last-i)] = uint32(v)
		}
		for _, p := range out.sums() {
			if len(b) < 4 {
				return ErrBadEncoding
			}
			v := math.Float32frombits(binary.BigEndian.Uint32(b))
			b = b[4:]
			if math.Signbit(float64(v)) || math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return ErrBadEncoding
			}
			*p = v
		}
	}
	if len(b) != 0 {
		return ErrBadEncoding
	}
	// Re-encoding must give the input back (varints are minimal).
	if again, _ := out.MarshalBinary(); !bytes.Equal(again, in) {
		return ErrBadEncoding
	}
	*d = out
	return nil
}
