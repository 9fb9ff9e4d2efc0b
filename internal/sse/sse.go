// Package sse serves Server-Sent Events streams (SPEC §10) from a durable
// source: a client that reconnects with Last-Event-ID resumes where it
// left off with no gap, because every event is read again from the store,
// never from a memory ring that could overflow. A slow client holds only
// its own request: pages are read one at a time and written with a
// deadline.
package sse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Event is one event of a stream.
type Event struct {
	Type string `json:"type"` // the SSE event name: stock, alert, reset, …
	Data any    `json:"data"` // marshalled as JSON on one data line
}

// ErrReset is what a Source returns for a cursor it cannot resume from
// (another database's, say): the stream sends a reset event, telling the
// client to read the snapshot again, and continues from the start.
var ErrReset = errors.New("cursor cannot be resumed")

// Source reads the events past cursor ("" for the start): a page of them,
// the cursor after the page, and whether more wait past it.
type Source func(ctx context.Context, cursor string) (events []Event, next string, more bool, err error)

// Options tune a stream.
type Options struct {
	// Changed returns a channel closed at the next change of the source.
	Changed func() <-chan struct{}
	// Heartbeat is how often a comment line keeps an idle stream open
	// through proxies (default 15 s).
	Heartbeat time.Duration
	// WriteTimeout drops a client that does not take a page within it
	// (default 30 s).
	WriteTimeout time.Duration
	// Done ends the stream when closed: the server is shutting down, and
	// would otherwise wait for every client to leave.
	Done <-chan struct{}
	// NewState, when set, makes each stream's state reader: state beside
	// the durable events (the hub's warehouses, online now or not), read
	// when the stream starts, at each wake and every StateEvery (default
	// 1 s), its events sent without an id. A client that reconnects reads
	// it afresh, so it needs no cursor. The reader is the stream's own: it
	// may keep what it sent and return only what changed.
	NewState   func() func() []Event
	StateEvery time.Duration
}

// Serve streams src to the client from Last-Event-ID (or ?since=) until
// the client goes away. Each page's last event carries the cursor as its
// id: a client cut off within a page gets the whole page again, and every
// event is a state (a level now), so a repeat is harmless.
func Serve(w http.ResponseWriter, r *http.Request, src Source, opts Options) {
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 15 * time.Second
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 30 * time.Second
	}
	cursor := r.Header.Get("Last-Event-ID")
	if cursor == "" {
		cursor = r.URL.Query().Get("since")
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(opts.WriteTimeout))
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if write([]byte(": edgestock stream\n\n")) != nil {
		return
	}
	ctx := r.Context()
	heartbeat := time.NewTicker(opts.Heartbeat)
	defer heartbeat.Stop()
	var state func() []Event
	var stateTick <-chan time.Time
	if opts.NewState != nil {
		state = opts.NewState()
		if opts.StateEvery <= 0 {
			opts.StateEvery = time.Second
		}
		t := time.NewTicker(opts.StateEvery)
		defer t.Stop()
		stateTick = t.C
	}
	sendState := func() error {
		if state == nil {
			return nil
		}
		var page []byte
		for _, e := range state() {
			page = append(page, encode(e, "")...)
		}
		if len(page) == 0 {
			return nil
		}
		heartbeat.Reset(opts.Heartbeat)
		return write(page)
	}
	for {
		if sendState() != nil {
			return
		}
		var changed <-chan struct{}
		if opts.Changed != nil {
			changed = opts.Changed()
		}
		events, next, more, err := src(ctx, cursor)
		if errors.Is(err, ErrReset) {
			events, next, more, err = []Event{{Type: "reset", Data: map[string]string{
				"reason": "the stream cannot resume from this cursor: read the snapshot again; the stream continues from the start",
			}}}, "", true, nil
		}
		if err != nil {
			if ctx.Err() == nil {
				_ = write(encode(Event{Type: "error", Data: map[string]string{"message": err.Error()}}, ""))
			}
			return
		}
		if len(events) > 0 {
			var page []byte
			for i, e := range events {
				id := ""
				if i == len(events)-1 {
					id = next
				}
				page = append(page, encode(e, id)...)
			}
			if write(page) != nil {
				return
			}
			heartbeat.Reset(opts.Heartbeat)
		}
		cursor = next
		if more {
			continue
		}
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return
			case <-opts.Done:
				return
			case <-changed:
				waiting = false
			case <-heartbeat.C:
				if write([]byte(": keepalive\n\n")) != nil {
					return
				}
			case <-stateTick:
				if sendState() != nil {
					return
				}
			}
		}
	}
}

// encode renders one event: its id (none when ""), its name, its data.
func encode(e Event, id string) []byte {
	data, err := json.Marshal(e.Data)
	if err != nil {
		data, _ = json.Marshal(map[string]string{"message": fmt.Sprintf("event %s: %v", e.Type, err)})
	}
	var b []byte
	if id != "" {
		b = append(b, "id: "+id+"\n"...)
	}
	b = append(b, "event: "+e.Type+"\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// QueryToken lets a browser's EventSource, which cannot set headers, pass
// its bearer token as ?access_token=: the token moves to the
// Authorization header and out of the URL, so nothing logs it.
func QueryToken(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if tok := q.Get("access_token"); tok != "" {
			if r.Header.Get("Authorization") == "" {
				r.Header.Set("Authorization", "Bearer "+tok)
			}
			q.Del("access_token")
			r.URL.RawQuery = q.Encode()
		}
		h(w, r)
	}
}

// Filter keeps the events of some SKUs: those named (?sku=, repeatable),
// or starting with a prefix (?prefix=); the zero Filter keeps all.
type Filter struct {
	SKUs   map[string]bool
	Prefix string
}

// ParseFilter reads ?sku= and ?prefix=; valid says what a SKU may be.
func ParseFilter(q url.Values, valid func(string) bool) (Filter, error) {
	f := Filter{Prefix: q.Get("prefix")}
	for _, s := range q["sku"] {
		if !valid(s) {
			return f, fmt.Errorf("sku: %q is not a SKU", s)
		}
		if f.SKUs == nil {
			f.SKUs = map[string]bool{}
		}
		f.SKUs[s] = true
	}
	return f, nil
}

// Keep reports whether sku passes the filter.
func (f Filter) Keep(sku string) bool {
	return (f.SKUs == nil || f.SKUs[sku]) && strings.HasPrefix(sku, f.Prefix)
}
