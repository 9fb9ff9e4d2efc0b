package sync

import (
	"context"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// ?wait= is a duration from 0 up to MaxWait seconds (SPEC: long polls are
// bounded, so a client cannot pin a request and its goroutine for longer).
func TestParseWait(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, true},
		{"0s", 0, true},
		{"30s", 30 * time.Second, true},
		{"60s", 60 * time.Second, true},
		{"1m", time.Minute, true},
		{"60.001s", 0, false},
		{"2m", 0, false},
		{"-1s", 0, false},
		{"30", 0, false}, // a duration needs its unit
		{"soon", 0, false},
	} {
		got, err := ParseWait(url.Values{"wait": {c.in}})
		if !c.ok {
			require.ErrorContains(t, err, "up to 60s", c.in)
			continue
		}
		require.NoError(t, err, c.in)
		require.Equal(t, c.want, got, c.in)
	}
}

// LongPoll answers at once with what there is, wakes on a change to read
// again, and answers empty once the wait is over.
func TestLongPoll(t *testing.T) {
	c := NewChanges()
	var reads atomic.Int32
	found := func() (bool, error) { reads.Add(1); return true, nil }
	require.NoError(t, LongPoll(t.Context(), c, time.Minute, found))
	require.Equal(t, int32(1), reads.Load(), "something to answer: no wait")

	reads.Store(0)
	var have atomic.Bool
	done := make(chan error, 1)
	go func() {
		done <- LongPoll(t.Context(), c, time.Minute, func() (bool, error) { reads.Add(1); return have.Load(), nil })
	}()
	require.Eventually(t, func() bool { return reads.Load() == 1 }, 5*time.Second, time.Millisecond)
	have.Store(true)
	c.Notify()
	select {
	case err := <-done:
		require.NoError(t, err)
		require.Equal(t, int32(2), reads.Load(), "woken by the change, read again")
	case <-time.After(10 * time.Second):
		t.Fatal("a change did not end the long poll")
	}

	reads.Store(0)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, LongPoll(ctx, c, 20*time.Millisecond, func() (bool, error) { reads.Add(1); return false, nil }))
	require.NoError(t, ctx.Err(), "ended by its own wait, not the test's deadline")
	require.Equal(t, int32(1), reads.Load())
}
