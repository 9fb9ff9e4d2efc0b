// Package backoff is the wait between retries that SPEC §5 asks of every
// retry: exponential, jittered, capped.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the wait before each next attempt of one retry loop; it is not
// safe for concurrent use.
type Backoff struct {
	min, max time.Duration
	step     time.Duration
}

// New starts at min and doubles up to max.
func New(min, max time.Duration) *Backoff {
	return &Backoff{min: min, max: max, step: min}
}

// Next returns the wait before the next attempt, a random time between half
// the current step and all of it (jitter keeps many clients from retrying
// a recovering server in step, and the wait never passes the cap), and
// doubles the step up to max.
func (b *Backoff) Next() time.Duration {
	wait := b.step/2 + time.Duration(rand.Int64N(int64(b.step/2)+1))
	b.step = min(2*b.step, b.max)
	return wait
}

// Exhaust jumps to the cap: for a failure that retrying soon cannot mend
// (a refused credential), the next waits are the longest.
func (b *Backoff) Exhaust() { b.step = b.max }

// Reset starts over from min, after a success.
func (b *Backoff) Reset() { b.step = b.min }

// Sleep waits Next(); it returns false if ctx ended first.
func (b *Backoff) Sleep(ctx context.Context) bool {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
