package sse

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// counter is a Source over the numbers 1..n, two per page; a cursor is
// the last number sent, "x" one it cannot resume.
type counter struct {
	mu      stdsync.Mutex
	n       int
	changed chan struct{}
}

func (c *counter) add() {
	c.mu.Lock()
	c.n++
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *counter) wait() <-chan struct{} { c.mu.Lock(); defer c.mu.Unlock(); return c.changed }

func (c *counter) read(_ context.Context, cursor string) ([]Event, string, bool, error) {
	if cursor == "x" {
		return nil, "", false, ErrReset
	}
	from, _ := strconv.Atoi(cursor)
	c.mu.Lock()
	n := c.n
	c.mu.Unlock()
	var out []Event
	i := from
	for ; i < n && len(out) < 2; i++ {
		out = append(out, Event{Type: "n", Data: i + 1})
	}
	return out, strconv.Itoa(i), i < n, nil
}

// lines reads a stream's lines until it has want events.
func lines(t *testing.T, url, lastID string, want int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out []string
	sc := bufio.NewScanner(resp.Body)
	for events := 0; events < want && sc.Scan(); {
		if l := sc.Text(); l != "" {
			out = append(out, l)
			if strings.HasPrefix(l, "data: ") {
				events++
			}
		}
	}
	return out
}

// Pages carry their cursor on their last event; a resume starts after it,
// a cursor the source cannot resume gets a reset first, and a client
// waiting for news gets it when the source changes.
func TestServe(t *testing.T) {
	c := &counter{n: 3, changed: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Serve(w, r, c.read, Options{Changed: c.wait, Heartbeat: time.Hour})
	}))
	defer srv.Close()

	require.Equal(t, []string{": edgestock stream",
		"event: n", "data: 1", "id: 2", "event: n", "data: 2",
		"id: 3", "event: n", "data: 3"}, lines(t, srv.URL, "", 3))
	require.Equal(t, []string{": edgestock stream", "id: 3", "event: n", "data: 3"}, lines(t, srv.URL, "2", 1), "resumed after 2")
	got := lines(t, srv.URL+"?since=x", "", 2)
	require.Equal(t, "event: reset", got[1])
	require.Equal(t, "data: 1", got[4], "then from the start")

	done := make(chan []string)
	go func() { done <- lines(t, srv.URL, "3", 1) }()
	time.Sleep(50 * time.Millisecond) // let it wait; it must not need this to pass
	c.add()
	require.Equal(t, []string{": edgestock stream", "id: 4", "event: n", "data: 4"}, <-done)
}

func TestFilterAndQueryToken(t *testing.T) {
	f, err := ParseFilter(url.Values{"sku": {"A-1", "B-2"}, "prefix": {"A"}}, func(s string) bool { return !strings.Contains(s, " ") })
	require.NoError(t, err)
	require.True(t, f.Keep("A-1"))
	require.False(t, f.Keep("B-2"), "named but not of the prefix")
	require.False(t, f.Keep("A-3"), "of the prefix but not named")
	require.True(t, Filter{}.Keep("anything"))
	_, err = ParseFilter(url.Values{"sku": {"a b"}}, func(s string) bool { return !strings.Contains(s, " ") })
	require.Error(t, err)

	var auth, query string
	h := QueryToken(func(_ http.ResponseWriter, r *http.Request) {
		auth, query = r.Header.Get("Authorization"), r.URL.RawQuery
	})
	h(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/stream?access_token=es1.t&sku=A", nil))
	require.Equal(t, "Bearer es1.t", auth)
	require.Equal(t, "sku=A", query, "the token leaves the URL")
}

// State events go out at the start and whenever the state reader has
// news, without an id, between the durable pages.
func TestServe_State(t *testing.T) {
	c := &counter{n: 1, changed: make(chan struct{})}
	var mu stdsync.Mutex
	online := "yes"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Serve(w, r, c.read, Options{Changed: c.wait, Heartbeat: time.Hour, StateEvery: 10 * time.Millisecond,
			NewState: func() func() []Event {
				sent := ""
				return func() []Event {
					mu.Lock()
					defer mu.Unlock()
					if online == sent {
						return nil
					}
					sent = online
					return []Event{{Type: "warehouse", Data: online}}
				}
			}})
	}))
	defer srv.Close()

	require.Equal(t, []string{": edgestock stream", "event: warehouse", `data: "yes"`,
		"id: 1", "event: n", "data: 1"}, lines(t, srv.URL, "", 2))
	done := make(chan []string)
	go func() { done <- lines(t, srv.URL, "1", 2) }()
	time.Sleep(50 * time.Millisecond) // let it wait; it must not need this to pass
	mu.Lock()
	online = "no" // no change of the source: the tick finds it
	mu.Unlock()
	require.Equal(t, []string{": edgestock stream", "event: warehouse", `data: "yes"`, "event: warehouse", `data: "no"`}, <-done)
}

// A client that stops reading holds only its own request: the others
// get every event, and its stream ends at the write deadline instead of
// buffering pages without bound.
func TestServe_SlowConsumer(t *testing.T) {
	c := &counter{n: 0, changed: make(chan struct{})}
	ended := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Serve(w, r, func(ctx context.Context, cursor string) ([]Event, string, bool, error) {
			events, next, more, err := c.read(ctx, cursor)
			for i := range events { // big events: the socket buffers fill fast
				events[i].Data = strings.Repeat("x", 16<<10)
			}
			return events, next, more, err
		}, Options{Changed: c.wait, Heartbeat: time.Hour, WriteTimeout: 200 * time.Millisecond})
		ended <- r.URL.Query().Get("who")
	}))
	defer srv.Close()

	// The slow client asks and never reads a byte.
	slow, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	defer slow.Close()
	_, err = slow.Write([]byte("GET /?who=slow HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)

	const n = 1000 // 1,000 × 16 KiB = 16 MiB: far past any socket buffer
	for range n {
		c.add()
	}
	got := lines(t, srv.URL+"?who=fast", "", n)
	events := 0
	for _, l := range got {
		if strings.HasPrefix(l, "data: ") {
			events++
		}
	}
	require.Equal(t, n, events, "the reading client got every event")
	deadline := time.After(30 * time.Second)
	for who := ""; who != "slow"; { // the fast one ends too, once it hung up
		select {
		case who = <-ended:
		case <-deadline:
			t.Fatal("the stream of a client that reads nothing never ended")
		}
	}
}

// An idle stream gets a comment line every Heartbeat, so proxies keep it
// open; ?since= resumes as Last-Event-ID does.
func TestServe_HeartbeatAndSince(t *testing.T) {
	c := &counter{n: 3, changed: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Serve(w, r, c.read, Options{Changed: c.wait, Heartbeat: 20 * time.Millisecond})
	}))
	defer srv.Close()
	require.Equal(t, []string{": edgestock stream", "id: 3", "event: n", "data: 3"}, lines(t, srv.URL+"?since=2", "", 1), "resumed after 2")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"?since=3", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	keepalives := 0
	for keepalives < 2 && sc.Scan() {
		if sc.Text() == ": keepalive" {
			keepalives++
		}
	}
	require.Equal(t, 2, keepalives, "an idle stream keeps sending keepalives")
}
