package sync

import (
	"context"
	"fmt"
	"net/url"
	stdsync "sync"
	"time"
)

// Changes lets long polls wait for the next commit: every Notify closes the
// current channel and starts a new one.
type Changes struct {
	mu stdsync.Mutex
	ch chan struct{}
}

// NewChanges returns a Changes with nobody waiting.
func NewChanges() *Changes { return &Changes{ch: make(chan struct{})} }

// Wait returns a channel closed at the next Notify.
func (c *Changes) Wait() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ch
}

// Notify wakes every waiter; it never blocks.
func (c *Changes) Notify() {
	c.mu.Lock()
	close(c.ch)
	c.ch = make(chan struct{})
	c.mu.Unlock()
}

// ParseWait reads a ?wait= long-poll duration (0 when absent).
func ParseWait(q url.Values) (time.Duration, error) {
	s := q.Get("wait")
	if s == "" {
		return 0, nil
	}
	wait, err := time.ParseDuration(s)
	if err != nil || wait < 0 || wait > MaxWait*time.Second {
		return 0, fmt.Errorf("wait: %q must be a duration up to %ds", s, MaxWait)
	}
	return wait, nil
}

// LongPoll calls read until it reports something to answer with, a change
// wakes it up for another read, or wait passes (then it answers with the
// last, empty read). The channel is taken before each read, so a commit
// between the read and the wait is never missed.
func LongPoll(ctx context.Context, c *Changes, wait time.Duration, read func() (found bool, err error)) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		changed := c.Wait()
		found, err := read()
		if err != nil || found || wait == 0 {
			return err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
	}
}
