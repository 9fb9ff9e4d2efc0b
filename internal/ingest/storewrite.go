package ingest

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/edgestock/edgestock/internal/httpjson"
	"github.com/edgestock/edgestock/internal/store"
)

// WriteTimeout bounds how long an HTTP write waits for its commit. A
// healthy store commits in milliseconds (a busy one waits at most its 5 s
// busy timeout); past this the store is failing (full disk, I/O errors, a
// lock held elsewhere), and the client gets 503 store_unavailable to retry
// later instead of a request that never ends. The batch stays queued and
// commits when the store recovers; a retry with the same ids dedupes.
const WriteTimeout = 10 * time.Second

// Failing reports a store's last commit error (nil while it commits).
type Failing interface{ Err() error }

// StoreWrite starts an HTTP write: the context to wait for its commit
// under, or false after answering 503 at once when the store is known to
// be failing (queueing more would only pile up behind the failure).
func StoreWrite(w http.ResponseWriter, r *http.Request, st Failing) (context.Context, context.CancelFunc, bool) {
	if err := st.Err(); err != nil {
		httpjson.Error(w, http.StatusServiceUnavailable, "store_unavailable", "the store is failing, nothing was written; retry later: %v", err)
		return nil, nil, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), WriteTimeout)
	return ctx, cancel, true
}

// WriteStoreError answers a write that did not commit: 422 when it never
// can (a total past store.MaxTotal), else 503 to retry.
func WriteStoreError(w http.ResponseWriter, err error, st Failing) {
	if errors.Is(err, store.ErrOutOfRange) { // retrying cannot help
		httpjson.Error(w, http.StatusUnprocessableEntity, "out_of_range", "refused, nothing written: %v", err)
		return
	}
	if errors.Is(err, context.DeadlineExceeded) {
		cause := "no error reported yet"
		if serr := st.Err(); serr != nil {
			cause = serr.Error()
		}
		httpjson.Error(w, http.StatusServiceUnavailable, "store_unavailable",
			"the store did not commit within %s (%s): not acknowledged, retry later", WriteTimeout, cause)
		return
	}
	httpjson.Error(w, http.StatusServiceUnavailable, "store_unavailable", "not committed, retry: %v", err)
}
