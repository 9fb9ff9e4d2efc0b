package agent_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgestock/edgestock/agent"
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

// BenchmarkAgent_MosquittoIngest: 4 publishers with 32 in flight each
// through mosquitto to the agent in external-broker mode, until all b.N
// events are applied.
func BenchmarkAgent_MosquittoIngest(b *testing.B) {
	m := testenv.StartMosquitto(b)
	a := startAgent(b, b.TempDir(), func(c *agent.Config) { c.MQTT.URL = m.URL() })
	warm := testenv.Dial(b, m.Addr, "warm")
	for a.onHand(b, "WARM") == 0 { // the agent subscribes just after connecting
		_ = warm.PublishQoS1(b.Context(), eventsTopic("warm"), receive("w", "WARM", 1))
		time.Sleep(10 * time.Millisecond)
	}
	const publishers, inFlight = 4, 32
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for p := range publishers {
		c := testenv.Dial(b, m.Addr, fmt.Sprint("pub", p))
		for range inFlight {
			wg.Go(func() {
				for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
					if err := c.PublishQoS1(context.Background(), eventsTopic(fmt.Sprint("d", p)), receive(fmt.Sprint(i), "SKU-B", 1)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	for a.onHand(b, "SKU-B") < int64(b.N) {
		time.Sleep(5 * time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
