package agent

import (
	"encoding/json"
	"github.com/edgestock/edgestock/internal/ingest"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// outbound is a message the agent publishes.
type outbound struct {
	Topic       string
	Payload     []byte
	QoS         byte
	Retain      bool
	Correlation []byte // MQTT v5 correlation data for response-topic replies
	// Failed, when set, runs if a queued publish fails (external broker:
	// timeout, connection lost), so the sender can publish it again.
	Failed func()
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

// maxReplyWarned bounds the devices remembered as told about a refused
// Response Topic; past it the memory starts over (each is told once more).
const maxReplyWarned = 10_000

// reporter decides which results a device hears about (SPEC §3): every
// rejection, at once; successes only when the device asked.
type reporter struct {
	prefix, warehouse string
	devices           atomic.Pointer[Devices] // devices.results, devices.results-all; swapped on reload
	pub               publisher
	// ingests reports whether the agent ingests a device topic kind: a
	// Response Topic there would feed the agent its own answers.
	ingests func(kind string) bool
	logger  *slog.Logger // nil: no log

	mu     sync.Mutex
	warned map[string]bool // devices told why their Response Topic was refused
}

// replyRefusal says why the agent will not publish device's results to
// topic, a client-chosen MQTT 5 Response Topic; "" when it will. The agent
// publishes past the broker's ACL, so it answers only inside the device's
// own subtree, and not on a topic it ingests.
func (r *reporter) replyRefusal(device, topic string) string {
	own := r.prefix + "/" + r.warehouse + "/devices/" + device + "/"
	if !strings.HasPrefix(topic, own) || strings.ContainsAny(topic, "+#") {
		return "a Response Topic must be under the device's own " + own
	}
	if t, ok := parseDeviceTopic(r.prefix, topic); ok && r.ingests != nil && r.ingests(t.Kind) {
		return "a Response Topic must not be a topic the agent ingests (" + t.Kind + ")"
	}
	return ""
}

// warnReply logs once per device why its Response Topic was not used.
func (r *reporter) warnReply(device, topic, why string) {
	if r.logger == nil {
		return
	}
	r.mu.Lock()
	seen := r.warned[device]
	if !seen {
		if r.warned == nil || len(r.warned) >= maxReplyWarned {
			r.warned = map[string]bool{}
		}
		r.warned[device] = true
	}
	r.mu.Unlock()
	if !seen {
		r.logger.Warn("mqtt Response Topic refused; results go to the device's results topic as if it had none (logged once per device)",
			"device", device, "response_topic", topic, "reason", why)
	}
}

func (r *reporter) report(device string, results []ingest.Result, reply replyTo) {
	if reply.ResponseTopic != "" && len(results) > 0 {
		if why := r.replyRefusal(device, reply.ResponseTopic); why != "" {
			r.warnReply(device, reply.ResponseTopic, why)
			reply = replyTo{}
		}
	}
	d := r.devices.Load()
	wantAll := d.Results == "all" || slices.Contains(d.ResultsAll, device)
	var topic string // built for the first result that goes there
	for _, res := range results {
		// A success asked for with a Response Topic goes there only.
		toReply := reply.ResponseTopic != ""
		toTopic := res.Rejected() || res.Notify || (wantAll && !toReply)
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
