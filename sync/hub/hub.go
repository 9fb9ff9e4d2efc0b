// Package hub is edgestock's central role (SPEC §5): for every agent a pull
// loop long-polls the agent's deltas and merges them with the agent's
// cursor in one transaction, and a push loop sends the agent what it has
// not seen; the HTTP API serves the global view, the warehouses and a
// reconciled change feed, and takes central writes on the hub's own
// replica. What moves is PN-counter state, so retries, duplicates and
// reordering are harmless: the loops can be simple and retry forever.
package hub

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	stdsync "sync"
	stdatomic "sync/atomic"
	"time"

	"github.com/edgestock/edgestock/internal/backoff"
	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/internal/uplink"
	"github.com/edgestock/edgestock/sync"
)

// Loop tuning.
const (
	pullPage     = 5000 // entries per pull
	pushPage     = 5000 // entries per push
	retryMin     = 100 * time.Millisecond
	pushInterval = 5 * time.Second // push even without a local change (an agent may have restarted)
	// pushGap is the least time between two pushes to one agent: changes
	// that come meanwhile go in one push. Every change at one warehouse is
	// pushed to every other agent (their global view), so without it N
	// agents each commit every change: N² commits. Order lines and rights
	// reach their warehouse within it.
	pushGap = 500 * time.Millisecond
)

// Timing is the hub's loop timing; the zero value means the defaults.
type Timing struct {
	PollWait time.Duration // long-poll wait asked of agents (default 20 s)
	RetryMax time.Duration // backoff cap (default and most 30 s, SPEC §5)
}

func (t Timing) withDefaults() Timing {
	if t.PollWait <= 0 {
		t.PollWait = 20 * time.Second
	}
	if t.RetryMax <= 0 || t.RetryMax > 30*time.Second {
		t.RetryMax = 30 * time.Second
	}
	return t
}

// Store is what the hub needs from its database; *store.DB provides it.
type Store interface {
	Apply(ctx context.Context, b *store.Batch) ([]store.Outcome, error)
	Deltas(ctx context.Context, since int64, limit int, skipReplica string) (store.DeltaPage, error)
	Meta(ctx context.Context, key string) (string, error)
	// Alerts reads the alert outbox (the links' warehouse_offline and
	// warehouse_online) past since.
	Alerts(ctx context.Context, since int64, limit int) ([]store.Alert, error)
	// CursorID names the database's version sequence in the cursors the
	// hub hands out (shared by every hub process on one PostgreSQL).
	CursorID() string
}

var _ Store = (*store.DB)(nil)

// Agent is an agent the hub pulls from.
type Agent struct {
	Warehouse string
	URL       string // base URL, e.g. http://10.0.0.5:7070, or UplinkURL: the agent dials the hub
	Token     string // a token of the agent's with the sync scope; empty for an agent on loopback or an uplink
}

// Uplink reports whether the agent dials the hub.
func (a Agent) Uplink() bool { return a.URL == UplinkURL }

// link is the hub's connection to one agent.
type link struct {
	Agent
	client *http.Client
	timing Timing
	slot   *uplink.Slot // the agent's uplinks, when it dials the hub
	// elsewhere: another hub process holds the agent's lease and serves it.
	elsewhere stdatomic.Bool

	mu          stdsync.Mutex
	replica     string    // the agent's replica ID, as it last said
	lastContact time.Time // last successful exchange
	pullErr     string    // the pull loop's last error, until it next succeeds
	pushErr     string    // the push loop's
	pulled      int64     // entries merged from this agent
	pushed      int64     // entries sent to it
	pending     bool      // its last page said more
}

// Hub pulls from and pushes to agents.
type Hub struct {
	store  Store
	timing Timing
	logger *slog.Logger

	linksMu stdsync.RWMutex
	// links grows when an uplink agent the hub issued a token for first
	// dials (or is discovered); it is replaced, never changed in place, so
	// a slice read under linksMu stays whole.
	links []*link
	ctx   context.Context // the loops', from Open; nil before it and after Close
	// uplinks lists the warehouses this hub issued uplink tokens for (nil:
	// only the configured agents).
	uplinks      func(context.Context) ([]string, error)
	discoverMu   stdsync.Mutex
	discoveredAt time.Time

	id      string        // this process, as the holder of agents' uplinks
	changed *sync.Changes // wakes pushers after a merge or central write
	// alertTop is the highest alert seq this process has seen in the
	// outbox: streams read alerts only past it, not at every change.
	alertTop stdatomic.Int64
	// webhookStatus reports the webhooks' delivery state (metrics); nil: none.
	webhookStatus func() []WebhookStatus
	cancel        context.CancelFunc
	wg            stdsync.WaitGroup
}

// New returns a hub over st for agents.
func New(st Store, agents []Agent, timing Timing, logger *slog.Logger) *Hub {
	timing = timing.withDefaults()
	h := &Hub{store: st, logger: logger, timing: timing, changed: sync.NewChanges(), id: randomID()}
	for _, a := range agents {
		h.links = append(h.links, h.newLink(a))
	}
	return h
}

func (h *Hub) newLink(a Agent) *link {
	l := &link{Agent: a, timing: h.timing}
	if a.Uplink() {
		// HTTP/2 over the connection the agent dials; the host only
		// names it.
		l.slot = uplink.NewSlot()
		l.URL = "http://" + a.Warehouse + ".uplink"
		l.client = &http.Client{Transport: uplink.Transport(l.slot)}
	} else {
		// No overall timeout: long polls; each request has its own context.
		l.client = &http.Client{Transport: &http.Transport{
			DisableCompression: true, ResponseHeaderTimeout: h.timing.PollWait + 10*time.Second, MaxIdleConnsPerHost: 2,
		}}
	}
	return l
}

// linkList returns the links as they are now.
func (h *Hub) linkList() []*link {
	h.linksMu.RLock()
	defer h.linksMu.RUnlock()
	return h.links
}

// link returns warehouse's link (nil: not an agent of this hub).
func (h *Hub) link(warehouse string) *link { return findLink(h.linkList(), warehouse) }

// findLink returns warehouse's link in links (nil: none).
func findLink(links []*link, warehouse string) *link {
	if i := slices.IndexFunc(links, func(l *link) bool { return l.Warehouse == warehouse }); i >= 0 {
		return links[i]
	}
	return nil
}

// addUplink returns warehouse's link, adding one for an agent that dials
// the hub when there is none: the hub needs no --agent entry for a
// warehouse it issued an uplink token for (SPEC §11). Its loops start at
// once when the hub is open.
func (h *Hub) addUplink(warehouse string) *link {
	if l := h.link(warehouse); l != nil { // the common case: no write lock
		return l
	}
	h.linksMu.Lock()
	defer h.linksMu.Unlock()
	if l := findLink(h.links, warehouse); l != nil {
		return l
	}
	l := h.newLink(Agent{Warehouse: warehouse, URL: UplinkURL})
	h.links = append(slices.Clip(h.links), l)
	if h.ctx != nil {
		h.start(h.ctx, l)
	}
	h.logger.Info("uplink agent added", "warehouse", warehouse)
	return l
}

// discoverEvery bounds how often an unknown warehouse makes the hub read
// its uplink tokens again.
const discoverEvery = time.Second

// discover adds a link for every warehouse the hub issued an uplink token
// for that is not revoked or expired: at the start, so orders and views
// know them before they dial, and for a warehouse asked about that the
// hub does not know (another process may have issued its token since),
// at most once per discoverEvery.
func (h *Hub) discover(ctx context.Context, always bool) {
	if h.uplinks == nil {
		return
	}
	if always {
		h.discoverMu.Lock()
	} else if !h.discoverMu.TryLock() {
		return // another request is reading them: not every request waits
	}
	defer h.discoverMu.Unlock()
	if !always && time.Since(h.discoveredAt) < discoverEvery {
		return
	}
	h.discoveredAt = time.Now()
	whs, err := h.uplinks(ctx)
	if err != nil {
		h.logger.Warn("read the uplink tokens' warehouses", "err", err)
		return
	}
	for _, wh := range whs {
		h.addUplink(wh)
	}
}

// setTLS makes every link verify agents against cfg (nil: system roots).
func (h *Hub) setTLS(cfg *tls.Config) {
	for _, l := range h.linkList() {
		if l.slot == nil {
			l.client.Transport.(*http.Transport).TLSClientConfig = cfg
		}
	}
}

// Changed tells the push loops the hub's state changed (the store's
// Notify calls it after each commit).
func (h *Hub) Changed() { h.changed.Notify() }

// Open starts a pull and a push loop per agent.
func (h *Hub) Open() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.linksMu.Lock()
	defer h.linksMu.Unlock()
	h.ctx = ctx
	for _, l := range h.links {
		h.start(ctx, l)
	}
	h.wg.Go(func() { h.watchLinks(ctx) })
}

// start runs l's pull and push loops until ctx ends.
func (h *Hub) start(ctx context.Context, l *link) {
	h.wg.Add(2)
	go h.pullLoop(ctx, l)
	go h.pushLoop(ctx, l)
}

// linkCheck is how often the hub looks at its links for the alerts.
const linkCheck = time.Second

// watchLinks records each agent's link going offline or coming back
// online (store.LinkState): the store turns a change into a
// warehouse_offline or warehouse_online alert, once. An agent never
// reached counts as offline only after the first poll has had its time.
func (h *Hub) watchLinks(ctx context.Context) {
	grace := time.Now().Add(2 * h.timing.PollWait)
	sent := map[string]bool{} // warehouse → online, as last recorded
	t := time.NewTicker(linkCheck)
	defer t.Stop()
	for {
		h.readAlertTop(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var changes []store.LinkState
		for _, w := range h.Warehouses() {
			if !w.Online && w.LastContact == nil && time.Now().Before(grace) {
				continue // not reached yet: give it its first poll
			}
			if w.Elsewhere {
				continue // the process holding its lease judges it
			}
			if online, ok := sent[w.Warehouse]; !ok || online != w.Online {
				st := store.LinkState{Warehouse: w.Warehouse, Online: w.Online}
				if _, leased := h.store.(leaser); leased || w.URL == UplinkURL {
					st.Holder = h.id // one process serves it: that one judges it
				}
				changes = append(changes, st)
			}
		}
		if len(changes) == 0 {
			continue
		}
		if _, err := h.store.Apply(ctx, &store.Batch{Links: changes}); err != nil {
			if ctx.Err() == nil {
				h.logger.Warn("record agents' links", "err", err)
			}
			continue // again at the next check
		}
		h.readAlertTop(ctx) // at once: the streams wait for it
		for _, c := range changes {
			sent[c.Warehouse] = c.Online
		}
	}
}

// readAlertTop moves alertTop to the outbox's end (another hub process on
// the same PostgreSQL may have written there) and wakes the streams when
// it moved.
func (h *Hub) readAlertTop(ctx context.Context) {
	top := h.alertTop.Load()
	for {
		alerts, err := h.store.Alerts(ctx, top, 1000)
		if err != nil || len(alerts) == 0 {
			break
		}
		top = alerts[len(alerts)-1].Seq
	}
	if top > h.alertTop.Load() {
		h.alertTop.Store(top)
		h.changed.Notify()
	}
}

// Close stops the loops; what was merged is durable with its cursor.
func (h *Hub) Close() {
	if h.cancel != nil {
		h.cancel()
		h.linksMu.Lock()
		h.ctx = nil // no loop starts after this
		h.linksMu.Unlock()
		for _, l := range h.linkList() {
			if l.slot != nil {
				l.slot.Close() // requests waiting on an uplink end
			}
		}
		h.wg.Wait()
	}
}

// retry runs step until ctx ends: at once after a success, with jittered
// exponential backoff capped at retryMax after a failure, logging a
// failing agent once per state change rather than once per attempt.
func (h *Hub) retry(ctx context.Context, l *link, what string, step func(context.Context) error) {
	wait := backoff.New(retryMin, h.timing.RetryMax)
	failing := false
	for ctx.Err() == nil {
		err := step(ctx)
		if ctx.Err() == nil { // not the shutdown's "context canceled"
			l.setErr(what, err)
		}
		if err == nil {
			if failing {
				h.logger.Info("agent reachable again", "warehouse", l.Warehouse, "loop", what)
			}
			failing = false
			wait.Reset()
			continue
		}
		if ctx.Err() != nil {
			return
		}
		msg, lasting := failure(err)
		if !failing {
			h.logger.Warn(msg, "warehouse", l.Warehouse, "loop", what, "err", err)
			failing = true
		}
		if lasting {
			// Asking again soon mends nothing: wait the longest.
			wait.Exhaust()
		}
		if !h.sleep(ctx, l, wait) {
			return
		}
	}
}

// sleep backs off after a failure; an agent that dials the hub ends the
// wait when it does.
func (h *Hub) sleep(ctx context.Context, l *link, wait *backoff.Backoff) bool {
	if l.slot == nil {
		return wait.Sleep(ctx)
	}
	t := time.NewTimer(wait.Next())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-l.slot.Offered():
		wait.Reset()
	}
	return true
}

// randomID names this hub process.
func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func cursorKey(warehouse string) string { return "cursor:agent:" + warehouse }

func (h *Hub) pullLoop(ctx context.Context, l *link) {
	defer h.wg.Done()
	h.retry(ctx, l, "pull", func(ctx context.Context) error {
		fence, serve := h.serves(ctx, l)
		if !serve {
			return nil
		}
		return h.pull(ctx, l, fence)
	})
}

// leaser is a store that leases agents to hub processes (PostgreSQL):
// Lease returns the epoch the lease is held at, 0 when another process
// holds it.
type leaser interface {
	Lease(ctx context.Context, name string) (int64, error)
}

// leaseWait is how often a process that does not serve an agent asks
// again: another takes over within it of the holder's death.
const leaseWait = 2 * time.Second

// serves reports whether this process serves l's agent: always on
// SQLite, and for an agent that dials (the process it dialled serves
// it); on PostgreSQL, the process holding the agent's lease (SPEC §11),
// so that one process pulls and pushes each agent; its merges are fenced
// with the lease's epoch. Not serving, it waits leaseWait first.
//
// The fence it returns is the lease's name and the epoch it holds it at,
// taken before the pull: a page pulled under it is merged only while the
// lease is still at that epoch (none for an agent that is not leased).
func (h *Hub) serves(ctx context.Context, l *link) (store.Fence, bool) {
	ls, ok := h.store.(leaser)
	if !ok || l.slot != nil {
		return store.Fence{}, true
	}
	epoch, err := ls.Lease(ctx, leaseName(l.Warehouse))
	if err != nil && ctx.Err() == nil {
		h.logger.Warn("agent lease", "warehouse", l.Warehouse, "err", err)
	}
	l.elsewhere.Store(epoch == 0)
	if epoch == 0 {
		pause(ctx, leaseWait)
		return store.Fence{}, false
	}
	return store.Fence{Lease: leaseName(l.Warehouse), Epoch: epoch}, true
}

// leaseName names warehouse's lease.
func leaseName(warehouse string) string { return "agent:" + warehouse }

// pull long-polls one page of the agent's deltas and merges it with the
// agent's cursor in one transaction. The cursor is the agent's own
// ("{replica}@{version}"): an agent on a new incarnation reads it as the
// start and sends everything again.
func (h *Hub) pull(ctx context.Context, l *link, fence store.Fence) error {
	cursor, err := h.store.Meta(ctx, cursorKey(l.Warehouse))
	if err != nil {
		return err
	}
	wait := h.timing.PollWait
	l.mu.Lock()
	if l.pending || l.lastContact.IsZero() {
		wait = 0 // catching up, or the first exchange: say "online" at once
	}
	l.mu.Unlock()
	q := url.Values{"since": {cursor}, "limit": {fmt.Sprint(pullPage)}, "wait": {wait.String()}}
	var d sync.Deltas
	if err := l.get(ctx, "/v1/sync/deltas?"+q.Encode(), &d); err != nil {
		return err
	}
	op := &store.MergeOp{Entries: make([]store.Entry, len(d.Entries)), Cursor: d.Next, CursorKey: cursorKey(l.Warehouse), Now: time.Now()}
	op.Fence = fence
	for i, e := range d.Entries {
		op.Entries[i] = e.Stored()
	}
	for _, e := range d.Escrow {
		x, err := e.Stored()
		if err != nil {
			return fmt.Errorf("deltas: escrow of %s/%s: %w", e.Warehouse, e.SKU, err)
		}
		op.Escrow = append(op.Escrow, x)
	}
	if d.Next != cursor || len(op.Entries)+len(op.Escrow) > 0 {
		if _, err := h.store.Apply(ctx, &store.Batch{Merges: []*store.MergeOp{op}}); err != nil {
			return err
		}
	}
	l.mu.Lock()
	l.replica, l.lastContact, l.pending = d.Replica, time.Now(), d.More
	l.pulled += int64(len(d.Entries) + len(d.Escrow))
	l.mu.Unlock()
	return nil
}

func (h *Hub) pushLoop(ctx context.Context, l *link) {
	defer h.wg.Done()
	h.retry(ctx, l, "push", func(ctx context.Context) error {
		if _, serve := h.serves(ctx, l); !serve {
			return nil
		}
		changed := h.changed.Wait()
		more, err := h.push(ctx, l)
		if err != nil || more {
			return err
		}
		l.setErr("push", nil) // done for now: over, though the step now waits a while
		select {
		case <-changed:
		case <-time.After(pushInterval):
		case <-ctx.Done():
			return nil
		}
		select { // let more changes come: one push takes them all
		case <-time.After(pushGap):
		case <-ctx.Done():
		}
		return nil
	})
}

// push sends the agent the hub's entries it has not seen, after the hub
// cursor the agent stored. It reports whether more are waiting.
func (h *Hub) push(ctx context.Context, l *link) (bool, error) {
	var st sync.State
	if err := l.get(ctx, "/v1/sync/state", &st); err != nil {
		return false, err
	}
	l.mu.Lock()
	l.replica, l.lastContact = st.Replica, time.Now()
	l.mu.Unlock()
	replica := h.store.CursorID()
	since, err := sync.ParseCursor(st.HubCursor, replica)
	if err != nil {
		since = 0 // not ours: send everything, merging is idempotent
	}
	// The agent's own replica's entries go back too: if the hub holds a
	// higher one, the agent runs on an older copy of its database and must
	// start a new incarnation (the store's checkRestored). Normally they
	// change nothing there and cost one resend each.
	page, err := h.store.Deltas(ctx, since, pushPage, "")
	if err != nil {
		return false, err
	}
	if page.Next == since {
		return false, nil
	}
	req := sync.MergeRequest{Entries: make([]sync.Entry, len(page.Entries)), HubCursor: sync.FormatCursor(replica, page.Next)}
	for i, e := range page.Entries {
		req.Entries[i] = sync.Wire(e)
	}
	if st.Protocol >= 2 { // an older agent refuses a body with rights, and takes no part in channels
		for _, e := range page.Escrow {
			req.Escrow = append(req.Escrow, sync.WireEscrow(e))
		}
	}
	if st.Protocol >= 3 {
		for _, x := range page.Lines {
			if x.Warehouse == l.Warehouse { // another warehouse's lines are not its to pick
				req.Lines = append(req.Lines, sync.WireLine(x))
			}
		}
	}
	var resp sync.MergeResponse
	if err := l.post(ctx, "/v1/sync/merge", req, &resp); err != nil {
		return false, err
	}
	l.mu.Lock()
	l.lastContact = time.Now()
	l.pushed += int64(len(page.Entries) + len(req.Escrow) + len(req.Lines))
	l.mu.Unlock()
	return page.More, nil
}

// setErr records how loop ("pull" or "push") last ended: each loop's error
// stands until that loop succeeds, whatever the other does meanwhile.
func (l *link) setErr(loop string, err error) {
	msg := ""
	if err != nil {
		msg = loop + ": " + err.Error()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if loop == "pull" {
		l.pullErr = msg
	} else {
		l.pushErr = msg
	}
}

func (l *link) get(ctx context.Context, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, l.timing.PollWait+15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.URL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept-Encoding", "gzip")
	l.authorize(req)
	return l.do(req, out)
}

func (l *link) post(ctx context.Context, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.URL+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	l.authorize(req)
	return l.do(req, out)
}

func (l *link) authorize(req *http.Request) {
	if l.Token != "" {
		req.Header.Set("Authorization", "Bearer "+l.Token)
	}
}

func (l *link) do(req *http.Request, out any) error {
	resp, err := l.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(resp.Body)
		if err != nil {
			return fmt.Errorf("%s: %w", req.URL.Path, err)
		}
		defer gz.Close()
		body = gz
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(body, 512))
		err := fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, bytes.TrimSpace(msg))
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			return &refusedError{err: err}
		}
		return err
	}
	if err := json.NewDecoder(body).Decode(out); err != nil {
		return fmt.Errorf("%s: %w", req.URL.Path, err)
	}
	return nil
}

// failure says what a failed sync step means for the log, and whether it
// lasts: an agent refusing the hub's token, or entries the store refuses
// (store.ErrOutOfRange), stay so until someone mends them.
func failure(err error) (msg string, lasting bool) {
	switch {
	case errors.As(err, new(*refusedError)):
		return "agent refused the hub's token (unauthorized); check agent-tokens in the hub's config", true
	case errors.Is(err, store.ErrOutOfRange):
		return "agent sent totals past the bound the hub stores (see docs/SYNC.md); not merged", true
	case errors.Is(err, store.ErrFenced):
		return "another hub process took the agent's lease; this page was not merged", false
	}
	return "agent unreachable; retrying with backoff", false
}

// refusedError is an agent's 401 or 403: the hub's token for it is
// missing, wrong, expired or revoked.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return "unauthorized: " + e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// WarehouseStatus is a row of GET /v1/warehouses.
type WarehouseStatus struct {
	Warehouse   string     `json:"warehouse"`
	URL         string     `json:"url"`
	Replica     string     `json:"replica,omitempty"`
	Online      bool       `json:"online"`
	LastContact *time.Time `json:"last_contact"`
	// LagSeconds is how old the hub's view of the agent is: the time since
	// the last exchange (null before the first).
	LagSeconds *float64 `json:"lag_seconds"`
	Pending    bool     `json:"pending"` // its last page said more: catching up
	// Elsewhere: another hub process on the same PostgreSQL holds the
	// agent's lease and serves it; this process's view is not current.
	Elsewhere bool   `json:"served_elsewhere,omitempty"`
	Pulled    int64  `json:"entries_pulled"`
	Pushed    int64  `json:"entries_pushed"`
	LastError string `json:"last_error,omitempty"`
}

// joinErrs joins the loops' errors that are set.
func joinErrs(errs ...string) string {
	return strings.Join(slices.DeleteFunc(errs, func(e string) bool { return e == "" }), "; ")
}

// Knows reports whether warehouse is one of the hub's agents.
func (h *Hub) Knows(warehouse string) bool {
	if h.link(warehouse) != nil {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	h.discover(ctx, false)
	return h.link(warehouse) != nil
}

// WarehouseIDs lists the agents' warehouses, sorted.
func (h *Hub) WarehouseIDs() []string {
	links := h.linkList()
	ids := make([]string, len(links))
	for i, l := range links {
		ids[i] = l.Warehouse
	}
	sort.Strings(ids)
	return ids
}

// Warehouses reports every agent's link.
func (h *Hub) Warehouses() []WarehouseStatus {
	links := h.linkList()
	out := make([]WarehouseStatus, 0, len(links))
	for _, l := range links {
		l.mu.Lock()
		u := l.URL
		if l.slot != nil {
			u = UplinkURL // it dials the hub
		}
		w := WarehouseStatus{Warehouse: l.Warehouse, URL: u, Replica: l.replica, Pending: l.pending, Elsewhere: l.elsewhere.Load(),
			Pulled: l.pulled, Pushed: l.pushed, LastError: joinErrs(l.pullErr, l.pushErr)}
		if !l.lastContact.IsZero() {
			t := l.lastContact.UTC()
			lag := time.Since(l.lastContact).Seconds()
			w.LastContact, w.LagSeconds = &t, &lag
			w.Online = lag < (2*h.timing.PollWait).Seconds() && w.LastError == ""
		}
		l.mu.Unlock()
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Warehouse < out[j].Warehouse })
	return out
}

// Relay posts body to warehouse's agent at path with the hub's token for
// it and returns the agent's answer as it is; an error means the agent
// could not be reached (or answered nothing whole).
func (h *Hub) Relay(ctx context.Context, warehouse, path string, body []byte) (int, []byte, error) {
	l := h.link(warehouse)
	if l == nil {
		return 0, nil, fmt.Errorf("warehouse %q is not one of this hub's agents", warehouse)
	}
	ctx, cancel := context.WithTimeout(ctx, relayTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	l.authorize(req)
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, answer, err
}

// relayTimeout bounds a request relayed to an agent: a client waits for it.
const relayTimeout = 10 * time.Second
