package hub

import stdsync "sync"

// changes lets loops wait for the next change: every Notify closes the
// current channel and starts a new one.
type changes struct {
	mu stdsync.Mutex
	ch chan struct{}
}

func newChanges() *changes { return &changes{ch: make(chan struct{})} }

// Wait returns a channel closed at the next Notify.
func (c *changes) Wait() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ch
}

// Notify wakes every waiter; it never blocks.
func (c *changes) Notify() {
	c.mu.Lock()
	close(c.ch)
	c.ch = make(chan struct{})
	c.mu.Unlock()
}
