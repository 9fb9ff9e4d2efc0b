package sync

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A stream's cursor round-trips; one of another replica, or a bad seq, is
// not this stream's; a plain version cursor reads with no seq.
func TestStreamCursor(t *testing.T) {
	c := FormatStreamCursor("wh1.a", 7, 3)
	v, seq, hasSeq, ok := ParseStreamCursor(c, "wh1.a")
	require.True(t, ok && hasSeq)
	require.Equal(t, [2]int64{7, 3}, [2]int64{v, seq})
	_, _, _, ok = ParseStreamCursor(c, "wh1.b")
	require.False(t, ok, "another database's")
	_, _, _, ok = ParseStreamCursor("wh1.a@7~x", "wh1.a")
	require.False(t, ok)
	v, seq, hasSeq, ok = ParseStreamCursor(FormatCursor("wh1.a", 9), "wh1.a")
	require.True(t, ok)
	require.False(t, hasSeq)
	require.Equal(t, [2]int64{9, 0}, [2]int64{v, seq})
	_, _, _, ok = ParseStreamCursor("", "wh1.a")
	require.True(t, ok, "the start")
}
