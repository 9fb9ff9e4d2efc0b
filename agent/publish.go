package agent

import (
	"encoding/json"
	"slices"
	"sync/atomic"
)

// outbound is a message the agent publishes.
type outbound struct {
	Topic       string
	Payload     []byte
	QoS         byte
	Retain      bool
	Correlation []byte // MQTT v5 correlation data for response-topic replies
}

// publisher sends outbound messages through the broker. Publish must not
// block: it runs on the store's commit loop.
type publisher interface {
	Publish(m outbound)
}

// replyTo is where a device wants its results, beyond rejections.
type replyTo struct {
	ResponseTopic string
	Correlation   []byte
}

// reporter decides which results a device hears about (SPEC §3): every
// rejection, at once; successes only when the device asked.
type reporter struct {
	prefix, warehouse string
	devices           atomic.Pointer[Devices] // devices.results, devices.results-all; swapped on reload
	pub               publisher
}

func (r *reporter) report(device string, results []Result, reply replyTo) {
	d := r.devices.Load()
	wantAll := d.Results == "all" || slices.Contains(d.ResultsAll, device)
	topic := resultsTopic(r.prefix, r.warehouse, device)
	for _, res := range results {
		body, _ := json.Marshal(res) // a Result always marshals
		if reply.ResponseTopic != "" {
			r.pub.Publish(outbound{Topic: reply.ResponseTopic, Payload: body, QoS: 1, Correlation: reply.Correlation})
			if !res.Rejected() {
				continue
			}
		}
		if res.Rejected() || wantAll {
			r.pub.Publish(outbound{Topic: topic, Payload: body, QoS: 1})
		}
	}
}
