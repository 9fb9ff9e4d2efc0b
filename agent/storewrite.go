package agent

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/edgestock/edgestock/internal/store"
)

// storeWriteTimeout bounds how long an HTTP write waits for its commit. A
// healthy store commits in milliseconds (a busy one waits at most its 5 s
// busy timeout); past this the store is failing (full disk, I/O errors, a
// lock held elsewhere), and the client gets 503 store_unavailable to retry
// later instead of a request that never ends. The batch stays queued and
// commits when the store recovers; a retry with the same ids dedupes.
const storeWriteTimeout = 10 * time.Second

// storeWrite starts an HTTP write: the context to wait for its commit
// under, or false after answering 503 at once when the store is known to
// be failing (queueing more would only pile up behind the failure).
func (a *Agent) storeWrite(w http.ResponseWriter, r *http.Request) (context.Context, context.CancelFunc, bool) {
	if err := a.store.Err(); err != nil {
		writeError(w, http.StatusServiceUnavailable, "store_unavailable", "the store is failing, nothing was written; retry later: %v", err)
		return nil, nil, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeWriteTimeout)
	return ctx, cancel, true
}

// writeStoreError answers a write that did not commit: 422 when it never
// can (a total past store.MaxTotal), else 503 to retry.
func (a *Agent) writeStoreError(w http.ResponseWriter, err error) {
	if errors.Is(err, store.ErrOutOfRange) { // retrying cannot help
		writeError(w, http.StatusUnprocessableEntity, "out_of_range", "refused, nothing written: %v", err)
		return
	}
	if errors.Is(err, context.DeadlineExceeded) {
		cause := "no error reported yet"
		if serr := a.store.Err(); serr != nil {
			cause = serr.Error()
		}
		writeError(w, http.StatusServiceUnavailable, "store_unavailable",
			"the store did not commit within %s (%s): not acknowledged, retry later", storeWriteTimeout, cause)
		return
	}
	writeError(w, http.StatusServiceUnavailable, "store_unavailable", "not committed, retry: %v", err)
}
