package agent_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/edgestock/edgestock/internal/testenv"
)

// BenchmarkAgent_EmbeddedIngest: one gateway connection keeps 64 QoS 1
// publishes in flight to the embedded broker; every PUBACK means committed.
func BenchmarkAgent_EmbeddedIngest(b *testing.B) {
	a := startAgent(b, b.TempDir(), nil)
	c := testenv.Dial(b, a.MQTTAddr(), "gw")
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i++
		payload := receive(fmt.Sprint(i), "SKU-B", 1)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := c.PublishQoS1(context.Background(), eventsTopic(fmt.Sprint("d", i%64)), payload); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
