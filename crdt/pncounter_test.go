package crdt

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// op is one own operation of a replica.
type op struct {
	replica string
	delta   int64
}

var replicaGen = rapid.SampledFrom([]string{"wh1.a", "wh1.b", "wh2.a", "hub.x"})

func opsGen() *rapid.Generator[[]op] {
	return rapid.SliceOfN(rapid.Custom(func(t *rapid.T) op {
		return op{replica: replicaGen.Draw(t, "replica"), delta: rapid.Int64Range(-1_000_000, 1_000_000).Draw(t, "delta")}
	}), 0, 40)
}

// counterGen builds a counter by applying a random sequence of operations.
func counterGen() *rapid.Generator[PNCounter] {
	return rapid.Custom(func(t *rapid.T) PNCounter {
		var c PNCounter
		for _, o := range opsGen().Draw(t, "ops") {
			c.Apply(o.replica, o.delta)
		}
		return c
	})
}

func merged(a, b PNCounter) PNCounter {
	out := a.Clone()
	out.Merge(b)
	return out
}

func TestPNCounter_MergeCommutative(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := counterGen().Draw(t, "a"), counterGen().Draw(t, "b")
		require.True(t, merged(a, b).Equal(merged(b, a)))
	})
}

func TestPNCounter_MergeAssociative(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := counterGen().Draw(t, "a"), counterGen().Draw(t, "b"), counterGen().Draw(t, "c")
		require.True(t, merged(merged(a, b), c).Equal(merged(a, merged(b, c))))
	})
}

func TestPNCounter_MergeIdempotent(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := counterGen().Draw(t, "a")
		m := merged(a, a)
		require.True(t, m.Equal(a))
		require.False(t, m.Merge(a), "merging a state already held must report no change")
	})
}

// Replicas apply operations locally and ship snapshots of their state to a
// receiver in any order, any number of times. Once every replica's final state
// arrived, the receiver's value is the sum of all operations.
func TestPNCounter_ValueIndependentOfDelivery(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ops := opsGen().Draw(t, "ops")
		local := map[string]*PNCounter{}
		var snapshots []PNCounter
		var want int64
		for _, o := range ops {
			c, ok := local[o.replica]
			if !ok {
				c = &PNCounter{}
				local[o.replica] = c
			}
			c.Apply(o.replica, o.delta)
			want += o.delta
			snapshots = append(snapshots, c.Clone())
		}
		for _, c := range local {
			snapshots = append(snapshots, c.Clone()) // the final state always arrives
		}
		// Deliver a random permutation with random duplicates.
		order := rapid.Permutation(snapshots).Draw(t, "order")
		dups := rapid.SliceOfN(rapid.IntRange(0, max(len(order)-1, 0)), 0, 10).Draw(t, "dups")
		var receiver PNCounter
		for _, s := range order {
			receiver.Merge(s)
		}
		for _, i := range dups {
			if len(order) > 0 {
				receiver.Merge(order[i])
			}
		}
		require.Equal(t, want, receiver.Value())
	})
}

func TestPNCounter_DeltaSinceCatchesUp(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := counterGen().Draw(t, "a"), counterGen().Draw(t, "b")
		peer := b.Clone()
		for _, re := range a.DeltaSince(b) {
			peer.MergeEntry(re.Replica, re.Entry)
		}
		require.True(t, peer.Equal(merged(b, a)))
		require.Empty(t, a.DeltaSince(merged(a, b)), "a peer that holds a needs nothing from it")
	})
}

func TestPNCounter_BinaryRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := counterGen().Draw(t, "a")
		b, err := a.MarshalBinary()
		require.NoError(t, err)
		var got PNCounter
		require.NoError(t, got.UnmarshalBinary(b))
		require.True(t, got.Equal(a))
		again, err := got.MarshalBinary()
		require.NoError(t, err)
		require.Equal(t, b, again, "encoding must be canonical")
	})
}

func TestPNCounter_Apply(t *testing.T) {
	var c PNCounter
	c.Apply("r1", 5)
	c.Apply("r1", -2)
	c.Apply("r2", 7)
	c.Apply("r2", 0)
	require.Equal(t, int64(10), c.Value())
	require.Equal(t, Entry{P: 5, N: 2}, c.Entry("r1"))
	require.Equal(t, []string{"r1", "r2"}, c.Replicas())
}

func TestPNCounter_UnmarshalBinaryRejects(t *testing.T) {
	for name, in := range map[string][]byte{
		"empty":          {},
		"truncated":      {1, 2, 'a'},
		"zero length id": {1, 0, 1, 1},
		"trailing bytes": {0, 9},
		"duplicate":      {2, 1, 'a', 1, 1, 1, 'a', 2, 2},
		"huge count":     {0xff, 0xff, 0x03},
	} {
		t.Run(name, func(t *testing.T) {
			var c PNCounter
			require.ErrorIs(t, c.UnmarshalBinary(in), ErrBadEncoding)
		})
	}
}

func FuzzPNCounter_UnmarshalBinary(f *testing.F) {
	var c PNCounter
	c.Apply("wh1.a", 3)
	c.Apply("hub.x", -9)
	seed, _ := c.MarshalBinary()
	f.Add(seed)
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var c PNCounter
		if c.UnmarshalBinary(b) != nil {
			return
		}
		out, err := c.MarshalBinary()
		require.NoError(t, err)
		var again PNCounter
		require.NoError(t, again.UnmarshalBinary(out))
		require.True(t, again.Equal(c))
	})
}

func BenchmarkPNCounter_Merge(b *testing.B) {
	var x, y PNCounter
	for i := range 16 {
		x.Apply(fmt.Sprint("r", i), int64(i))
		y.Apply(fmt.Sprint("r", i), int64(-i))
	}
	for b.Loop() {
		c := x.Clone()
		c.Merge(y)
	}
}
