// Package bufconn wraps the network connection of an MQTT client so that it
// costs few system calls per message.
//
// paho.golang reads each packet straight from the socket (a read for the
// fixed header byte, one per length byte, one for the body) and writes each
// packet, every PUBACK included, with its own system call. At 20,000 QoS 1
// messages a second that is some 100,000 system calls a second, and they
// were most of the agent's CPU time. A [Conn] reads through a buffer and
// coalesces writes: a packet's bytes are appended to a pending buffer and a
// writer goroutine sends whatever has accumulated in one write, so the
// PUBACKs paho flushes every few milliseconds leave together. The pattern is
// the store's group commit: while one write is in the kernel, the next ones
// gather.
//
// Reads from a TCP socket are paced under load (see pacedReader).
//
// A Conn implements [sync.Locker], which paho's packet writer takes around
// the writes of one packet, so packets from concurrent writers never
// interleave.
package bufconn

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// readBufferSize is the read buffer: many small packets per read.
const readBufferSize = 32 << 10

// maxPending bounds the bytes waiting for the writer goroutine; a Write
// beyond it waits, so a slow peer pushes back instead of growing memory.
const maxPending = 256 << 10

// closeFlushTimeout bounds how long Close waits to send what is pending
// (the DISCONNECT paho writes just before closing, acks). A variable for
// tests.
var closeFlushTimeout = 2 * time.Second

// Conn is a net.Conn with buffered reads and coalesced writes. Writes
// return once their bytes are queued; a write error is returned by the
// next Write and closes the connection, so the reader sees it too.
type Conn struct {
	net.Conn
	r *bufio.Reader

	packet   sync.Mutex  // the sync.Locker: held across one packet's writes
	inPacket atomic.Bool // a packet is being written; Unlock sends it

	mu      sync.Mutex
	drained *sync.Cond // broadcast when a write completes or fails
	pending []byte     // queued, not yet handed to the writer
	spare   []byte     // the writer's previous buffer, reused
	writing bool       // the writer goroutine is in a write
	err     error      // the first write error; sticky
	closed  bool

	kick chan struct{} // capacity 1: there is something to send
	done chan struct{} // closed by Close: the writer exits
	once sync.Once
}

// New wraps c and starts its writer goroutine, which Close stops.
func New(c net.Conn) *Conn {
	bc := &Conn{
		Conn: c,
		r:    bufio.NewReaderSize(source(c), readBufferSize),
		kick: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	bc.drained = sync.NewCond(&bc.mu)
	go bc.writeLoop()
	return bc
}

// source is what the read buffer reads from: c, paced when it is a TCP
// socket. A TLS connection returns one record per read however many are
// waiting, so pauses gather nothing there: each would only delay the next
// record (a stream of 20,000 small records a second fell to some 4,300).
func source(c net.Conn) io.Reader {
	if _, ok := c.(*net.TCPConn); ok {
		return newPacedReader(c)
	}
	return c
}

// pacedReader paces the reads under a heavy stream of small packets.
// There, each read would return one or two packets, and each read costs a
// system call and, over TCP, the acknowledgement the kernel sends with it:
// 8 % of the agent's CPU through mosquitto. So once readsBeforePause reads
// in a row came back small (under a quarter of the buffer) and found their
// data waiting (they blocked under readQuickWait), it waits readPause
// before each read, which returns what gathered meanwhile. It stops when a
// read fills up or a pause gathers under readGather bytes: the stream is
// light again. This is interrupt moderation, as network cards do it: a
// packet after a quiet spell is read at once, and so is a stream too slow
// to gather a batch in a pause (at 2,000 packets a second, 0.6 % of the
// reads were paused); under load, a packet waits at most readPause, far
// less than the group commit it then waits for. Through mosquitto at some
// 25,000 events a second, the agent's reads fell from about 7,000 a second
// to 1,200.
type pacedReader struct {
	src   io.Reader
	quick int                 // reads in a row that were small and found data waiting
	now   func() time.Time    // time.Now; tests replace it
	sleep func(time.Duration) // time.Sleep; tests replace it
}

const (
	readPause        = 500 * time.Microsecond
	readQuickWait    = 200 * time.Microsecond
	readsBeforePause = 4
	readGather       = 1 << 10
)

func newPacedReader(src io.Reader) *pacedReader {
	return &pacedReader{src: src, now: time.Now, sleep: time.Sleep}
}

func (r *pacedReader) Read(p []byte) (int, error) {
	paced := r.quick >= readsBeforePause
	if paced {
		r.sleep(readPause)
	}
	start := r.now()
	n, err := r.src.Read(p)
	switch {
	case err != nil || n >= len(p)/4:
		r.quick = 0 // reads fill up: nothing to gain
	case paced:
		if n < readGather {
			r.quick = 0 // the pause gathered little: the stream is light
		}
	case r.now().Sub(start) < readQuickWait:
		r.quick++
	default:
		r.quick = 0
	}
	return n, err
}

// Read reads through the buffer.
func (c *Conn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Lock starts a packet: its writes stay together.
func (c *Conn) Lock() {
	c.packet.Lock()
	c.inPacket.Store(true)
}

// Unlock ends the packet and hands it to the writer.
func (c *Conn) Unlock() {
	c.inPacket.Store(false)
	c.signal()
	c.packet.Unlock()
}

// Write queues p. Outside a Lock/Unlock pair it is sent as soon as the
// writer is free; inside one, when the pair ends.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	for len(c.pending) >= maxPending && c.err == nil && !c.closed {
		// Inside a packet nothing has kicked the writer yet: kick it, or a
		// packet larger than maxPending would wait for itself. (Sending part
		// of a packet early is fine: the packet lock keeps packets whole.)
		c.signal()
		c.drained.Wait()
	}
	switch {
	case c.err != nil:
		err := c.err
		c.mu.Unlock()
		return 0, err
	case c.closed:
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	c.pending = append(c.pending, p...)
	c.mu.Unlock()
	if !c.inPacket.Load() {
		c.signal()
	}
	return len(p), nil
}

func (c *Conn) signal() {
	select {
	case c.kick <- struct{}{}:
	default: // a kick is already pending; the writer takes everything queued
	}
}

// writeLoop sends everything queued in one write per wake-up.
func (c *Conn) writeLoop() {
	for {
		select {
		case <-c.done:
			return
		case <-c.kick:
		}
		c.mu.Lock()
		buf := c.pending
		if len(buf) == 0 || c.err != nil {
			c.mu.Unlock()
			continue
		}
		c.pending, c.spare = c.spare[:0], nil
		c.writing = true
		c.mu.Unlock()

		_, err := c.Conn.Write(buf)

		c.mu.Lock()
		c.writing = false
		if err != nil && c.err == nil {
			c.err = err
		}
		if cap(buf) <= maxPending { // keep a buffer of ordinary size
			c.spare = buf[:0]
		}
		c.drained.Broadcast()
		c.mu.Unlock()
		if err != nil {
			// The reader must notice too: paho learns of a broken
			// connection from its read loop.
			_ = c.Conn.Close()
		}
	}
}

// flush waits until everything written so far has been sent, or sending
// failed.
func (c *Conn) flush() error {
	c.signal()
	c.mu.Lock()
	defer c.mu.Unlock()
	for (len(c.pending) > 0 || c.writing) && c.err == nil {
		c.drained.Wait()
	}
	return c.err
}

// Close sends what is queued (within closeFlushTimeout), then closes the
// connection. Later writes fail with net.ErrClosed.
func (c *Conn) Close() error {
	var err error
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.drained.Broadcast() // writers waiting for room give up
		c.mu.Unlock()
		// A stalled peer must not hold Close: the deadline fails the
		// writer's write, which ends flush's wait.
		_ = c.Conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
		flushErr := c.flush()
		close(c.done)
		err = c.Conn.Close()
		if errors.Is(err, net.ErrClosed) && flushErr != nil {
			err = nil // the failed write closed it already
		}
	})
	return err
}
