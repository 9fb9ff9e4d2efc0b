package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/edgestock/edgestock/crdt"
)

// The commit loop's level cache always equals what SQL holds: after any
// sequence of commits of events (transfers and counts among them), holds
// taken, sold and released, safety stock, allotments, merged foreign
// entries and rights, and transactions that fail and roll back, every
// cached SKU's on_hand per location, safety and promised are what a read
// of the database gives. Holds, allotments and alerts read the cache, so
// this is what keeps them deciding on committed state.
func TestLevels_MatchSQL(t *testing.T) {
	dir, run, compared := t.TempDir(), 0, 0
	rapid.Check(t, func(t *rapid.T) {
		run++
		db, err := Open(t.Context(), filepath.Join(dir, fmt.Sprint(run)), Options{Warehouse: "wh1"})
		require.NoError(t, err)
		defer db.Close()
		skus := []string{"A", "B", "C"}
		locations := []string{"default", "back"}
		foreign := map[string]uint64{} // what the "hub" replica merged so far, per sku/location
		n := 0
		id := func(prefix string) string { n++; return fmt.Sprintf("%s%d", prefix, n) }
		for range rapid.IntRange(1, 25).Draw(t, "commits") {
			b := &Batch{}
			for range rapid.IntRange(1, 4).Draw(t, "ops") {
				sku := rapid.SampledFrom(skus).Draw(t, "sku")
				loc := rapid.SampledFrom(locations).Draw(t, "location")
				switch rapid.IntRange(0, 7).Draw(t, "op") {
				case 0, 1: // receive or adjust
					e := ev("d1", id("e"), "adjust", sku, rapid.Int64Range(-5, 20).Draw(t, "delta"))
					e.Location = loc
					b.Events = append(b.Events, e)
				case 2: // count
					e := ev("d1", id("c"), "count", sku, 0)
					e.Location, e.Qty, e.Absolute = loc, rapid.Int64Range(0, 30).Draw(t, "counted"), true
					b.Events = append(b.Events, e)
				case 3: // transfer
					e := ev("d1", id("t"), "transfer", sku, -rapid.Int64Range(1, 5).Draw(t, "moved"))
					e.Location, e.ToLocation = loc, locations[0]
					if loc == locations[0] {
						e.ToLocation = locations[1]
					}
					b.Events = append(b.Events, e)
				case 4: // a hold
					hid := id("h")
					b.Holds = append(b.Holds, &HoldOp{Kind: HoldCreate, Hold: Hold{ID: hid, Warehouse: "wh1", Location: loc, SKU: sku,
						Qty: rapid.Int64Range(1, 6).Draw(t, "held"), ExpiresAt: time.Now().Add(time.Hour)}, BodyHash: []byte(hid), Now: time.Now()})
				case 5: // safety stock
					b.Safety = append(b.Safety, Safety{Warehouse: "wh1", SKU: sku, Qty: rapid.Int64Range(0, 5).Draw(t, "safety")})
				case 6: // an allotment to a channel
					b.Promises = append(b.Promises, &Promise{ID: id("p"), BodyHash: []byte("p"), Body: []byte("p"),
						Ops: []EscrowOp{{Warehouse: "wh1", SKU: sku, Kind: crdt.Move, Holder: LocalHolder, To: "web", Qty: uint64(rapid.IntRange(1, 4).Draw(t, "allotted"))}}})
				case 7: // the hub's central write, merged
					k := sku + "/" + loc
					foreign[k] += uint64(rapid.IntRange(0, 5).Draw(t, "merged"))
					b.Merges = append(b.Merges, &MergeOp{Entries: []Entry{{Warehouse: "wh1", Location: loc, SKU: sku, Replica: "hub.x",
						Entry: crdt.Entry{P: foreign[k]}}}, Now: time.Now()})
				}
			}
			if rapid.IntRange(0, 9).Draw(t, "fail") == 0 { // past the bound: the whole transaction rolls back
				b.Merges = append(b.Merges, &MergeOp{Entries: []Entry{{Warehouse: "wh1", Location: "default", SKU: "A", Replica: "hub.y",
					Entry: crdt.Entry{P: MaxTotal + 1}}}, Now: time.Now()})
			}
			_, _ = db.Apply(t.Context(), b) // a failed batch must leave the cache as it was
			for sku, cached := range db.levelCache {
				compared++
				want := readLevelSQL(t, db, sku)
				require.Equal(t, want.onHand, cached.onHand, "on_hand of %s", sku)
				for _, l := range want.locations {
					require.Equal(t, l.onHand, cached.at(l.location), "on_hand of %s at %s", sku, l.location)
				}
				require.Equal(t, want.safety, cached.safety, "safety of %s", sku)
				require.Equal(t, want.promised, cached.promised, "promised of %s", sku)
			}
		}
	})
	require.Positive(t, compared, "holds and alerts read levels: some were cached and compared")
}

// readLevelSQL reads sku's level as readLevel does, outside the commit loop.
func readLevelSQL(t *rapid.T, db *DB, sku string) skuLevel {
	var l skuLevel
	rows, err := db.reader.QueryContext(t.Context(), sqlLocationsOnHand, db.warehouse, sku)
	require.NoError(t, err)
	for rows.Next() {
		var x locationLevel
		require.NoError(t, rows.Scan(&x.location, &x.onHand))
		l.locations = append(l.locations, x)
		l.onHand += x.onHand
	}
	require.NoError(t, rows.Close())
	safety, err := db.SafetyOf(t.Context(), db.warehouse, []string{sku})
	require.NoError(t, err)
	rights, err := db.RightsOf(t.Context(), db.warehouse, []string{sku})
	require.NoError(t, err)
	l.safety = safety[sku]
	e := rights[sku]
	l.promised = e.Promised(LocalHolder)
	return l
}

// ReservedOf answers from what the commit loop published, and asks the
// database only for a SKU with a hold that may have expired: after any
// sequence of holds taken (some already past their expiry), renewed
// (sooner or later), released, sold and swept, it equals the database's
// sum of active, unexpired holds at every moment asked about, and a
// reopened store (which publishes from the table) agrees.
func TestReservedOf_MatchSQL(t *testing.T) {
	dir, run := t.TempDir(), 0
	rapid.Check(t, func(t *rapid.T) {
		run++
		path := filepath.Join(dir, fmt.Sprint(run))
		db, err := Open(t.Context(), path, Options{Warehouse: "wh1"})
		require.NoError(t, err)
		defer func() { _ = db.Close() }()
		skus := []string{"A", "B", "C"}
		var stock []Event
		for _, sku := range skus {
			stock = append(stock, ev("d1", "r"+sku, "receive", sku, 1000))
		}
		_, err = db.Apply(t.Context(), &Batch{Events: stock})
		require.NoError(t, err)
		t0 := time.Now().Truncate(time.Millisecond)
		at := func(label string) time.Time {
			return t0.Add(time.Duration(rapid.IntRange(-5, 60).Draw(t, label)) * time.Second)
		}
		var ids []string
		check := func() {
			for range 3 {
				now := at("now")
				got, err := db.ReservedOf(t.Context(), skus, now)
				require.NoError(t, err)
				want, err := db.bySKU(t.Context(), sqlReservedOf, skus, db.warehouse, now.UnixMilli())
				require.NoError(t, err)
				require.Equal(t, want, got, "at +%s", now.Sub(t0))
			}
		}
		for i := range rapid.IntRange(1, 30).Draw(t, "ops") {
			op := &HoldOp{Now: at("op time")}
			switch k := rapid.IntRange(0, 4).Draw(t, "kind"); {
			case k <= 1 || len(ids) == 0:
				id := fmt.Sprint("h", i)
				ids = append(ids, id)
				op.Kind, op.BodyHash = HoldCreate, []byte(id)
				op.Hold = Hold{ID: id, Warehouse: "wh1", Location: "default", SKU: rapid.SampledFrom(skus).Draw(t, "sku"),
					Qty: rapid.Int64Range(1, 5).Draw(t, "qty"), ExpiresAt: at("expires")}
			case k == 2:
				op.Kind, op.Hold = HoldRenew, Hold{ID: rapid.SampledFrom(ids).Draw(t, "id"), ExpiresAt: at("renewed to")}
			case k == 3:
				op.Kind, op.Hold = rapid.SampledFrom([]HoldOpKind{HoldRelease, HoldCommit}).Draw(t, "end"), Hold{ID: rapid.SampledFrom(ids).Draw(t, "id")}
			default:
				op.Kind = HoldExpire
			}
			_, err := db.Apply(t.Context(), &Batch{Holds: []*HoldOp{op}})
			require.NoError(t, err)
			check()
		}
		require.NoError(t, db.Close())
		db, err = Open(t.Context(), path, Options{Warehouse: "wh1"})
		require.NoError(t, err)
		check()
	})
}

// What ReservedOf answers is never older than the database: a reader that
// sums a SKU's holds in SQL and then asks ReservedOf, while holds are
// taken one by one, never gets less than the sum it read first.
func TestReservedOf_NeverOlderThanSQL(t *testing.T) {
	db := openTest(t, t.TempDir())
	_, err := db.Apply(t.Context(), &Batch{Events: []Event{ev("d1", "r", "receive", "N", 100000)}})
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 300 {
			id := fmt.Sprint("h", i)
			_, err := db.Apply(t.Context(), &Batch{Holds: []*HoldOp{{Kind: HoldCreate, BodyHash: []byte(id), Now: time.Now(),
				Hold: Hold{ID: id, Warehouse: "wh1", Location: "default", SKU: "N", Qty: 1, ExpiresAt: time.Now().Add(time.Hour)}}}})
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	reads := 0
	for {
		select {
		case <-done:
			require.Positive(t, reads)
			return
		default:
		}
		now := time.Now()
		inSQL, err := db.reservedInSQL(t.Context(), []string{"N"}, now)
		require.NoError(t, err)
		got, err := db.ReservedOf(t.Context(), []string{"N"}, now)
		require.NoError(t, err)
		require.GreaterOrEqual(t, got["N"], inSQL["N"], "ReservedOf older than the SQL read before it")
		reads++
	}
}

// A hold in the same transaction as a merge that raised its SKU takes
// what the merge brought, though the SKU's level was cached before: a
// merged SKU is read in the transaction, not from the cache.
func TestLevels_HoldAfterMergeInOneTransaction(t *testing.T) {
	db := openTest(t, t.TempDir())
	early := &HoldOp{Kind: HoldCreate, BodyHash: []byte("h0"), Now: time.Now(),
		Hold: Hold{ID: "h0", Warehouse: "wh1", Location: "default", SKU: "M", Qty: 1, ExpiresAt: time.Now().Add(time.Hour)}}
	_, err := db.Apply(t.Context(), &Batch{Holds: []*HoldOp{early}})
	require.NoError(t, err)
	require.Equal(t, HoldInsufficient, early.Result.Status)
	require.NotNil(t, db.levelCache["M"], "M's level (nothing) is cached")

	// The commit loop waits for requests; this test is its only caller
	// now, as Apply's answer happened before.
	hold := &HoldOp{Kind: HoldCreate, BodyHash: []byte("h1"), Now: time.Now(),
		Hold: Hold{ID: "h1", Warehouse: "wh1", Location: "default", SKU: "M", Qty: 5, ExpiresAt: time.Now().Add(time.Hour)}}
	merge := &Batch{Merges: []*MergeOp{{Entries: []Entry{{Warehouse: "wh1", Location: "default", SKU: "M", Replica: "hub.x",
		Entry: crdt.Entry{P: 5}}}, Now: time.Now()}}}
	noop := func([]Outcome, error) {}
	require.NoError(t, db.commitTx([]*request{{batch: merge, done: noop}, {batch: &Batch{Holds: []*HoldOp{hold}}, done: noop}}))
	require.Equal(t, HoldOK, hold.Result.Status, "the merge's 5 units, in the same transaction")
	require.Nil(t, db.levelCache["M"], "dropped at the commit: read again when next needed")
}
