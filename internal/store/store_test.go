package store

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func openTest(tb testing.TB, dir string) *DB {
	tb.Helper()
	db, err := Open(context.Background(), dir, Options{Warehouse: "wh1"})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

func ev(device, id, typ, sku string, delta int64) Event {
	return Event{Device: device, ID: id, BodyHash: []byte(fmt.Sprintf("%s|%s|%d", typ, sku, delta)), Type: typ,
		Warehouse: "wh1", Location: "default", SKU: sku, Qty: max(delta, -delta), Delta: delta, Source: "test", ReceivedAt: time.Now()}
}

// tb is what both *testing.T and *rapid.T offer.
type tb interface {
	require.TestingT
	Helper()
}

func onHand(tb tb, db *DB, sku string) int64 {
	tb.Helper()
	return level(tb, db, sku).OnHand
}

// level is sku's level in wh1 (zero if never seen there).
func level(tb tb, db *DB, sku string) StockLevel {
	tb.Helper()
	levels, err := db.SKUsStock(context.Background(), []string{sku})
	require.NoError(tb, err)
	for _, l := range levels {
		if l.Warehouse == "wh1" {
			return l
		}
	}
	return StockLevel{}
}

func TestDB_ApplyDedupe(t *testing.T) {
	db := openTest(t, t.TempDir())
	ctx := t.Context()
	out, err := db.Apply(ctx, &Batch{Events: []Event{ev("d1", "e1", "receive", "SKU-1", 5), ev("d1", "e1", "receive", "SKU-1", 5)}})
	require.NoError(t, err)
	require.Equal(t, Applied, out[0].Status)
	require.Equal(t, Duplicate, out[1].Status, "a duplicate inside one batch is seen")
	require.Equal(t, out[0].Seq, out[1].Seq)

	out, err = db.Apply(ctx, &Batch{Events: []Event{ev("d1", "e1", "receive", "SKU-1", 5), ev("d1", "e1", "receive", "SKU-1", 7), ev("d2", "e1", "sale", "SKU-1", -2)}})
	require.NoError(t, err)
	require.Equal(t, []Status{Duplicate, IDReused, Applied}, []Status{out[0].Status, out[1].Status, out[2].Status})
	require.Equal(t, int64(3), onHand(t, db, "SKU-1"))
}

func TestDB_CountAndTransfer(t *testing.T) {
	db := openTest(t, t.TempDir())
	ctx := t.Context()
	count := ev("d1", "c1", "count", "SKU-1", 0)
	count.Absolute, count.Qty = true, 12
	transfer := ev("d1", "t1", "transfer", "SKU-1", -4)
	transfer.ToLocation = "A-01"
	out, err := db.Apply(ctx, &Batch{Events: []Event{ev("d1", "r1", "receive", "SKU-1", 10), count, transfer}})
	require.NoError(t, err)
	require.Equal(t, int64(2), out[1].Delta, "count records delta = counted − on_hand")
	l := level(t, db, "SKU-1")
	require.Equal(t, int64(12), l.OnHand)
	require.Equal(t, map[string]int64{"default": 8, "A-01": 4}, l.Locations)

	logged, err := db.Events(ctx, 0, 10)
	require.NoError(t, err)
	require.Len(t, logged, 3)
	require.Equal(t, "count", logged[1].Type)
	require.Equal(t, int64(2), logged[1].Delta)
}

func TestDB_QuarantineAndReopen(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(t.Context(), dir, Options{Warehouse: "wh1"})
	require.NoError(t, err)
	replica := db.ReplicaID()
	_, err = db.Apply(t.Context(), &Batch{
		Events:   []Event{ev("d1", "e1", "receive", "SKU-1", 5)},
		Rejected: []Rejected{{Source: "mqtt", Device: "d1", Reason: "bad_json", Message: "unexpected EOF", Payload: []byte("{"), ReceivedAt: time.Now()}},
	})
	require.NoError(t, err)
	require.NoError(t, db.Close())

	_, err = Open(t.Context(), dir, Options{Warehouse: "other"})
	require.ErrorIs(t, err, ErrWrongWarehouse)

	db = openTest(t, dir)
	require.Equal(t, replica, db.ReplicaID(), "the replica ID belongs to the database")
	require.Equal(t, int64(5), onHand(t, db, "SKU-1"))
	q, err := db.Quarantine(t.Context(), 0, 10)
	require.NoError(t, err)
	require.Len(t, q, 1)
	require.Equal(t, "bad_json", q[0].Reason)
	require.Equal(t, []byte("{"), q[0].Payload)
	verdict, err := db.IntegrityCheck(t.Context())
	require.NoError(t, err)
	require.Equal(t, "ok", verdict)

	other := openTest(t, t.TempDir())
	require.NotEqual(t, replica, other.ReplicaID(), "a fresh database is a new replica")
}

func TestDB_ConcurrentSubmitters(t *testing.T) {
	db := openTest(t, t.TempDir())
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				// Every writer also resends its previous event: dedupe must hold under concurrency.
				out, err := db.Apply(context.Background(), &Batch{Events: []Event{
					ev(fmt.Sprint("d", w), fmt.Sprint(i), "receive", "SKU-1", 1),
					ev(fmt.Sprint("d", w), fmt.Sprint(max(i-1, 0)), "receive", "SKU-1", 1),
				}})
				require.NoError(t, err)
				require.Equal(t, Applied, out[0].Status)
				require.Equal(t, Duplicate, out[1].Status)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int64(writers*each), onHand(t, db, "SKU-1"))
}

func TestDB_StockPage(t *testing.T) {
	db := openTest(t, t.TempDir())
	var events []Event
	for i := range 5 {
		events = append(events, ev("d1", fmt.Sprint("a", i), "receive", fmt.Sprintf("A-%d", i), int64(i+1)))
		events = append(events, ev("d1", fmt.Sprint("b", i), "receive", fmt.Sprintf("B-%d", i), 1))
	}
	_, err := db.Apply(t.Context(), &Batch{Events: events})
	require.NoError(t, err)
	page, err := db.StockPage(t.Context(), "A-", "", 3)
	require.NoError(t, err)
	require.Equal(t, []string{"A-0", "A-1", "A-2"}, page)
	page, err = db.StockPage(t.Context(), "A-", page[2], 3)
	require.NoError(t, err)
	require.Equal(t, []string{"A-3", "A-4"}, page)
}

func TestDB_SubmitAfterClose(t *testing.T) {
	db, err := Open(t.Context(), t.TempDir(), Options{Warehouse: "wh1"})
	require.NoError(t, err)
	require.NoError(t, db.Close())
	_, err = db.Apply(t.Context(), &Batch{Events: []Event{ev("d1", "e1", "receive", "SKU-1", 1)}})
	require.ErrorIs(t, err, ErrClosed)
}

// Whatever mix of new events and redeliveries arrives, in whatever batches,
// on_hand is the sum of the distinct events.
func TestDB_DedupeProperty(t *testing.T) {
	db := openTest(t, t.TempDir())
	run := 0
	rapid.Check(t, func(t *rapid.T) {
		run++
		sku := fmt.Sprint("P-", run)
		n := rapid.IntRange(1, 20).Draw(t, "events")
		deltas := rapid.SliceOfN(rapid.Int64Range(-50, 50).Filter(func(d int64) bool { return d != 0 }), n, n).Draw(t, "deltas")
		deliveries := rapid.SliceOfN(rapid.IntRange(0, n-1), n, 3*n).Draw(t, "deliveries")
		var want int64
		for _, d := range deltas {
			want += d
		}
		var batch []Event
		send := func() {
			_, err := db.Apply(context.Background(), &Batch{Events: batch})
			require.NoError(t, err)
			batch = nil
		}
		for i := range n { // every event arrives at least once…
			batch = append(batch, ev("d1", fmt.Sprint(sku, "/", i), "adjust", sku, deltas[i]))
			if rapid.Bool().Draw(t, "flush") {
				send()
			}
		}
		for _, i := range deliveries { // …and some again
			batch = append(batch, ev("d1", fmt.Sprint(sku, "/", i), "adjust", sku, deltas[i]))
		}
		send()
		require.Equal(t, want, onHand(t, db, sku))
	})
}

// A void reverses the lines {ticket}/{n} of its ticket only: not those of
// another ticket whose id starts the same, and its own id counts once.
func TestDB_VoidLinesOnly(t *testing.T) {
	db := openTest(t, t.TempDir())
	line := func(id string, delta int64) Event { return ev("pos1", id, "sale", "V", delta) }
	void := func(id, ticket string) Event {
		e := ev("pos1", id, "void", "", 0)
		e.Reverses, e.BodyHash = ticket, []byte("void "+ticket)
		return e
	}
	out, err := db.Apply(t.Context(), &Batch{Events: []Event{ev("pos1", "r", "receive", "V", 100), line("T-1/1", -2), line("T-1/2/1", -5)}})
	require.NoError(t, err)
	require.Equal(t, Applied, out[2].Status)
	out, err = db.Apply(t.Context(), &Batch{Events: []Event{void("V-9", "T-1"), void("V-9", "T-1"), void("V-9", "T-1/2")}})
	require.NoError(t, err)
	require.Equal(t, []Status{Applied, Duplicate, IDReused}, []Status{out[0].Status, out[1].Status, out[2].Status})
	require.Equal(t, int64(95), onHand(t, db, "V"), "only T-1/1 is reversed")
	out, err = db.Apply(t.Context(), &Batch{Events: []Event{void("V-10", "T-1"), void("V-11", "T-0")}})
	require.NoError(t, err)
	require.Equal(t, []Status{Duplicate, UnknownTicket}, []Status{out[0].Status, out[1].Status}, "voided before; never sent")
	require.Equal(t, int64(95), onHand(t, db, "V"))
}

// Batches mixing new events, redeliveries and reused ids, large enough to
// span several insert chunks: every outcome is what a model of the log
// says, each applied event's seq is its row in the log, and applied seqs
// run without gaps (the chunk insert infers them rather than reading them).
func TestDB_OutcomesAndSeqsProperty(t *testing.T) {
	db := openTest(t, t.TempDir())
	type logged struct {
		seq  int64
		hash string
	}
	model := map[string]logged{} // by id (one device)
	var lastSeq int64
	run := 0
	rapid.Check(t, func(t *rapid.T) {
		run++
		ids := rapid.IntRange(1, 60).Draw(t, "ids") // few ids: many repeats
		n := rapid.IntRange(1, 3*insertChunk).Draw(t, "batch")
		batch := make([]Event, n)
		for i := range batch {
			id := fmt.Sprintf("r%d-%d", run%3, rapid.IntRange(0, ids-1).Draw(t, "id"))
			delta := rapid.SampledFrom([]int64{1, 2}).Draw(t, "delta") // 2 reuses an id with another body
			batch[i] = ev("d1", id, "adjust", "PROP", delta)
		}
		out, err := db.Apply(context.Background(), &Batch{Events: batch})
		require.NoError(t, err)
		for i, e := range batch {
			prev, seen := model[e.ID]
			switch {
			case !seen:
				require.Equal(t, Applied, out[i].Status, "event %d (%s) is new", i, e.ID)
				require.Equal(t, lastSeq+1, out[i].Seq, "applied seqs run without gaps")
				lastSeq = out[i].Seq
				model[e.ID] = logged{out[i].Seq, string(e.BodyHash)}
			case prev.hash == string(e.BodyHash):
				require.Equal(t, Duplicate, out[i].Status, "event %d (%s) is a redelivery", i, e.ID)
				require.Equal(t, prev.seq, out[i].Seq)
			default:
				require.Equal(t, IDReused, out[i].Status, "event %d (%s) reuses an id", i, e.ID)
				require.Equal(t, prev.seq, out[i].Seq)
			}
		}
	})
	// The log holds each model entry at its seq.
	evs, err := db.Events(context.Background(), 0, len(model)+1)
	require.NoError(t, err)
	require.Len(t, evs, len(model))
	for _, e := range evs {
		require.Equal(t, model[e.ID].seq, e.Seq, "event %s", e.ID)
	}
}

// openDelayed opens a store in dir with a commit delay and returns it with
// a reader of the item counts of its transactions so far.
func openDelayed(t *testing.T, dir string, delay time.Duration) (*DB, func() []int) {
	var mu sync.Mutex
	var txItems []int
	db, err := Open(t.Context(), dir, Options{Warehouse: "wh1", CommitDelay: delay,
		Observe: func(items int, _ time.Duration, _ error) {
			mu.Lock()
			defer mu.Unlock()
			txItems = append(txItems, items)
		}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db, func() []int {
		mu.Lock()
		defer mu.Unlock()
		return append([]int(nil), txItems...)
	}
}

// receives are n receives of one unit of SKU-1, ids prefix0, prefix1, ….
func receives(prefix string, n int) []Event {
	out := make([]Event, n)
	for i := range out {
		out[i] = ev("d1", fmt.Sprint(prefix, i), "receive", "SKU-1", 1)
	}
	return out
}

// With a commit delay, a busy queue waits for more work (here until the
// transaction is full), and a light one does not wait at all.
func TestDB_CommitDelay(t *testing.T) {
	db, observed := openDelayed(t, t.TempDir(), time.Hour)

	// Light load: one event commits at once (an hour's wait would hang).
	_, err := db.Apply(t.Context(), &Batch{Events: receives("light-", 1)})
	require.NoError(t, err)
	require.Equal(t, []int{1}, observed())

	// Busy: commitSiblings events wait; more arriving meanwhile join the
	// same transaction, which commits once full.
	firstDone := make(chan error, 1)
	db.Submit(&Batch{Events: receives("a-", commitSiblings)}, func(_ []Outcome, err error) { firstDone <- err })
	time.Sleep(100 * time.Millisecond) // the loop takes the batch and waits
	select {
	case err := <-firstDone:
		t.Fatalf("a busy batch committed without waiting for more work (err %v)", err)
	default:
	}
	_, err = db.Apply(t.Context(), &Batch{Events: receives("b-", maxTxEvents-commitSiblings)})
	require.NoError(t, err)
	require.NoError(t, <-firstDone)
	require.Equal(t, []int{1, maxTxEvents}, observed(), "one transaction carried both batches")
	require.Equal(t, int64(1+maxTxEvents), onHand(t, db, "SKU-1"))
}

// Close ends a commit delay: what waited is committed, not dropped.
func TestDB_CommitDelayClose(t *testing.T) {
	dir := t.TempDir()
	db, _ := openDelayed(t, dir, time.Hour)
	done := make(chan error, 1)
	db.Submit(&Batch{Events: receives("w", commitSiblings)}, func(_ []Outcome, err error) { done <- err })
	time.Sleep(50 * time.Millisecond) // the loop waits for more work
	require.NoError(t, db.Close())
	require.NoError(t, <-done)
	require.Equal(t, int64(commitSiblings), onHand(t, openTest(t, dir), "SKU-1"))
}

// SPEC §7: WAL mode with synchronous=FULL on the connection that commits.
// (The crash tests kill the process, which NORMAL would also survive; only
// a power loss tells them apart, so the setting itself is checked.)
func TestDB_DurabilityPragmas(t *testing.T) {
	db := openTest(t, t.TempDir())
	var mode string
	var sync int
	require.NoError(t, db.writer.QueryRow(`PRAGMA journal_mode`).Scan(&mode))
	require.NoError(t, db.writer.QueryRow(`PRAGMA synchronous`).Scan(&sync))
	require.Equal(t, "wal", mode)
	require.Equal(t, 2, sync, "synchronous=FULL")
}

// A busy queue waits at most the commit delay: then it commits what it
// has, full or not.
func TestDB_CommitDelayBounded(t *testing.T) {
	db, observed := openDelayed(t, t.TempDir(), 30*time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // an unbounded wait would run into this
	defer cancel()
	_, err := db.Apply(ctx, &Batch{Events: receives("b", commitSiblings)})
	require.NoError(t, err)
	require.Equal(t, []int{commitSiblings}, observed(), "committed after the delay, not when full")
}

// The event insert is OR IGNORE, which would also skip a row breaking a NOT
// NULL constraint: such an event must fail its batch, not vanish while its
// neighbours are acknowledged.
func TestDB_NullColumnFailsBatch(t *testing.T) {
	db := openTest(t, t.TempDir())
	ctx := t.Context()
	bad := ev("d1", "e2", "receive", "SKU-1", 4)
	bad.BodyHash = nil // binds NULL
	_, err := db.Apply(ctx, &Batch{Events: []Event{ev("d1", "e1", "receive", "SKU-1", 5), bad}})
	require.ErrorContains(t, err, "neither inserted nor found")
	require.Equal(t, int64(0), onHand(t, db, "SKU-1"), "nothing of the failed batch applied")

	// A count goes in alone (insertOne): the same holds there.
	count := ev("d1", "c1", "count", "SKU-1", 0)
	count.Qty, count.Absolute, count.BodyHash = 7, true, nil
	_, err = db.Apply(ctx, &Batch{Events: []Event{count}})
	require.ErrorContains(t, err, "neither inserted nor found")
	require.Equal(t, int64(0), onHand(t, db, "SKU-1"), "the count applied nothing")

	out, err := db.Apply(ctx, &Batch{Events: []Event{ev("d1", "e1", "receive", "SKU-1", 5)}})
	require.NoError(t, err)
	require.Equal(t, Applied, out[0].Status, "the store still commits")
}

// The reads by SKU run for every GET /v1/stock/{sku}, stock list page and
// live-topic flush: they must search an index, never scan every counter of
// a large catalog (BenchmarkDB_StockView/catalog=20000) or every active
// hold, in both their forms (one SKU, a list).
func TestDB_SKUReadsUseIndex(t *testing.T) {
	db := openTest(t, t.TempDir())
	type read struct {
		name, sql, table, index string
		args                    []any
	}
	reads := []read{
		{"SKUPage", sqlSKUPage, "counters", "INDEX counters_sku", []any{"SKU-1", "SKU-", 10}},
		{"StockPage", sqlStockPage, "counters", "PRIMARY KEY", []any{"wh1", "SKU-1", "SKU-", 10}},
		{"LowPage", sqlLowPage, "low_skus", "PRIMARY KEY", []any{"wh1", "SKU-1", "SKU-", 10}},
	}
	for _, skus := range [][]string{{"SKU-1"}, {"SKU-1", "SKU-2", "SKU-3"}} {
		name := fmt.Sprintf(" of %d", len(skus))
		query, arg := sqlSKUsStock.of(skus)
		reads = append(reads, read{"SKUsStock" + name, query, "counters", "INDEX counters_sku", []any{arg}})
		query, arg = sqlReservedOf.of(skus)
		reads = append(reads, read{"ReservedOf" + name, query, "holds", "INDEX holds_sku", []any{"wh1", arg, 0}})
		query, arg = sqlLowOf.of(skus)
		reads = append(reads, read{"LowOf" + name, query, "low_skus", "PRIMARY KEY", []any{"wh1", arg}})
	}
	for _, q := range reads {
		rows, err := db.reader.Query("EXPLAIN QUERY PLAN "+q.sql, q.args...)
		require.NoError(t, err)
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
			plan = append(plan, detail)
		}
		require.NoError(t, rows.Err())
		rows.Close()
		require.NotEmpty(t, plan)
		for _, step := range plan {
			require.NotRegexp(t, `^SCAN `+q.table+`\b`, step, "%s scans the %s table: %q", q.name, q.table, plan)
		}
		require.Regexp(t, `SEARCH `+q.table+` USING (COVERING )?`+q.index, strings.Join(plan, "\n"), "%s: %q", q.name, plan)
	}
}

// A database of an older release (here: schema 4, before the counters_sku
// index, the escrow, promises, safety and demand tables and the tokens'
// warehouse) is brought up to date when opened, its data kept.
func TestDB_MigratesOlderDatabase(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(t.Context(), dir, Options{Warehouse: "wh1"})
	require.NoError(t, err)
	_, err = db.Apply(t.Context(), &Batch{Events: []Event{ev("d1", "e1", "receive", "SKU-1", 5)}})
	require.NoError(t, err)
	_, err = db.writer.Exec(`DROP TABLE escrow; DROP TABLE promises; DROP TABLE safety; DROP TABLE lines; DROP TABLE hub_holds; DROP INDEX holds_version; ALTER TABLE holds DROP COLUMN version; DROP INDEX counters_sku; DROP TABLE demand; ALTER TABLE alerts DROP COLUMN cover; ALTER TABLE alerts DROP COLUMN lead; ALTER TABLE tokens DROP COLUMN warehouse; PRAGMA user_version = 4`)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	db = openTest(t, dir)
	var version int
	require.NoError(t, db.writer.QueryRow(`PRAGMA user_version`).Scan(&version))
	require.Equal(t, len(migrations), version)
	var indexes int
	require.NoError(t, db.writer.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = 'counters_sku'`).Scan(&indexes))
	require.Equal(t, 1, indexes)
	var tables int
	require.NoError(t, db.writer.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('escrow', 'promises', 'safety', 'lines')`).Scan(&tables))
	require.Equal(t, 4, tables, "migrations 6 and 7: the escrow, promises, safety and lines tables")
	_, err = db.DemandOf(t.Context(), "wh1", []string{"SKU-1"})
	require.NoError(t, err, "migration 8: the demand table")
	require.Equal(t, int64(5), onHand(t, db, "SKU-1"))
}

// TestDB_InsertKeepsEveryColumn: every column of every event reaches the
// log as given, whether its chunk's events agree in the columns bound once
// per statement (sqlInsertShared) or not (sqlInsertEvents).
func TestDB_InsertKeepsEveryColumn(t *testing.T) {
	db := openTest(t, t.TempDir())
	n := 0
	rapid.Check(t, func(t *rapid.T) {
		shared := func(t *rapid.T, e *Event) {
			e.Type = rapid.SampledFrom([]string{"receive", "sale"}).Draw(t, "type")
			e.Location = rapid.SampledFrom([]string{"A1", "B2"}).Draw(t, "location")
			e.ToLocation = rapid.SampledFrom([]string{"", "C3"}).Draw(t, "to_location")
			e.Channel = rapid.SampledFrom([]string{"", "web"}).Draw(t, "channel")
			e.Source = rapid.SampledFrom([]string{"mqtt", "http"}).Draw(t, "source")
		}
		common := Event{Warehouse: "wh1"}
		shared(t, &common)
		// Unless alike, some events differ from common in one shared
		// column (differ), or in any (6).
		alike := rapid.Bool().Draw(t, "alike")
		differ := rapid.IntRange(0, 6).Draw(t, "differ")
		batch := make([]Event, rapid.IntRange(1, 3*insertChunk).Draw(t, "events"))
		for i := range batch {
			n++
			e := common
			if !alike && rapid.Bool().Draw(t, "differs") {
				switch differ {
				case 0:
					e.Type += "-x"
				case 1:
					e.Warehouse = "wh2"
				case 2:
					e.Location += "-x"
				case 3:
					e.ToLocation += "-x"
				case 4:
					e.Channel += "-x"
				case 5:
					e.Source += "-x"
				case 6:
					shared(t, &e)
				}
			}
			e.Device = rapid.SampledFrom([]string{"d1", "d2"}).Draw(t, "device")
			e.ID = fmt.Sprint("col-", n)
			e.BodyHash = rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(t, "hash")
			e.SKU = rapid.SampledFrom([]string{"S1", "S2"}).Draw(t, "sku")
			e.Qty = rapid.Int64Range(1, 9).Draw(t, "qty")
			e.Delta = e.Qty
			e.DeviceTS = rapid.SampledFrom([]string{"", "2026-11-27T10:00:00Z"}).Draw(t, "device_ts")
			e.DeviceSeq = int64(n)
			e.ReceivedAt = time.UnixMilli(rapid.Int64Range(1e12, 2e12).Draw(t, "received_at")).UTC()
			batch[i] = e
		}
		out, err := db.Apply(context.Background(), &Batch{Events: batch})
		require.NoError(t, err)
		for i, e := range batch {
			require.Equal(t, Applied, out[i].Status, "event %d", i)
			var got Event
			var received int64
			require.NoError(t, db.reader.QueryRow(`SELECT device, event_id, body_hash, type, warehouse, location, sku, to_location,
				qty, delta, channel, device_ts, device_seq, source, received_at FROM events WHERE seq = ?`, out[i].Seq).Scan(
				&got.Device, &got.ID, &got.BodyHash, &got.Type, &got.Warehouse, &got.Location, &got.SKU, &got.ToLocation,
				&got.Qty, &got.Delta, &got.Channel, &got.DeviceTS, &got.DeviceSeq, &got.Source, &received))
			got.ReceivedAt = time.UnixMilli(received).UTC()
			require.Equal(t, e, got, "event %d of %d (alike: %t)", i, len(batch), alike)
		}
	})
}

// ReservedOf sums, for each SKU asked about, the active holds that have
// not expired by now, swept or not; one SKU and several read alike.
func TestDB_ReservedOf(t *testing.T) {
	db := openTest(t, t.TempDir())
	ctx := t.Context()
	_, err := db.Apply(ctx, &Batch{Events: []Event{ev("d1", "a", "receive", "A", 10), ev("d1", "b", "receive", "B", 10)}})
	require.NoError(t, err)
	t0 := time.Now()
	hold := func(id, sku string, qty int64, ttl time.Duration) *HoldOp {
		return &HoldOp{Kind: HoldCreate, BodyHash: []byte(id), Now: t0,
			Hold: Hold{ID: id, Warehouse: "wh1", Location: "default", SKU: sku, Qty: qty, Holder: "cart", ExpiresAt: t0.Add(ttl)}}
	}
	ops := []*HoldOp{hold("h1", "A", 2, time.Hour), hold("h2", "A", 1, time.Second), hold("h3", "B", 3, time.Hour)}
	_, err = db.Apply(ctx, &Batch{Holds: ops})
	require.NoError(t, err)
	for _, op := range ops {
		require.Equal(t, HoldOK, op.Result.Status, op.Hold.ID)
	}
	later := t0.Add(2 * time.Second) // h2 expired, not swept
	for _, c := range []struct {
		now  time.Time
		skus []string
		want map[string]int64
	}{
		{t0, []string{"A", "B"}, map[string]int64{"A": 3, "B": 3}},
		{t0, []string{"A"}, map[string]int64{"A": 3}},
		{later, []string{"A", "B", "C"}, map[string]int64{"A": 2, "B": 3}},
		{later, []string{"A"}, map[string]int64{"A": 2}},
		{t0, []string{"C"}, map[string]int64{}},
		{t0, nil, map[string]int64{}},
	} {
		got, err := db.ReservedOf(ctx, c.skus, c.now)
		require.NoError(t, err)
		require.Equal(t, c.want, got, "%v at +%s", c.skus, c.now.Sub(t0))
	}
}

// A commit touching more keys than one counter upsert carries (and some
// twice, and some to zero) adds every delta once: the rows are created the
// first time and added to the second.
func TestDB_CountersInChunks(t *testing.T) {
	db := openTest(t, t.TempDir())
	const skus = 2*counterChunk + 5
	for round := int64(1); round <= 2; round++ {
		var evs []Event
		for i := range skus {
			evs = append(evs, ev("d1", fmt.Sprint(round, "-", i), "receive", fmt.Sprint("K-", i), int64(i+1)))
			if i%3 == 0 { // a second event on the key, in the same commit
				evs = append(evs, ev("d1", fmt.Sprint(round, "-", i, "b"), "adjust", fmt.Sprint("K-", i), -1))
			}
		}
		_, err := db.Apply(t.Context(), &Batch{Events: evs})
		require.NoError(t, err)
		for i := range skus {
			want := round * int64(i+1)
			if i%3 == 0 {
				want -= round
			}
			require.Equal(t, want, onHand(t, db, fmt.Sprint("K-", i)), "K-%d after round %d", i, round)
		}
	}
}
