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
func TestLimits_OversizeAndFlood(t *testing.T) {
	a := startAgent(t, t.TempDir(), func(c *agent.Config) { c.Devices.RateLimit, c.Devices.RateBurst = 50, 50 })
	flood := testenv.Dial(t, a.MQTTAddr(), "flood")
	good := testenv.Dial(t, a.MQTTAddr(), "good")

	big := append([]byte(`{"id":"big","type":"receive","sku":"S","qty":1,"pad":"`), bytes.Repeat([]byte("x"), 300<<10)...)
	big = append(big, `"}`...)
	require.NoError(t, good.PublishQoS1(t.Context(), eventsTopic("good"), big), "refused, yet acknowledged: it is in the quarantine")

	var wg sync.WaitGroup
	var floodSent atomic.Int64
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if flood.PublishQoS1(context.Background(), eventsTopic("flood"), receive(fmt.Sprint(i), "F", 1)) == nil {
				floodSent.Add(1)
			}
		}
	})
	start := time.Now()
	for i := range 40 { // 40 in ~2 s: under the good device's own limit
		require.NoError(t, good.PublishQoS1(t.Context(), eventsTopic("good"), receive(fmt.Sprint(i), "G", 1)))
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	took := time.Since(start)
	require.Equal(t, int64(40), a.onHand(t, "G"), "good traffic keeps flowing")
	applied := a.onHand(t, "F")
	require.Less(t, applied, floodSent.Load(), "the flood is limited")
	require.LessOrEqual(t, float64(applied), 50+50*(took.Seconds()+0.5), "at most burst + rate x time")

	reasons := map[string]int{}
	for _, it := range a.quarantine(t) {
		reasons[it.Reason]++
	}
	require.Equal(t, 1, reasons["too_large"])
	require.Equal(t, floodSent.Load()-applied, int64(reasons["rate_limited"]), "every refused flood message is in the quarantine")
	t.Logf("in %s: good device 40/40 applied; flood sent %d, applied %d, rate_limited %d", took.Round(time.Millisecond), floodSent.Load(), applied, reasons["rate_limited"])
}
