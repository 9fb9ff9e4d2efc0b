package hub

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	stdsync "sync"
	"time"

	"github.com/edgestock/edgestock/internal/backoff"
	"github.com/edgestock/edgestock/internal/sse"
	"github.com/edgestock/edgestock/internal/store"
)

// Webhook is an endpoint the hub pushes its changes to (SPEC §10): the
// events Events names (stock, ats, order, alert; none: stock events, or
// with Channel the channel's ats events), in pages signed with Secret,
// each page retried until delivered, or until MaxAttempts fail when it
// is not 0.
type Webhook struct {
	Name, URL, Secret, Channel string
	Events                     []string
	MaxAttempts                int
}

// WebhookEvents are the event types a webhook may ask for.
var WebhookEvents = []string{"stock", "ats", "order", "alert"}

// source is what the webhook reads of the hub's changes: ats events and
// orders of its channel only, when it names one.
func (h Webhook) source() sourceOptions {
	if len(h.Events) == 0 {
		return stockOrATS(h.Channel)
	}
	o := sourceOptions{stock: slices.Contains(h.Events, "stock"), orders: slices.Contains(h.Events, "order"),
		alerts: slices.Contains(h.Events, "alert"), ats: slices.Contains(h.Events, "ats")}
	if h.Channel != "" && (slices.Contains(h.Events, "ats") || o.orders) {
		o.channels = []string{h.Channel}
	}
	return o
}

// Webhook delivery tuning.
const (
	webhookTimeout = 10 * time.Second
	// SignatureHeader carries "sha256=" + hex(HMAC-SHA256(secret, body)).
	SignatureHeader = "X-Edgestock-Signature"
	// DeliveryHeader carries the delivery id: the same for every attempt
	// of a page, so receivers can drop repeats.
	DeliveryHeader = "X-Edgestock-Delivery"
)

// Meta keys of the webhooks' durable state.
const (
	webhookCursorKey = "webhook:"      // + name: the cursor after the last page delivered
	webhookDeadKey   = "webhook_dead:" // + name + ":" + delivery id: a page given up on
)

// WebhookPayload is the body of a delivery.
type WebhookPayload struct {
	Webhook  string      `json:"webhook"`
	Delivery string      `json:"delivery"`
	Events   []sse.Event `json:"events"`
}

// DeadLetter is a page given up on after MaxAttempts.
type DeadLetter struct {
	Webhook  string          `json:"webhook"`
	Delivery string          `json:"delivery"`
	Attempts int             `json:"attempts"`
	Error    string          `json:"error"`
	At       time.Time       `json:"at"`
	Payload  json.RawMessage `json:"payload"`
}

// WebhookStatus is a webhook's delivery state in this process.
type WebhookStatus struct {
	Name      string   `json:"name"`
	URL       string   `json:"url"`
	Channel   string   `json:"channel,omitempty"`
	Events    []string `json:"events,omitempty"`
	Active    bool     `json:"active"` // this process delivers it (on PostgreSQL one process does)
	Cursor    string   `json:"cursor"`
	Delivered int64    `json:"delivered"`
	Failed    int64    `json:"failed_attempts"`
	Dead      int64    `json:"dead_letters"`
	LastError string   `json:"last_error,omitempty"`
}

// webhookStore is what webhooks need of the hub's store.
type webhookStore interface {
	Store
	MetaPrefix(ctx context.Context, prefix string) (map[string]string, error)
}

// webhooks delivers every configured webhook.
type webhooks struct {
	api    *API
	store  webhookStore
	client *http.Client
	retry  time.Duration // backoff cap
	state  []*webhookState
	wg     stdsync.WaitGroup
	cancel context.CancelFunc
}

type webhookState struct {
	Webhook
	mu     stdsync.Mutex
	status WebhookStatus
}

func (s *webhookState) update(fn func(*WebhookStatus)) {
	s.mu.Lock()
	fn(&s.status)
	s.mu.Unlock()
}

// statuses reports every webhook's state (metrics).
func (w *webhooks) statuses() []WebhookStatus {
	out := make([]WebhookStatus, len(w.state))
	for i, s := range w.state {
		out[i] = s.snapshot()
	}
	return out
}

func (s *webhookState) snapshot() WebhookStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

func newWebhooks(api *API, st webhookStore, hooks []Webhook, retry time.Duration) *webhooks {
	w := &webhooks{api: api, store: st, retry: retry, client: &http.Client{Timeout: webhookTimeout}}
	for _, h := range hooks {
		w.state = append(w.state, &webhookState{Webhook: h, status: WebhookStatus{Name: h.Name, URL: h.URL, Channel: h.Channel, Events: h.Events}})
	}
	return w
}

// Open starts a delivery loop per webhook.
func (w *webhooks) Open() {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	for _, s := range w.state {
		w.wg.Go(func() { w.loop(ctx, s) })
	}
}

// Close stops the loops; a page being delivered is delivered again by the
// next process to run (its cursor was not saved).
func (w *webhooks) Close() {
	if w.cancel != nil {
		w.cancel()
	}
	w.wg.Wait()
}

// loop delivers s while this process holds it (always, on SQLite): its
// pages from the saved cursor, each until delivered or given up on, the
// cursor saved after each with any dead letter.
func (w *webhooks) loop(ctx context.Context, s *webhookState) {
	follower{api: w.api, store: w.store, key: webhookCursorKey + s.Name, src: s.source(),
		handle: func(ctx context.Context, events []sse.Event, next string) ([]*store.MergeOp, error) {
			body, _ := json.Marshal(WebhookPayload{Webhook: s.Name, Delivery: next, Events: events}) // events always marshal
			dead := w.attempt(ctx, s, next, body)
			if dead == nil {
				return nil, nil
			}
			if ctx.Err() != nil {
				return nil, ctx.Err() // stopped, not given up on: sent again next time
			}
			s.update(func(st *WebhookStatus) { st.Dead++ })
			record, _ := json.Marshal(dead)
			return []*store.MergeOp{{Cursor: string(record), CursorKey: webhookDeadKey + s.Name + ":" + next, Now: time.Now()}}, nil
		},
		active: func(on bool) { s.update(func(st *WebhookStatus) { st.Active = on }) },
		failed: func(err error) { s.update(func(st *WebhookStatus) { st.LastError = err.Error() }) },
		saved:  func(cursor string) { s.update(func(st *WebhookStatus) { st.Cursor = cursor }) },
	}.run(ctx)
}

// attempt posts body until a 2xx, with backoff and jitter, at most
// MaxAttempts times when it is not 0; it returns the dead letter when it
// gives up (or ctx ends), nil once delivered.
func (w *webhooks) attempt(ctx context.Context, s *webhookState, delivery string, body []byte) *DeadLetter {
	mac := hmac.New(sha256.New, []byte(s.Secret))
	mac.Write(body)
	signature := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	wait := backoff.New(retryMin, w.retry)
	var last error
	n := 1
	for ; ; n++ {
		if last = w.post(ctx, s.URL, delivery, signature, body); last == nil {
			s.update(func(st *WebhookStatus) { st.Delivered++; st.LastError = "" })
			return nil
		}
		s.update(func(st *WebhookStatus) { st.Failed++; st.LastError = last.Error() })
		if n == s.MaxAttempts || !wait.Sleep(ctx) {
			break
		}
	}
	return &DeadLetter{Webhook: s.Name, Delivery: delivery, Attempts: n, Error: last.Error(), At: time.Now().UTC(), Payload: body}
}

func (w *webhooks) post(ctx context.Context, url, delivery, signature string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(DeliveryHeader, delivery)
	req.Header.Set(SignatureHeader, signature)
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// handleWebhookDeliveries reports each webhook's state in this process
// and every dead letter (SPEC §10).
func (a *API) handleWebhookDeliveries(w http.ResponseWriter, r *http.Request) {
	status := []WebhookStatus{}
	dead := []DeadLetter{}
	if a.Webhooks != nil {
		for _, s := range a.Webhooks.state {
			status = append(status, s.snapshot())
		}
		records, err := a.Webhooks.store.MetaPrefix(r.Context(), webhookDeadKey)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "store_error", "%v", err)
			return
		}
		for _, v := range records {
			var d DeadLetter
			if json.Unmarshal([]byte(v), &d) == nil {
				dead = append(dead, d)
			}
		}
		sort.Slice(dead, func(i, j int) bool { return dead[i].At.Before(dead[j].At) })
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": status, "dead_letters": dead})
}
