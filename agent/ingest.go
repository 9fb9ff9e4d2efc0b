package agent

import (
	"strings"
	"time"
)

// deviceTopic is a parsed {prefix}/{wh}/devices/{device}/{kind}[/{sub}].
type deviceTopic struct {
	Warehouse, Device, Kind, Sub string
}

// parseDeviceTopic splits a device topic; ok is false for any other topic.
func parseDeviceTopic(prefix, topic string) (deviceTopic, bool) {
	rest, ok := strings.CutPrefix(topic, prefix+"/")
	if !ok {
		return deviceTopic{}, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) < 4 || len(parts) > 5 || parts[1] != "devices" {
		return deviceTopic{}, false
	}
	t := deviceTopic{Warehouse: parts[0], Device: parts[2], Kind: parts[3]}
	if len(parts) == 5 {
		t.Sub = parts[4]
	}
	return t, true
}

// resultsTopic is where a device's results go.
func resultsTopic(prefix, warehouse, device string) string {
	return prefix + "/" + warehouse + "/devices/" + device + "/results"
}

// now is the receive clock; a variable so nothing else reads time.Now.
var now = func() time.Time { return time.Now().UTC() }
