package crdt

import (
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// The escrow world of SPEC §9: the agent owns the warehouse's rights
// ("local"), the hub owns one holder per channel.
const (
	agentReplica = "wh1.a"
	hubReplica   = "hub.x"
)

var (
	channels = []string{"amazon", "ebay"}
	owner    = map[string]string{"local": agentReplica, "amazon": hubReplica, "ebay": hubReplica}
)

// escrowOp is one attempted operation of a holder's owner.
type escrowOp struct {
	kind     Kind
	from, to string
	n        uint64
}

func escrowOpGen() *rapid.Generator[escrowOp] {
	return rapid.Custom(func(t *rapid.T) escrowOp {
		n := rapid.Uint64Range(0, 20).Draw(t, "n")
		switch rapid.IntRange(0, 5).Draw(t, "op") {
		case 5: // the warehouse picks a channel's order line
			return escrowOp{kind: Pick, from: rapid.SampledFrom(channels).Draw(t, "ch"), n: n}
		case 0:
			return escrowOp{kind: Supply, from: "local", n: n}
		case 1: // allot
			return escrowOp{kind: Move, from: "local", to: rapid.SampledFrom(channels).Draw(t, "ch"), n: n}
		case 2: // release
			return escrowOp{kind: Move, from: rapid.SampledFrom(channels).Draw(t, "ch"), to: "local", n: n}
		case 3: // an order, or a local hold
			return escrowOp{kind: Spend, from: rapid.SampledFrom([]string{"local", "amazon", "ebay"}).Draw(t, "h"), n: n}
		default: // channel to channel
			return escrowOp{kind: Move, from: "amazon", to: "ebay", n: n}
		}
	})
}

// writer is the replica whose view op runs on: the holder's owner, or the
// warehouse for a pick.
func (o escrowOp) writer() string {
	if o.kind == Pick {
		return agentReplica
	}
	return owner[o.from]
}

// apply runs op on the owner's own view; a refused promise changes nothing.
func (o escrowOp) apply(e *Escrow) error {
	r := owner[o.from]
	if o.kind == Pick {
		r = agentReplica // the warehouse picks, whoever's order it was
	}
	switch o.kind {
	case Pick:
		_, err := e.MarkPicked(r, o.from, o.n)
		return err
	case Supply:
		e.AddSupply(r, o.from, o.n)
		return nil
	case Move:
		_, err := e.Move(r, o.from, o.to, o.n)
		return err
	default:
		_, err := e.Spend(r, o.from, o.n)
		return err
	}
}

// escrowGen builds a counter from a random history of one owner pair that
// syncs now and then.
func escrowGen() *rapid.Generator[Escrow] {
	return rapid.Custom(func(t *rapid.T) Escrow {
		views := map[string]*Escrow{agentReplica: {}, hubReplica: {}}
		for _, o := range rapid.SliceOfN(escrowOpGen(), 0, 30).Draw(t, "ops") {
			_ = o.apply(views[o.writer()])
			if rapid.Bool().Draw(t, "sync") {
				views[agentReplica].Merge(*views[hubReplica])
				views[hubReplica].Merge(*views[agentReplica])
			}
		}
		out := views[agentReplica].Clone()
		out.Merge(*views[hubReplica])
		return out
	})
}

func mergedEscrow(a, b Escrow) Escrow {
	out := a.Clone()
	out.Merge(b)
	return out
}

func TestEscrow_MergeLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := escrowGen().Draw(t, "a"), escrowGen().Draw(t, "b"), escrowGen().Draw(t, "c")
		require.True(t, mergedEscrow(a, b).Equal(mergedEscrow(b, a)), "commutative")
		require.True(t, mergedEscrow(mergedEscrow(a, b), c).Equal(mergedEscrow(a, mergedEscrow(b, c))), "associative")
		m := mergedEscrow(a, a)
		require.True(t, m.Equal(a), "idempotent")
		require.False(t, m.Merge(a), "merging a state already held reports no change")
	})
}

// The guarantee: each owner promises from its own view, however stale, and
// views travel as snapshots dropped, duplicated and reordered at random.
// No holder's rights are ever negative in any view or in everything merged,
// and what was spent never exceeds what was supplied. Once every final
// state arrived, the merged rights equal the model of the operations that
// succeeded.
func TestEscrow_NeverPromisedTwice(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		views := map[string]*Escrow{agentReplica: {}, hubReplica: {}}
		var snapshots []Escrow
		model := map[string]int64{}
		picked := map[string]uint64{}
		var supplied, spent uint64
		for _, o := range rapid.SliceOfN(escrowOpGen(), 0, 60).Draw(t, "ops") {
			view := views[o.writer()]
			if o.apply(view) == nil {
				switch o.kind {
				case Supply:
					model[o.from] += int64(o.n)
					supplied += o.n
				case Move:
					model[o.from] -= int64(o.n)
					model[o.to] += int64(o.n)
				case Spend:
					model[o.from] -= int64(o.n)
					spent += o.n
				case Pick:
					picked[o.from] += o.n
				}
			}
			snapshots = append(snapshots, view.Clone())
			// Deliver a random earlier snapshot, maybe stale, maybe again.
			if len(snapshots) > 0 && rapid.Bool().Draw(t, "deliver") {
				s := snapshots[rapid.IntRange(0, len(snapshots)-1).Draw(t, "which")]
				views[rapid.SampledFrom([]string{agentReplica, hubReplica}).Draw(t, "to")].Merge(s)
			}
			for _, v := range views {
				for _, h := range []string{"local", "amazon", "ebay"} {
					require.GreaterOrEqual(t, v.Rights(h), int64(0), "%s in a view", h)
				}
			}
			for _, ch := range channels { // picks only what the warehouse's view shows committed
				require.GreaterOrEqual(t, views[agentReplica].Committed(ch), int64(0), "%s committed at the warehouse", ch)
			}
			all := views[agentReplica].Clone()
			all.Merge(*views[hubReplica])
			for _, h := range []string{"local", "amazon", "ebay"} {
				require.GreaterOrEqual(t, all.Rights(h), int64(0), "%s merged", h)
			}
		}
		require.LessOrEqual(t, spent, supplied)
		final := []Escrow{views[agentReplica].Clone(), views[hubReplica].Clone()}
		order := rapid.Permutation(append(snapshots, final...)).Draw(t, "order")
		var receiver Escrow
		for _, s := range order {
			receiver.Merge(s)
		}
		for _, h := range []string{"local", "amazon", "ebay"} {
			require.Equal(t, model[h], receiver.Rights(h), h)
			require.Equal(t, picked[h], receiver.Picked(h), h)
			require.GreaterOrEqual(t, receiver.Committed(h), int64(0), "never picked more than ordered: %s", h)
		}
	})
}

func TestEscrow_Refusals(t *testing.T) {
	var e Escrow
	e.AddSupply(agentReplica, "local", 10)
	_, err := e.Move(agentReplica, "local", "amazon", 11)
	require.ErrorIs(t, err, ErrInsufficientRights)
	_, err = e.Move(agentReplica, "local", "local", 1)
	require.Error(t, err)
	_, err = e.Move(agentReplica, "local", "amazon", 4)
	require.NoError(t, err)
	_, err = e.Spend(hubReplica, "amazon", 5)
	require.ErrorIs(t, err, ErrInsufficientRights)
	x, err := e.Spend(hubReplica, "amazon", 4)
	require.NoError(t, err)
	require.Equal(t, EscrowEntry{EscrowKey: EscrowKey{Replica: hubReplica, Kind: Spend, Holder: "amazon"}, Total: 4}, x)
	require.Equal(t, int64(6), e.Rights("local"))
	require.Equal(t, int64(0), e.Rights("amazon"))
	// A fact is never refused: the till sold 8 of the 6 unallotted.
	e.Consume(agentReplica, "local", 8)
	require.Equal(t, int64(-2), e.Rights("local"), "a shortfall")
	_, err = e.Spend(agentReplica, "local", 1)
	require.ErrorIs(t, err, ErrInsufficientRights)
	require.Equal(t, []string{"amazon", "local"}, e.Holders())
	require.Equal(t, uint64(8), e.Spent("local"))

	// The amazon order of 4 is committed until the warehouse picks it.
	require.Equal(t, int64(4), e.Committed("amazon"))
	_, err = e.MarkPicked(agentReplica, "amazon", 5)
	require.ErrorIs(t, err, ErrInsufficientRights, "a pick never delivers more than was promised")
	_, err = e.MarkPicked(agentReplica, "amazon", 3)
	require.NoError(t, err)
	require.Equal(t, int64(1), e.Committed("amazon"))
	require.Equal(t, uint64(3), e.Picked("amazon"))
	require.Equal(t, int64(0), e.Rights("amazon"), "picking moves no rights")
}

// The warehouse's own rights follow its stock, outside the counter: Allot
// moves them unchecked, and Promised is what the channels took of them.
func TestEscrow_AllotAndPromised(t *testing.T) {
	var e Escrow
	_, err := e.Allot(agentReplica, "local", "local", 1)
	require.Error(t, err)
	_, err = e.Allot(agentReplica, "local", "amazon", 5)
	require.NoError(t, err)
	_, err = e.Allot(agentReplica, "local", "ebay", 3)
	require.NoError(t, err)
	require.Equal(t, int64(8), e.Promised("local"))
	_, err = e.Spend(hubReplica, "amazon", 2) // an order: still promised, now committed
	require.NoError(t, err)
	require.Equal(t, int64(8), e.Promised("local"))
	_, err = e.Move(hubReplica, "ebay", "local", 1) // a release gives one back
	require.NoError(t, err)
	require.Equal(t, int64(7), e.Promised("local"))
	_, err = e.MarkPicked(agentReplica, "amazon", 2) // delivered: no longer promised
	require.NoError(t, err)
	require.Equal(t, int64(5), e.Promised("local"))
	require.Equal(t, int64(3), e.Rights("amazon"))

	// A delivery of a spend this view has not merged yet is recorded all
	// the same: Promised is right at once, Committed once the spend merges.
	x := e.Deliver(agentReplica, "ebay", 1)
	require.Equal(t, uint64(1), x.Total)
	require.Equal(t, int64(4), e.Promised("local"))
	require.Equal(t, int64(-1), e.Committed("ebay"))
	_, err = e.Spend(hubReplica, "ebay", 1)
	require.NoError(t, err)
	require.Equal(t, int64(0), e.Committed("ebay"))
}

// A total past MaxTotal is no owner's state: merged, it changes nothing,
// so one bad peer total cannot flip a holder's rights through the sums.
func TestEscrow_TotalsBounded(t *testing.T) {
	var e Escrow
	e.AddSupply(agentReplica, "local", 10)
	bad := EscrowEntry{EscrowKey: EscrowKey{Replica: hubReplica, Kind: Move, Holder: "amazon", To: "local"}, Total: 1<<64 - 1}
	require.False(t, e.MergeEntry(bad))
	require.Equal(t, int64(10), e.Rights("local"))
	require.Equal(t, int64(0), e.Rights("amazon"))
	var b Escrow
	b.totals = map[EscrowKey]uint64{bad.EscrowKey: MaxTotal + 1}
	enc, err := b.MarshalBinary()
	require.NoError(t, err)
	require.ErrorIs(t, (&Escrow{}).UnmarshalBinary(enc), ErrBadEscrowEncoding)
}

func TestEscrow_BinaryRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := escrowGen().Draw(t, "a")
		b, err := a.MarshalBinary()
		require.NoError(t, err)
		var got Escrow
		require.NoError(t, got.UnmarshalBinary(b))
		require.True(t, got.Equal(a))
		again, err := got.MarshalBinary()
		require.NoError(t, err)
		require.Equal(t, b, again, "encoding must be canonical")
	})
}

func TestEscrow_UnmarshalBinaryRejects(t *testing.T) {
	var e Escrow
	e.AddSupply(agentReplica, "local", 3)
	_, err := e.Move(agentReplica, "local", "amazon", 1)
	require.NoError(t, err)
	good, err := e.MarshalBinary()
	require.NoError(t, err)
	for name, b := range map[string][]byte{
		"empty":            {},
		"truncated":        good[:len(good)-1],
		"trailing":         append(append([]byte{}, good...), 0),
		"count too big":    {0xff, 0x01},
		"bad kind":         {1, 1, 'r', 'q', 1, 'h', 0, 1},
		"move with no to":  {1, 1, 'r', 'm', 1, 'h', 0, 1},
		"supply with a to": {1, 1, 'r', 's', 1, 'h', 1, 't', 1},
	} {
		require.ErrorIs(t, (&Escrow{}).UnmarshalBinary(b), ErrBadEscrowEncoding, name)
	}
	// Two entries out of order are not canonical.
	var two Escrow
	two.AddSupply("a", "local", 1)
	two.AddSupply("b", "local", 1)
	b, err := two.MarshalBinary()
	require.NoError(t, err)
	half := (len(b) - 1) / 2 // two entries of the same length
	first, second := b[1:1+half], b[1+half:]
	swapped := append(append([]byte{2}, second...), first...)
	require.NoError(t, (&Escrow{}).UnmarshalBinary(append(append([]byte{2}, first...), second...)), "the halves are the entries")
	require.ErrorIs(t, (&Escrow{}).UnmarshalBinary(swapped), ErrBadEscrowEncoding, "out of order")
}

func FuzzEscrow_UnmarshalBinary(f *testing.F) {
	var e Escrow
	e.AddSupply(agentReplica, "local", 10)
	_, _ = e.Move(agentReplica, "local", "amazon", 4)
	_, _ = e.Spend(hubReplica, "amazon", 2)
	seed, _ := e.MarshalBinary()
	f.Add(seed)
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var got Escrow
		if got.UnmarshalBinary(b) != nil {
			return
		}
		again, err := got.MarshalBinary()
		require.NoError(t, err)
		require.Equal(t, b, again, "whatever decodes re-encodes to the same bytes")
	})
}
