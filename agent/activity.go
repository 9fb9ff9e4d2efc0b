package agent

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/edgestock/edgestock/internal/ingest"
)

// maxDevicesSeen bounds the devices the activity table remembers; past it
// the tenth seen longest ago is forgotten at once (one sort per thousand
// new devices, not a scan per message), so a flood of made-up device ids
// can neither grow memory nor slow the commit loop.
const maxDevicesSeen = 10_000

// DeviceActivity is one device in GET /v1/devices: what it sent since the
// agent started (the table is not stored: a restart begins it again).
type DeviceActivity struct {
	Device     string    `json:"device"`
	Source     string    `json:"source"` // where it last sent from: mqtt, http, file
	LastSeen   time.Time `json:"last_seen"`
	Applied    int64     `json:"applied"`
	Duplicates int64     `json:"duplicates"`
	Rejected   int64     `json:"rejected"`
	LastReject string    `json:"last_reject,omitempty"` // the reason code of its last rejection
}

// activity is the table of devices seen, fed from the ingest results.
type activity struct {
	mu      sync.Mutex
	devices map[string]*DeviceActivity
}

// observe records one message's results; it runs on the commit loop.
func (t *activity) observe(device, source string, results []ingest.Result, at time.Time) {
	if device == "" || len(results) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.devices[device]
	if d == nil {
		if t.devices == nil {
			t.devices = map[string]*DeviceActivity{}
		}
		if len(t.devices) >= maxDevicesSeen {
			t.forgetOldest(maxDevicesSeen / 10)
		}
		d = &DeviceActivity{Device: device}
		t.devices[device] = d
	}
	d.Source, d.LastSeen = source, at
	for _, r := range results {
		switch r.Status {
		case ingest.StatusApplied:
			d.Applied++
		case ingest.StatusDuplicate:
			d.Duplicates++
		case ingest.StatusRejected:
			d.Rejected++
			d.LastReject = string(r.Reason)
		}
	}
}

// forgetOldest drops the n devices seen longest ago.
func (t *activity) forgetOldest(n int) {
	all := make([]*DeviceActivity, 0, len(t.devices))
	for _, d := range t.devices {
		all = append(all, d)
	}
	slices.SortFunc(all, func(a, b *DeviceActivity) int { return a.LastSeen.Compare(b.LastSeen) })
	for _, d := range all[:min(n, len(all))] {
		delete(t.devices, d.Device)
	}
}

// list returns the devices whose id starts with prefix, seen last first.
func (t *activity) list(prefix string) []DeviceActivity {
	t.mu.Lock()
	out := make([]DeviceActivity, 0, len(t.devices))
	for _, d := range t.devices {
		if strings.HasPrefix(d.Device, prefix) {
			out = append(out, *d)
		}
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b DeviceActivity) int {
		if c := b.LastSeen.Compare(a.LastSeen); c != 0 {
			return c
		}
		return strings.Compare(a.Device, b.Device)
	})
	return out
}

// handleDevices is GET /v1/devices: each device's last message and counts
// of what it sent since the agent started, seen last first.
func (a *Agent) handleDevices(w http.ResponseWriter, r *http.Request) {
	limit, err := pageLimit(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_query", "%v", err)
		return
	}
	out := a.seen.list(r.URL.Query().Get("prefix"))
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": out, "more": more})
}
