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
// A Conn implements [sync.Locker], which paho's packet writer takes around
// the writes of one packet, so packets from concurrent writers never
// interleave.
package bufconn

import (
	"bufio"
	"errors"
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
		r:    bufio.NewReaderSize(c, readBufferSize),
		kick: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	bc.drained = sync.NewCond(&bc.mu)
	go bc.writeLoop()
	return bc
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

// Flush waits until everything written so far has been sent, or sending
// failed.
func (c *Conn) Flush() error {
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
		// writer's write, which ends Flush's wait.
		_ = c.Conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
		flushErr := c.Flush()
		close(c.done)
		err = c.Conn.Close()
		if errors.Is(err, net.ErrClosed) && flushErr != nil {
			err = nil // the failed write closed it already
		}
	})
	return err
}
