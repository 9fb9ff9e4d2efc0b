package testenv

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// StreamEvent is one Server-Sent Event read off a stream.
type StreamEvent struct {
	ID, Type string
	Data     json.RawMessage
}

// Stream opens a Server-Sent Events stream at url, with Last-Event-ID
// lastID unless "", and sends its events until the test ends. Another
// status than 200 is returned with no events.
func Stream(tb testing.TB, url, lastID string) (int, <-chan StreamEvent) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(tb, err)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(tb, err)
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	require.Equal(tb, "text/event-stream", resp.Header.Get("Content-Type"))
	out := make(chan StreamEvent, 1000)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		var e StreamEvent
		for sc.Scan() {
			switch l := sc.Text(); {
			case l == "" && e.Type != "":
				out <- e
				e = StreamEvent{}
			case strings.HasPrefix(l, "id: "):
				e.ID = l[len("id: "):]
			case strings.HasPrefix(l, "event: "):
				e.Type = l[len("event: "):]
			case strings.HasPrefix(l, "data: "):
				e.Data = json.RawMessage(l[len("data: "):])
			}
		}
	}()
	return http.StatusOK, out
}
