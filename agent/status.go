package agent

import (
	"net/http"
	"sync"
	"time"

	"github.com/edgestock/edgestock/internal/store"
)

// Version is the agent's version, set by the command.
var Version = "dev"

// Status is GET /v1/status: the operator's one-screen view.
type Status struct {
	Version          string     `json:"version"`
	Warehouse        string     `json:"warehouse"`
	Replica          string     `json:"replica"`
	UptimeSeconds    float64    `json:"uptime_seconds"`
	EventsPerSecond  float64    `json:"events_per_second"` // applied, over the last minute
	EventsApplied    int64      `json:"events_applied"`    // since start
	Quarantine       int64      `json:"quarantine"`
	ActiveHolds      int64      `json:"active_holds"`
	PendingDeltas    int64      `json:"pending_deltas"`   // entries changed since the hub's last pull cursor
	LastHubContact   *time.Time `json:"last_hub_contact"` // last sync request from the hub
	ConfigGeneration int        `json:"config_generation"`
	ConfigError      string     `json:"config_error,omitempty"`     // why the last reload was refused
	RestartRequired  []string   `json:"restart_required,omitempty"` // changed settings that need a restart
	StoreOK          bool       `json:"store_ok"`
}

// rateWindow measures applied events per second over about a minute.
type rateWindow struct {
	mu      sync.Mutex
	total   int64
	samples []rateSample
}

type rateSample struct {
	at    time.Time
	total int64
}

func (r *rateWindow) add(n int, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total += int64(n)
	if len(r.samples) == 0 || at.Sub(r.samples[len(r.samples)-1].at) >= time.Second {
		r.samples = append(r.samples, rateSample{at, r.total})
		for len(r.samples) > 61 {
			r.samples = r.samples[1:]
		}
	}
}

func (r *rateWindow) read(at time.Time) (total int64, perSecond float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.samples) == 0 {
		return r.total, 0
	}
	first := r.samples[0]
	if d := at.Sub(first.at).Seconds(); d > 0 {
		perSecond = float64(r.total-first.total) / d
	}
	return r.total, perSecond
}

func (a *Agent) handleStatus(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	at := now()
	total, rate := a.rate.read(at)
	st := Status{Version: Version, Warehouse: a.cfg.Warehouse, Replica: a.store.ReplicaID(), UptimeSeconds: at.Sub(a.started).Seconds(),
		EventsPerSecond: rate, EventsApplied: total, StoreOK: a.store.Err() == nil}
	st.ConfigGeneration, st.ConfigError, st.RestartRequired = a.reload.snapshot()
	var err error
	if st.Quarantine, err = a.store.Count(ctx, store.CountQuarantine); err == nil {
		if st.ActiveHolds, err = a.store.Count(ctx, store.CountActiveHolds); err == nil {
			// Entries changed since the cursor the hub last pulled from,
			// i.e. since what it has merged.
			st.PendingDeltas, err = a.store.CountChangedSince(ctx, a.hubSince.Load())
		}
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
		return
	}
	if ms := a.hubSeen.Load(); ms != 0 {
		t := time.UnixMilli(ms).UTC()
		st.LastHubContact = &t
	}
	writeJSON(w, http.StatusOK, st)
}
