package events

import (
	"testing"

	"github.com/edgestock/edgestock/drivers"
)

func BenchmarkDriver_Decode(b *testing.B) {
	d, _ := New(drivers.Env{})
	msg := drivers.Message{Device: "d1", DeviceFixed: true,
		Payload: []byte(`{"id":"scn7-000123","type":"receive","sku":"SKU-1","qty":5,"location":"A-01","ts":"2026-11-27T10:00:00Z","channel":"store","seq":123}`)}
	for b.Loop() {
		if it := d.Decode(msg); it[0].Rejected != nil {
			b.Fatal(it[0].Rejected)
		}
	}
}
