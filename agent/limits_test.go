package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/internal/testenv"
)

// An oversized payload and a flooding device are refused with reasons and
// quarantined, while a well-behaved device keeps flowing.
// A flooding device is limited to its bucket, and a good device sending
// within its own burst keeps flowing meanwhile. Counts, never rates: the
// flood sends a fixed number of messages, far past burst + rate x time even
// on a machine ten times slower.
func TestLimits_OversizeAndFlood(t *testing.T) {
	const rate, burst, floodCount, goodCount = 1, 40, 400, 40
	a := startAgent(t, t.TempDir(), func(c *agent.Config) { c.Devices.RateLimit, c.Devices.RateBurst = rate, burst })
	flood := testenv.Dial(t, a.MQTTAddr(), "flood")
	good := testenv.Dial(t, a.MQTTAddr(), "good")

	big := append([]byte(`{"id":"big","type":"receive","sku":"S","qty":1,"pad":"`), bytes.Repeat([]byte("x"), 300<<10)...)
	big = append(big, `"}`...)
	require.NoError(t, good.PublishQoS1(t.Context(), eventsTopic("good"), big), "refused, yet acknowledged: it is in the quarantine")

	var wg sync.WaitGroup
	var floodSent atomic.Int64
	start := time.Now()
	wg.Go(func() {
		for i := range floodCount {
			if flood.PublishQoS1(context.Background(), eventsTopic("flood"), receive(fmt.Sprint(i), "F", 1)) == nil {
				floodSent.Add(1)
			}
		}
	})
	for i := range goodCount - 1 { // within the good device's own burst (the big one took a token)
		require.NoError(t, good.PublishQoS1(t.Context(), eventsTopic("good"), receive(fmt.Sprint(i), "G", 1)))
	}
	wg.Wait()
	took := time.Since(start)
	require.Equal(t, int64(goodCount-1), a.OnHand(t, "G"), "good traffic keeps flowing")
	require.Equal(t, int64(floodCount), floodSent.Load(), "every flood message acknowledged")
	applied := a.OnHand(t, "F")
	require.LessOrEqual(t, float64(applied), burst+rate*(took.Seconds()+0.5), "at most burst + rate x time")
	require.Less(t, applied, floodSent.Load(), "the flood is limited")

	reasons := map[string]int{}
	for _, it := range a.Quarantine(t) {
		reasons[it.Reason]++
	}
	require.Equal(t, 1, reasons["too_large"])
	require.Equal(t, floodSent.Load()-applied, int64(reasons["rate_limited"]), "every refused flood message is in the quarantine")
	t.Logf("in %s: good device %d applied; flood sent %d, applied %d, rate_limited %d", took.Round(time.Millisecond), goodCount-1, floodSent.Load(), applied, reasons["rate_limited"])
}
