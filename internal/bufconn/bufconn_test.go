package bufconn

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pair is a loopback TCP connection: the wrapped client end and the raw
// server end.
func pair(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	srv, ok := <-accepted
	require.True(t, ok, "accept failed")
	c := New(raw)
	t.Cleanup(func() { c.Close(); srv.Close() })
	return c, srv
}

// Packets written concurrently, each in several Write calls inside
// Lock/Unlock (as paho's ControlPacket.WriteTo does), arrive whole and, per
// writer, in order.
func TestConn_ConcurrentPacketsStayWhole(t *testing.T) {
	c, srv := pair(t)
	const writers, packets = 8, 2000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range packets {
				body := bytes.Repeat([]byte{byte(w)}, 1+i%50)
				var hdr [12]byte
				binary.BigEndian.PutUint32(hdr[0:], uint32(len(body)))
				binary.BigEndian.PutUint32(hdr[4:], uint32(w))
				binary.BigEndian.PutUint32(hdr[8:], uint32(i))
				c.Lock()
				_, err1 := c.Write(hdr[:])
				_, err2 := c.Write(body)
				c.Unlock()
				if err := errors.Join(err1, err2); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	next := make([]int, writers)
	for range writers * packets {
		var hdr [12]byte
		_, err := io.ReadFull(srv, hdr[:])
		require.NoError(t, err)
		n, w, i := binary.BigEndian.Uint32(hdr[0:]), int(binary.BigEndian.Uint32(hdr[4:])), int(binary.BigEndian.Uint32(hdr[8:]))
		require.Less(t, w, writers, "a header was torn")
		require.Equal(t, next[w], i, "writer %d's packets out of order", w)
		next[w]++
		body := make([]byte, n)
		_, err = io.ReadFull(srv, body)
		require.NoError(t, err)
		require.Equal(t, bytes.Repeat([]byte{byte(w)}, 1+i%50), body, "packet %d of writer %d interleaved", i, w)
	}
	wg.Wait()
}

// Writes outside Lock/Unlock are sent too, and reads return what the peer
// sent, in order, through the buffer.
func TestConn_UnlockedWritesAndBufferedReads(t *testing.T) {
	c, srv := pair(t)
	_, err := c.Write([]byte("ping"))
	require.NoError(t, err)
	got := make([]byte, 4)
	_, err = io.ReadFull(srv, got)
	require.NoError(t, err)
	require.Equal(t, "ping", string(got))

	var sent bytes.Buffer
	for i := range 5000 {
		sent.WriteString(string(rune('a' + i%26)))
	}
	go srv.Write(sent.Bytes())
	recv := make([]byte, sent.Len())
	for off := 0; off < len(recv); { // small reads, as paho's packet reader does
		n, err := c.Read(recv[off:min(off+3, len(recv))])
		require.NoError(t, err)
		off += n
	}
	require.Equal(t, sent.Bytes(), recv)
}

// Close sends everything queued before it closes: paho writes DISCONNECT
// and closes right after.
func TestConn_CloseFlushes(t *testing.T) {
	c, srv := pair(t)
	want := bytes.Repeat([]byte("0123456789"), 100000) // 1 MB, more than maxPending
	go func() {
		for off := 0; off < len(want); off += 1000 {
			c.Lock()
			_, _ = c.Write(want[off : off+1000])
			c.Unlock()
		}
		c.Close()
	}()
	got, err := io.ReadAll(srv)
	require.NoError(t, err)
	require.Equal(t, len(want), len(got))
	require.True(t, bytes.Equal(want, got))
	_, err = c.Write([]byte("late"))
	require.ErrorIs(t, err, net.ErrClosed)
}

// A peer that stops reading fills the buffers; Write then waits (back-
// pressure), and Close gives up after closeFlushTimeout instead of hanging.
func TestConn_StalledPeer(t *testing.T) {
	c, srv := pair(t)
	defer srv.Close()
	old := closeFlushTimeout
	closeFlushTimeout = 200 * time.Millisecond
	defer func() { closeFlushTimeout = old }()

	blocked := make(chan struct{})
	go func() {
		defer close(blocked)
		chunk := make([]byte, 64<<10)
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	select {
	case <-blocked:
		t.Fatal("writes to a peer that never reads never blocked")
	case <-time.After(300 * time.Millisecond):
	}
	c.mu.Lock()
	pending := len(c.pending)
	c.mu.Unlock()
	require.LessOrEqual(t, pending, maxPending+64<<10, "pending grew past its bound")

	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung on a stalled peer")
	}
	select {
	case <-blocked: // the waiting writer was released with an error
	case <-time.After(5 * time.Second):
		t.Fatal("a Write waiting for room was not released by Close")
	}
}

// When the peer goes away, a later Write reports the error and Read fails:
// paho learns of a broken connection from its read loop.
func TestConn_WriteErrorReachesReaderAndWriters(t *testing.T) {
	c, srv := pair(t)
	require.NoError(t, srv.(*net.TCPConn).SetLinger(0)) // RST, so writes fail
	srv.Close()
	var werr error
	deadline := time.Now().Add(5 * time.Second)
	for werr == nil && time.Now().Before(deadline) {
		_, werr = c.Write(make([]byte, 1024))
		if werr == nil {
			time.Sleep(time.Millisecond)
		}
	}
	require.Error(t, werr, "writes kept succeeding after the peer reset the connection")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, rerr := c.Read(make([]byte, 1))
	require.Error(t, rerr)
	var ne net.Error
	require.False(t, errors.As(rerr, &ne) && ne.Timeout(), "read timed out instead of failing: %v", rerr)
}

// scriptedConn answers each Read with the next scripted step: the time it
// blocks (advancing the shared clock) and how many bytes it returns.
type scriptedConn struct {
	clock *time.Time
	steps []readStep
}

type readStep struct {
	wait time.Duration
	n    int
	err  error
}

func (c *scriptedConn) Read(p []byte) (int, error) {
	s := c.steps[0]
	c.steps = c.steps[1:]
	*c.clock = c.clock.Add(s.wait)
	return min(s.n, len(p)), s.err
}

// Reads pause only once readsBeforePause in a row came back small and
// found their data waiting, and only while the pauses gather a batch: a
// heavy stream of small packets is paced; a packet after a quiet spell, a
// slow stream, a full read and an error end the pacing.
func TestPacedReader_Read(t *testing.T) {
	require.Equal(t, 4, readsBeforePause, "the script below assumes it")
	clock := time.Unix(0, 0)
	const buf = 32 << 10
	quick := readStep{wait: 20 * time.Microsecond, n: 150}
	steps := []struct {
		readStep
		pauseBefore bool
	}{
		{readStep{wait: 10 * time.Millisecond, n: 150}, false}, // after idle
		{quick, false}, {quick, false}, {quick, false},
		{quick, false},                        // four quick small reads in a row: pause next
		{readStep{wait: 0, n: 3000}, true},    // the pause gathered a batch: pause next
		{readStep{wait: 0, n: buf / 2}, true}, // a full read: no pause next
		{quick, false}, {quick, false}, {quick, false}, {quick, false},
		{readStep{wait: 0, n: 300}, true}, // the pause gathered little: the stream is light
		{quick, false}, {quick, false},
		{readStep{wait: 500 * time.Microsecond, n: 150}, false}, // a slow read starts the count again
		{quick, false}, {quick, false}, {quick, false},
		{readStep{wait: 10 * time.Microsecond, n: 0, err: io.EOF}, false}, // an error too
		{quick, false},
	}
	conn := &scriptedConn{clock: &clock}
	var want []bool
	for _, s := range steps {
		conn.steps = append(conn.steps, s.readStep)
		want = append(want, s.pauseBefore)
	}
	var paused []bool
	pausedNow := false
	r := newPacedReader(conn)
	r.now = func() time.Time { return clock }
	r.sleep = func(d time.Duration) {
		require.Equal(t, readPause, d)
		clock = clock.Add(d)
		pausedNow = true
	}
	p := make([]byte, buf)
	for range steps {
		pausedNow = false
		_, _ = r.Read(p)
		paused = append(paused, pausedNow)
	}
	require.Equal(t, want, paused)
}

// A packet larger than maxPending, written in pieces inside Lock/Unlock,
// does not wait for itself: the writer is kicked when a piece must wait
// for room.
func TestConn_PacketLargerThanPending(t *testing.T) {
	c, srv := pair(t)
	piece := bytes.Repeat([]byte{7}, maxPending/2)
	const pieces = 5
	got := make(chan int, 1)
	go func() {
		n, _ := io.ReadFull(srv, make([]byte, pieces*len(piece)))
		got <- n
	}()
	wrote := make(chan error, 1)
	go func() {
		c.Lock()
		defer c.Unlock()
		for range pieces {
			if _, err := c.Write(piece); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	select {
	case err := <-wrote:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("a packet larger than maxPending waits for itself")
	}
	require.Equal(t, pieces*len(piece), <-got)
}

// Only a TCP socket is paced: over TLS a read returns one record whatever
// is waiting, so a pause gathers nothing.
func TestSource_PacesOnlyTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
		}
	}()
	tcp, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer tcp.Close()
	require.IsType(t, &pacedReader{}, source(tcp))
	tc := tls.Client(tcp, &tls.Config{InsecureSkipVerify: true})
	require.Same(t, tc, source(tc))
}
