package ingest

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/internal/httpjson"
)

// EventsResponse is the body of POST /v1/events.
type EventsResponse struct {
	Results []Result `json:"results"`
}

// ServeEvents serves POST /v1/events for both roles: the body is events as
// a device sends them on its events topic, msg names the source, the
// warehouse, the device and the receive time. Each event gets its result
// once it is durable; a body over MaxHTTPBody is refused too_large and
// quarantined with its first bytes, like an oversized MQTT payload.
func (in *Ingester) ServeEvents(w http.ResponseWriter, r *http.Request, msg drivers.Message, st Failing) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxHTTPBody))
	var items []drivers.Item
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		size := fmt.Sprintf("more than %d bytes", MaxHTTPBody) // the rest is not read
		if r.ContentLength > 0 {
			size = fmt.Sprintf("%d bytes", r.ContentLength)
		}
		items = []drivers.Item{{Rejected: drivers.Reject("", drivers.ReasonTooLarge, "body of %s: at most %d (first %d bytes kept)",
			size, MaxHTTPBody, quarantineSample), Raw: drivers.Sample(body)}}
	case err != nil:
		httpjson.Error(w, http.StatusBadRequest, "bad_body", "read body: %v", err)
		return
	default:
		msg.Payload = body
	}
	ctx, cancel, ok := StoreWrite(w, r, st)
	if !ok {
		return
	}
	defer cancel()
	results, err := await(ctx, func(done func([]Result, error)) {
		if items != nil {
			in.IngestItems("events", msg, items, done)
		} else {
			in.Ingest("events", msg, done)
		}
	})
	if r.Context().Err() != nil {
		return // client gone; the batch still commits and a retry dedupes
	}
	if err != nil {
		WriteStoreError(w, err, st)
		return
	}
	status := http.StatusOK
	if tooLarge != nil {
		status = http.StatusRequestEntityTooLarge
	} else if len(results) == 1 && results[0].Reason == drivers.ReasonBadJSON {
		status = http.StatusBadRequest
	}
	httpjson.Write(w, status, EventsResponse{Results: results})
}
