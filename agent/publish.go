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
	var topic string // built for the first result that goes there
	for _, res := range results {
		// A success asked for with a Response Topic goes there only.
		toReply := reply.ResponseTopic != ""
		toTopic := res.Rejected() || res.notify || (wantAll && !toReply)
		if !toReply && !toTopic { // most events: applied, nobody asked
			continue
		}
		body, _ := json.Marshal(res) // a Result always marshals
		if toReply {
			r.pub.Publish(outbound{Topic: reply.ResponseTopic, Payload: body, QoS: 1, Correlation: reply.Correlation})
		}
		if toTopic {
			if topic == "" {
				topic = resultsTopic(r.prefix, r.warehouse, device)
			}
			r.pub.Publish(outbound{Topic: topic, Payload: body, QoS: 1})
		}
	}
}
