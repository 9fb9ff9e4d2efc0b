package uplink

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// An agent dials out; the hub then sends it requests over that one
// connection, several at once (a long poll does not hold up the rest),
// and again after the agent reconnects.
func TestUplink(t *testing.T) {
	slot := NewSlot()
	var conns sync.WaitGroup
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer good" {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		conn, err := Accept(w, r)
		require.NoError(t, err)
		conns.Add(1)
		slot.Offer(conn)
	}))
	defer hub.Close()

	release := make(chan struct{})
	agent := http.NewServeMux()
	agent.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		<-release
		_, _ = io.WriteString(w, "slow")
	})
	agent.HandleFunc("GET /who", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "wh1 over "+r.Proto)
	})
	serve := func() (net.Conn, chan error) {
		conn, err := Dial(t.Context(), hub.URL, "wh1", "good", nil)
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- Serve(context.Background(), conn, agent) }()
		return conn, done
	}
	conn, served := serve()

	client := &http.Client{Transport: Transport(slot), Timeout: 10 * time.Second}
	get := func(path string) string {
		resp, err := client.Get("http://wh1" + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	slow := make(chan string)
	go func() { slow <- get("/slow") }()
	require.Equal(t, "wh1 over HTTP/2.0", get("/who"), "while /slow waits")
	close(release)
	require.Equal(t, "slow", <-slow)

	// The uplink drops; the agent dials again, and the hub's next request
	// goes over the new one.
	conn.Close()
	<-served
	_, served = serve()
	require.Eventually(t, func() bool {
		resp, err := client.Get("http://wh1/who")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond)

	_, err := Dial(t.Context(), hub.URL, "wh1", "bad", nil)
	var refused *RefusedError
	require.ErrorAs(t, err, &refused)
	require.True(t, refused.Lasting())
	require.Contains(t, refused.Error(), "bad token")
	_, err = Dial(t.Context(), "ftp://x", "wh1", "good", nil)
	require.ErrorContains(t, err, "want http(s)://host:port")

	// With no uplink, a request waits for one until its context ends.
	slot2 := NewSlot()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://wh2/who", nil)
	_, err = (&http.Client{Transport: Transport(slot2)}).Do(req)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

// A request to an agent with no uplink fails within dialWait, however
// long its own deadline: the transport dials on a context of its own,
// and a dial that waited for ever would leave a goroutine per request.
// Close ends the waits at once.
func TestSlot_DialIsBounded(t *testing.T) {
	slot := NewSlot()
	client := &http.Client{Transport: Transport(slot)}
	start := time.Now()
	_, err := client.Get("http://wh1/x")
	require.ErrorIs(t, err, ErrNoUplink)
	require.GreaterOrEqual(t, time.Since(start), dialWait)

	errs := make(chan error, 1)
	go func() {
		_, err := slot.Dial(context.Background(), "tcp", "x")
		errs <- err
	}()
	time.Sleep(20 * time.Millisecond) // let it wait; it must not need this to pass
	slot.Close()
	select {
	case err := <-errs:
		require.ErrorIs(t, err, ErrNoUplink)
	case <-time.After(time.Second):
		t.Fatal("Close did not end a waiting Dial")
	}

	// Offered wakes a loop backing off when the agent dials.
	slot3 := NewSlot()
	offered := slot3.Offered()
	a, b := net.Pipe()
	defer b.Close()
	slot3.Offer(a)
	select {
	case <-offered:
	default:
		t.Fatal("Offer did not wake Offered")
	}
}
