package backoff

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Each wait lies between half the step and the step; the step doubles up to
// the cap and starts over after Reset.
func TestBackoff_Next(t *testing.T) {
	b := New(100*time.Millisecond, time.Second)
	for _, step := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		step *= time.Millisecond
		w := b.Next()
		require.GreaterOrEqual(t, w, step/2)
		require.LessOrEqual(t, w, step)
	}
	b.Reset()
	require.LessOrEqual(t, b.Next(), 100*time.Millisecond)
}

func TestBackoff_SleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.False(t, New(time.Hour, time.Hour).Sleep(ctx))
	require.True(t, New(time.Millisecond, time.Millisecond).Sleep(context.Background()))
}

func TestBackoff_Exhaust(t *testing.T) {
	b := New(time.Millisecond, time.Second)
	b.Exhaust()
	for range 20 {
		w := b.Next()
		require.GreaterOrEqual(t, w, 500*time.Millisecond)
		require.LessOrEqual(t, w, time.Second)
	}
	b.Reset()
	require.LessOrEqual(t, b.Next(), time.Millisecond)
}
