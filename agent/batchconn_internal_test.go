package agent

import (
	"errors"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// recordingConn records each Write as one call.
type recordingConn struct {
	net.Conn
	writes [][]byte
	fail   error
}

func (c *recordingConn) Write(p []byte) (int, error) {
	if c.fail != nil {
		return 0, c.fail
	}
	c.writes = append(c.writes, append([]byte(nil), p...))
	return len(p), nil
}

// What is written while the acker holds the connection leaves in one
// write, in order, when it releases it; other writes pass straight
// through; a failed batch write fails the next write.
func TestBatchConn(t *testing.T) {
	rec := &recordingConn{}
	c := &batchConn{Conn: rec}
	_, err := c.Write([]byte("connack"))
	require.NoError(t, err)
	c.hold()
	for _, ack := range []string{"a1", "a2", "pub", "a3"} {
		n, err := c.Write([]byte(ack))
		require.NoError(t, err)
		require.Equal(t, len(ack), n)
	}
	require.Len(t, rec.writes, 1, "nothing written while held")
	c.release()
	require.Equal(t, [][]byte{[]byte("connack"), []byte("a1a2puba3")}, rec.writes)
	_, err = c.Write([]byte("pingresp"))
	require.NoError(t, err)
	require.Len(t, rec.writes, 3)

	rec.fail = errors.New("broken pipe")
	c.hold()
	_, err = c.Write([]byte("a4"))
	require.NoError(t, err, "gathered")
	c.release()
	rec.fail = nil
	_, err = c.Write([]byte("a5"))
	require.ErrorContains(t, err, "broken pipe", "the batch's failure is reported")

	var none *batchConn // a connection not ours: nothing to hold
	none.hold()
	none.release()
}
