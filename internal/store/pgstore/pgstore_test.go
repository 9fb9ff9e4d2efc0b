package pgstore

import (
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/internal/testenv"
)

// A hub process learns of another's commit on the same database from its
// notification, not from polling (made an hour long here).
func TestNotify_OtherProcess(t *testing.T) {
	old := pollInterval
	t.Cleanup(func() { pollInterval = old }) // last: after the stores closed
	pollInterval = time.Hour
	dsn := testenv.PostgresDSN(t)
	ctx := t.Context()
	logger := slog.New(slog.DiscardHandler)
	a, err := Open(ctx, dsn, func() {}, logger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	changed := make(chan struct{}, 16)
	b, err := Open(ctx, dsn, func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}, logger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	wait := func(what string) {
		t.Helper()
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatal(what)
		}
	}
	wait("no first look at the database") // b listens from now on

	_, err = a.Apply(ctx, &store.Batch{Events: []store.Event{{Device: "erp", ID: "1", BodyHash: []byte{1}, Type: "receive",
		Warehouse: "wh1", Location: "default", SKU: "N-1", Qty: 2, Delta: 2, Source: "http", ReceivedAt: time.Now()}}})
	require.NoError(t, err)
	wait("the other process's commit went unnoticed")
}

// A quiet database: the listener times out every pollInterval, looks, and
// goes on listening on the same connection, logging nothing.
func TestNotify_QuietTimeouts(t *testing.T) {
	old := pollInterval
	t.Cleanup(func() { pollInterval = old })
	pollInterval = 20 * time.Millisecond
	dsn := testenv.PostgresDSN(t)
	var logged strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logged.Write(p)
	}), nil))
	db, err := Open(t.Context(), dsn, func() {}, logger)
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond) // some fifteen timeouts
	require.NoError(t, db.Close())
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, logged.String())
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// The listening connection dies (terminated by the server): the watcher
// connects again and another process's commit after that still wakes it,
// by notification (polling is an hour).
func TestNotify_Reconnect(t *testing.T) {
	old := pollInterval
	t.Cleanup(func() { pollInterval = old })
	pollInterval = time.Hour
	dsn := testenv.PostgresDSN(t)
	ctx := t.Context()
	logger := slog.New(slog.DiscardHandler)
	a, err := Open(ctx, dsn, func() {}, logger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	var woken atomic.Int64
	b, err := Open(ctx, dsn, func() { woken.Add(1) }, logger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })

	// b's listening backend once it waits for notifications (it listened
	// and took its first look), 0 until then.
	listener := func() int32 {
		var pid int32
		err := a.pool.QueryRow(ctx, `SELECT COALESCE(MAX(pid), 0) FROM pg_stat_activity
			WHERE application_name = $1 AND state = 'idle' AND query LIKE 'SELECT COALESCE(MAX(version)%'`, b.listenerName()).Scan(&pid)
		require.NoError(t, err)
		return pid
	}
	require.Eventually(t, func() bool { return listener() != 0 && woken.Load() > 0 }, 10*time.Second, 10*time.Millisecond,
		"b never listened")
	first := listener()
	var terminated bool
	require.NoError(t, a.pool.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, first).Scan(&terminated))
	require.True(t, terminated)
	require.Eventually(t, func() bool { pid := listener(); return pid != 0 && pid != first }, 10*time.Second, 10*time.Millisecond,
		"b did not listen again after its connection was terminated")
	// Listening again, b looked at the database once (nothing changed: no
	// wake-up); from here on only a notification can wake it. A missed one
	// would go unnoticed for pollInterval.
	before := woken.Load()
	_, err = a.Apply(ctx, &store.Batch{Events: []store.Event{{Device: "erp", ID: "1", BodyHash: []byte{1}, Type: "receive",
		Warehouse: "wh1", Location: "default", SKU: "N-1", Qty: 2, Delta: 2, Source: "http", ReceivedAt: time.Now()}}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return woken.Load() > before }, 10*time.Second, 10*time.Millisecond,
		"a commit after the reconnect went unnoticed")
}
