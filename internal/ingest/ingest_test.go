package ingest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"testing"

	"github.com/edgestock/edgestock/drivers"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// BodyHash is stored with every event and compared with the hash of any
// later event of the same id: its encoding may never change. The reference
// here hashes field by field, as the hash was first defined; long fields
// (past BodyHash's stack buffer) are included.
func TestBodyHash_Encoding(t *testing.T) {
	reference := func(e *drivers.Event) []byte {
		h := sha256.New()
		for _, s := range []string{e.Type, e.SKU, e.Barcode, e.Location, e.ToLocation, e.TS, e.Channel, e.Voids} {
			var n [4]byte
			binary.BigEndian.PutUint32(n[:], uint32(len(s)))
			h.Write(n[:])
			h.Write([]byte(s))
		}
		var n [16]byte
		binary.BigEndian.PutUint64(n[:8], uint64(e.Qty))
		binary.BigEndian.PutUint64(n[8:], uint64(e.Seq))
		h.Write(n[:])
		return h.Sum(nil)[:16]
	}
	rapid.Check(t, func(t *rapid.T) {
		str := rapid.StringN(0, 200, -1)
		e := &drivers.Event{Type: str.Draw(t, "type"), SKU: str.Draw(t, "sku"), Barcode: str.Draw(t, "barcode"),
			Location: str.Draw(t, "location"), ToLocation: str.Draw(t, "to"), TS: str.Draw(t, "ts"),
			Channel: str.Draw(t, "channel"), Voids: str.Draw(t, "voids"),
			Qty: rapid.Int64().Draw(t, "qty"), Seq: rapid.Int64().Draw(t, "seq")}
		require.Equal(t, reference(e), BodyHash(e))
	})

	// The hash of one event as every release so far has stored it.
	e := &drivers.Event{Type: "receive", SKU: "SKU-1", Location: "default", Qty: 5, Seq: 7}
	require.Equal(t, "d84481ae733f312e85c775e7a87f3149", hex.EncodeToString(BodyHash(e)))
}

// BenchmarkBodyHash: the content hash every event gets for id_reused.
func BenchmarkBodyHash(b *testing.B) {
	e := &drivers.Event{Type: "receive", SKU: "SKU-B", Location: "default", Qty: 1}
	b.ReportAllocs()
	for b.Loop() {
		BodyHash(e)
	}
}
