package store

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/crdt"
)

// allot is a promise moving qty of wh1's own SKU-C rights to channel.
func allot(id, channel string, qty uint64) *Promise {
	return &Promise{ID: id, BodyHash: []byte(id + channel), Body: []byte("allotted " + id),
		Ops: []EscrowOp{{Warehouse: "wh1", SKU: "SKU-C", Kind: crdt.Move, Holder: LocalHolder, To: channel, Qty: qty}}}
}

func promise(t *testing.T, db *DB, b *Batch) {
	t.Helper()
	_, err := db.Apply(t.Context(), b)
	require.NoError(t, err)
}

// The warehouse's own rights follow its stock (SPEC §9): allotments and
// local holds share what is on hand less safety stock, never the same
// unit twice, and a channel's orders and releases move the line.
func TestDB_HoldsAllotmentsAndSafety(t *testing.T) {
	db := openTest(t, t.TempDir())
	promise(t, db, &Batch{Events: []Event{ev("d1", "r1", "receive", "SKU-C", 10)}, Safety: []Safety{{Warehouse: "wh1", SKU: "SKU-C", Qty: 2}}})

	a := allot("a1", "amazon", 5)
	promise(t, db, &Batch{Promises: []*Promise{a}})
	require.Equal(t, PromiseOK, a.Result.Status)
	again := allot("a1", "amazon", 5)
	promise(t, db, &Batch{Promises: []*Promise{again}})
	require.Equal(t, PromiseExisted, again.Result.Status, "the same allotment again")
	require.Equal(t, "allotted a1", string(again.Result.Body))
	reused := allot("a1", "ebay", 1)
	promise(t, db, &Batch{Promises: []*Promise{reused}})
	require.Equal(t, PromiseIDReused, reused.Result.Status)

	// 10 on hand − 2 safety − 5 allotted: 3 left for the warehouse.
	over := allot("a2", "ebay", 4)
	promise(t, db, &Batch{Promises: []*Promise{over}})
	require.Equal(t, PromiseInsufficient, over.Result.Status)
	require.Equal(t, int64(3), over.Result.Rights)
	h := &HoldOp{Kind: HoldCreate, Hold: Hold{ID: "h1", Warehouse: "wh1", Location: "default", SKU: "SKU-C", Qty: 4}, BodyHash: []byte("h1"), Now: time.Now()}
	promise(t, db, &Batch{Holds: []*HoldOp{h}})
	require.Equal(t, HoldInsufficient, h.Result.Status, "a local hold cannot take allotted or safety stock")
	require.Equal(t, int64(3), h.Result.Available)
	h = &HoldOp{Kind: HoldCreate, Hold: Hold{ID: "h2", Warehouse: "wh1", Location: "default", SKU: "SKU-C", Qty: 2, ExpiresAt: time.Now().Add(time.Hour)}, BodyHash: []byte("h2"), Now: time.Now()}
	promise(t, db, &Batch{Holds: []*HoldOp{h}})
	require.Equal(t, HoldOK, h.Result.Status)
	one := allot("a3", "ebay", 2)
	promise(t, db, &Batch{Promises: []*Promise{one}})
	require.Equal(t, PromiseInsufficient, one.Result.Status, "the hold took two of the three")
	require.Equal(t, int64(1), one.Result.Rights)

	// The hub sells 2 on amazon (still promised: committed) and releases
	// 2 more back to the warehouse, which may allot them again.
	hub := "hub.0123456789abcdef"
	promise(t, db, &Batch{Merges: []*MergeOp{{Now: time.Now(), Escrow: []EscrowEntry{
		{Warehouse: "wh1", SKU: "SKU-C", EscrowEntry: crdt.EscrowEntry{EscrowKey: crdt.EscrowKey{Replica: hub, Kind: crdt.Spend, Holder: "amazon"}, Total: 2}},
		{Warehouse: "wh1", SKU: "SKU-C", EscrowEntry: crdt.EscrowEntry{EscrowKey: crdt.EscrowKey{Replica: hub, Kind: crdt.Move, Holder: "amazon", To: LocalHolder}, Total: 2}},
	}}}})
	rights, err := db.RightsOf(t.Context(), "wh1", []string{"SKU-C", "SKU-none"})
	require.NoError(t, err)
	require.Len(t, rights, 1)
	e := rights["SKU-C"]
	require.Equal(t, int64(1), e.Rights("amazon"))
	require.Equal(t, int64(2), e.Committed("amazon"))
	require.Equal(t, int64(3), e.Promised(LocalHolder))
	three := allot("a4", "ebay", 3)
	promise(t, db, &Batch{Promises: []*Promise{three}})
	require.Equal(t, PromiseOK, three.Result.Status, "10 − 2 safety − 3 promised − 2 held")

	safety, err := db.SafetyOf(t.Context(), "wh1", []string{"SKU-C"})
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"SKU-C": 2}, safety)
	_, body, found, err := db.PromiseOf(t.Context(), "a4")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "allotted a4", string(body))

	// Rights of another warehouse are not this store's to allot.
	other := &Promise{ID: "x", Ops: []EscrowOp{{Warehouse: "wh2", SKU: "SKU-C", Kind: crdt.Move, Holder: LocalHolder, To: "amazon", Qty: 1}}}
	_, err = db.Apply(t.Context(), &Batch{Promises: []*Promise{other}})
	require.ErrorIs(t, err, errNotOwner)
}

// Order lines reach their warehouse as committed holds awaiting a pick
// (SPEC §9): a pick is one sale and settles the channel's commitment,
// once; a cancellation ends a line not picked yet, and nothing else.
func TestDB_OrderLines(t *testing.T) {
	db := openTest(t, t.TempDir())
	promise(t, db, &Batch{Events: []Event{ev("d1", "r1", "receive", "SKU-L", 10)}})
	promise(t, db, &Batch{Promises: []*Promise{{ID: "a1", Ops: []EscrowOp{{Warehouse: "wh1", SKU: "SKU-L", Kind: crdt.Move, Holder: LocalHolder, To: "amazon", Qty: 5}}}}})
	promise(t, db, &Batch{Holds: []*HoldOp{{Kind: HoldCreate, Hold: Hold{ID: "cart", Warehouse: "wh1", Location: "default", SKU: "SKU-L", Qty: 1,
		ExpiresAt: time.Now().Add(time.Hour)}, BodyHash: []byte("cart"), Now: time.Now()}}})
	hub := "hub.0123456789abcdef"
	spend := EscrowEntry{Warehouse: "wh1", SKU: "SKU-L", EscrowEntry: crdt.EscrowEntry{EscrowKey: crdt.EscrowKey{Replica: hub, Kind: crdt.Spend, Holder: "amazon"}, Total: 4}} // o1.1 and o2.1
	promise(t, db, &Batch{Merges: []*MergeOp{{Now: time.Now(), Escrow: []EscrowEntry{spend}, Lines: []OrderLine{
		{ID: "o1.1", Warehouse: "wh1", SKU: "SKU-L", Channel: "amazon", Qty: 3},
		{ID: "cart", Warehouse: "wh1", SKU: "SKU-L", Channel: "amazon", Qty: 1},                  // a local hold has the id
		{ID: "o2.1", Warehouse: "wh1", SKU: "SKU-L", Channel: "amazon", Qty: 1, Cancelled: true}, // cancelled before it arrived
		{ID: "o3.1", Warehouse: "wh2", SKU: "SKU-L", Channel: "amazon", Qty: 1},                  // not this warehouse's
	}}}})
	h, found, err := db.GetHold(t.Context(), LineHoldID("o1.1"))
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, HoldCommitted, h.State)
	require.Equal(t, HubHolder, h.Holder)
	require.True(t, h.ExpiresAt.IsZero(), "an order line never expires")
	h, _, err = db.GetHold(t.Context(), "cart")
	require.NoError(t, err)
	require.Equal(t, HoldActive, h.State, "the local hold is left as it was")
	h, _, err = db.GetHold(t.Context(), LineHoldID("cart"))
	require.NoError(t, err)
	require.Equal(t, HoldCommitted, h.State, "and the line of the same name is taken all the same")
	h, _, err = db.GetHold(t.Context(), LineHoldID("o2.1"))
	require.NoError(t, err)
	require.Equal(t, HoldCancelled, h.State)
	rights, err := db.RightsOf(t.Context(), "wh1", []string{"SKU-L"})
	require.NoError(t, err)
	e := rights["SKU-L"]
	require.Equal(t, int64(3), e.Committed("amazon"), "o2.1, cancelled before it arrived, is settled: only o1.1 is committed")
	_, found, err = db.GetHold(t.Context(), LineHoldID("o3.1"))
	require.NoError(t, err)
	require.False(t, found)

	for range 2 {
		op := &HoldOp{Kind: HoldCommit, Hold: Hold{ID: LineHoldID("o1.1")}, EventDevice: "holds", EventID: "hold:o1.1", Now: time.Now()}
		promise(t, db, &Batch{Holds: []*HoldOp{op}})
		require.Equal(t, HoldOK, op.Result.Status)
		require.Equal(t, HoldPicked, op.Result.Hold.State)
	}
	require.Equal(t, int64(7), onHand(t, db, "SKU-L"), "picked once")
	rights, err = db.RightsOf(t.Context(), "wh1", []string{"SKU-L"})
	require.NoError(t, err)
	e = rights["SKU-L"]
	require.Equal(t, int64(0), e.Committed("amazon"))
	require.Equal(t, int64(1), e.Promised(LocalHolder), "amazon's 1 unsold right")

	// A line can arrive before its spend (the spend's total moved to a
	// later version when the channel sold again): picked meanwhile, it is
	// settled in full, and committed is right once the spend arrives.
	promise(t, db, &Batch{Merges: []*MergeOp{{Now: time.Now(), Lines: []OrderLine{{ID: "o5.1", Warehouse: "wh1", SKU: "SKU-L", Channel: "amazon", Qty: 2}}}}})
	pick := &HoldOp{Kind: HoldCommit, Hold: Hold{ID: LineHoldID("o5.1")}, EventDevice: "holds", EventID: "hold:o5.1", Now: time.Now()}
	promise(t, db, &Batch{Holds: []*HoldOp{pick}})
	require.Equal(t, HoldPicked, pick.Result.Hold.State)
	spend.Total = 6
	promise(t, db, &Batch{Merges: []*MergeOp{{Now: time.Now(), Escrow: []EscrowEntry{spend}}}})
	rights, err = db.RightsOf(t.Context(), "wh1", []string{"SKU-L"})
	require.NoError(t, err)
	e = rights["SKU-L"]
	require.Equal(t, int64(0), e.Committed("amazon"), "both picks settled their lines")
	require.Equal(t, int64(5), onHand(t, db, "SKU-L"))

	// Cancelled after its pick: it stays picked, sold.
	promise(t, db, &Batch{Merges: []*MergeOp{{Now: time.Now(), Lines: []OrderLine{{ID: "o1.1", Warehouse: "wh1", SKU: "SKU-L", Channel: "amazon", Qty: 3, Cancelled: true}}}}})
	h, _, err = db.GetHold(t.Context(), LineHoldID("o1.1"))
	require.NoError(t, err)
	require.Equal(t, HoldPicked, h.State)
	release := &HoldOp{Kind: HoldRelease, Hold: Hold{ID: LineHoldID("o1.1")}, Now: time.Now()}
	promise(t, db, &Batch{Holds: []*HoldOp{release}})
	require.Equal(t, HoldNotActive, release.Result.Status)
}

// allotment_shortfall is raised when a fact takes units a channel was
// promised: once per crossing, not again when an order line of that
// channel is picked (on_hand and Promised fall together), and never for
// a SKU no channel holds (safety stock alone is no promise).
func TestDB_ShortfallAlerts(t *testing.T) {
	db := openTest(t, t.TempDir())
	promise(t, db, &Batch{Events: []Event{ev("d1", "r1", "receive", "SKU-S", 3)}, Safety: []Safety{{Warehouse: "wh1", SKU: "SKU-Z", Qty: 1}}})
	promise(t, db, &Batch{Promises: []*Promise{{ID: "a", Ops: []EscrowOp{{Warehouse: "wh1", SKU: "SKU-S", Kind: crdt.Move, Holder: LocalHolder, To: "amazon", Qty: 2}}}}})
	spend := EscrowEntry{Warehouse: "wh1", SKU: "SKU-S", EscrowEntry: crdt.EscrowEntry{EscrowKey: crdt.EscrowKey{Replica: "hub.0123456789abcdef", Kind: crdt.Spend, Holder: "amazon"}, Total: 2}}
	promise(t, db, &Batch{Merges: []*MergeOp{{Now: time.Now(), Escrow: []EscrowEntry{spend},
		Lines: []OrderLine{{ID: "o.1", Warehouse: "wh1", SKU: "SKU-S", Channel: "amazon", Qty: 2}}}}})
	promise(t, db, &Batch{Events: []Event{ev("d1", "s1", "sale", "SKU-S", -2), ev("d1", "s2", "sale", "SKU-Z", -1)}})
	pick := &HoldOp{Kind: HoldCommit, Hold: Hold{ID: LineHoldID("o.1")}, EventDevice: "holds", EventID: "hold:o.1", Now: time.Now()}
	promise(t, db, &Batch{Holds: []*HoldOp{pick}})
	require.Equal(t, HoldPicked, pick.Result.Hold.State)

	alerts, err := db.Alerts(t.Context(), 0, 100)
	require.NoError(t, err)
	var shortfalls []Alert
	for _, a := range alerts {
		if a.Kind == AlertShortfall {
			shortfalls = append(shortfalls, a)
		}
	}
	require.Len(t, shortfalls, 1, "the till sale, once; not the pick; not SKU-Z")
	require.Equal(t, "SKU-S", shortfalls[0].SKU)
	require.Equal(t, int64(-1), shortfalls[0].Level)
}
