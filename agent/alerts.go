package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgestock/edgestock/internal/backoff"
	"github.com/edgestock/edgestock/internal/store"
)

// Threshold is a SKU's low-stock rule: low at or below Low, restocked again
// at or above Restock (Restock > Low: the gap is the hysteresis that keeps
// a level wobbling around the threshold from alerting on every sale).
type Threshold struct {
	Low, Restock int64
}

// thresholds implements store.LowStockRule: a default plus per-SKU
// overrides from a watched CSV (sku,low[,restock]).
type thresholds struct {
	def       atomic.Pointer[Threshold] // swapped on reload
	overrides *watchedFile[map[string]Threshold]
}

var _ store.LowStockRule = (*thresholds)(nil)

func (t *thresholds) get(sku string) Threshold {
	def := *t.def.Load()
	th, ok := t.overrides.Get()[sku]
	if !ok {
		return def
	}
	if th.Restock == 0 { // no restock column: the configured margin, as it is now
		th.Restock = th.Low + def.Restock - def.Low
	}
	return th
}

// Low implements store.LowStockRule.
func (t *thresholds) Low(sku string, wasLow bool, available int64) bool {
	th := t.get(sku)
	if wasLow {
		return available < th.Restock
	}
	return available <= th.Low
}

// parseThresholds reads "sku,low[,restock]" with a header; a row without
// restock leaves it 0, for get to apply the configured margin.
func parseThresholds(r io.Reader) (map[string]Threshold, error) {
	out := map[string]Threshold{}
	err := eachSKURow(r, []string{"low"}, []string{"restock"}, func(line int, sku string, field func(string) string) error {
		low, err := strconv.ParseInt(field("low"), 10, 64)
		if err != nil || low < 0 {
			return fmt.Errorf("line %d: low %q must be an integer >= 0", line, field("low"))
		}
		th := Threshold{Low: low}
		if field("restock") != "" {
			if th.Restock, err = strconv.ParseInt(field("restock"), 10, 64); err != nil || th.Restock <= low {
				return fmt.Errorf("line %d: restock %q must be an integer above low %d", line, field("restock"), low)
			}
		}
		out[sku] = th
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AlertView is an alert as published and posted to webhooks. ID is stable
// across redeliveries: consumers dedupe on it.
type AlertView struct {
	ID        string `json:"id"`
	Kind      string `json:"kind"`
	Warehouse string `json:"warehouse"`
	SKU       string `json:"sku,omitempty"`
	Location  string `json:"location,omitempty"`
	Device    string `json:"device,omitempty"`
	Available *int64 `json:"available,omitempty"` // low_stock, restocked
	OnHand    *int64 `json:"on_hand,omitempty"`   // negative_stock
	// Unallotted is, for allotment_shortfall, what the warehouse owns
	// after the sale: below zero by the units its channels were promised.
	Unallotted *int64 `json:"unallotted,omitempty"`
	// DaysOfCover and LeadTimeDays are, for stockout_risk and
	// stockout_risk_cleared, the days the stock lasts at the expected
	// demand (absent: none expected) and the SKU's lead time; Available
	// is then the stock position, min(available, on_hand).
	DaysOfCover  *float64  `json:"days_of_cover,omitempty"`
	LeadTimeDays *float64  `json:"lead_time_days,omitempty"`
	Expected     int64     `json:"expected_seq,omitempty"`
	Got          int64     `json:"got_seq,omitempty"`
	At           time.Time `json:"at"`
}

func alertView(a store.Alert) AlertView {
	v := AlertView{ID: fmt.Sprintf("%s:%d", a.Warehouse, a.Seq), Kind: a.Kind, Warehouse: a.Warehouse, SKU: a.SKU,
		Location: a.Location, Device: a.Device, Expected: a.Expected, Got: a.Got, At: a.CreatedAt}
	level := a.Level
	switch a.Kind {
	case store.AlertLowStock, store.AlertRestocked:
		v.Available = &level
	case store.AlertNegativeStock:
		v.OnHand = &level
	case store.AlertShortfall:
		v.Unallotted = &level
	case store.AlertStockoutRisk, store.AlertStockoutRiskCleared:
		v.Available = &level
		lead := a.LeadTimeDays
		v.LeadTimeDays = &lead
		if cover := round3(a.DaysOfCover); cover >= 0 { // -1: no demand expected
			v.DaysOfCover = &cover
		}
	}
	return v
}

// syncPublisher publishes and reports whether the broker took the message.
type syncPublisher interface {
	PublishSync(ctx context.Context, m outbound) error
}

// alertSink delivers alerts to one destination.
type alertSink interface {
	// name keys the sink's durable cursor.
	name() string
	deliver(ctx context.Context, a AlertView) error
}

type mqttAlertSink struct {
	pub   syncPublisher
	topic string
}

func (s mqttAlertSink) name() string { return "alerts:mqtt" }

func (s mqttAlertSink) deliver(ctx context.Context, a AlertView) error {
	body, _ := json.Marshal(a) // an AlertView always marshals
	return s.pub.PublishSync(ctx, outbound{Topic: s.topic, Payload: body, QoS: 1})
}

type webhookSink struct {
	url    string
	client *http.Client
}

func (s webhookSink) name() string { return "alerts:webhook:" + s.url }

func (s webhookSink) deliver(ctx context.Context, a AlertView) error {
	body, _ := json.Marshal(a)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", a.ID)
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook %s: status %d", s.url, resp.StatusCode)
	}
	return nil
}

// Delivery tuning.
const (
	alertBatch     = 100
	alertPoll      = time.Second // a fallback: commits wake the sinks at once
	alertRetryMin  = 200 * time.Millisecond
	alertRetryMax  = 30 * time.Second
	webhookTimeout = 10 * time.Second
)

// alertDispatcher runs one delivery loop per sink. Each loop reads the
// outbox after its durable cursor, delivers in order, retries a failing
// sink with backoff and jitter for as long as it takes, and advances the
// cursor only after a delivery succeeded: an alert is never skipped, and
// after a crash at most the one in flight is delivered again (same id).
type alertDispatcher struct {
	store  *store.DB
	sinks  []alertSink
	wake   []chan struct{}
	logger *slog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newAlertDispatcher(st *store.DB, sinks []alertSink, logger *slog.Logger) *alertDispatcher {
	d := &alertDispatcher{store: st, sinks: sinks, logger: logger}
	for range sinks {
		d.wake = append(d.wake, make(chan struct{}, 1))
	}
	return d
}

func (d *alertDispatcher) Open() {
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	for i, s := range d.sinks {
		d.wg.Add(1)
		go d.run(ctx, s, d.wake[i])
	}
}

// Wake tells every sink there is something new; it never blocks.
func (d *alertDispatcher) Wake() {
	for _, w := range d.wake {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

func (d *alertDispatcher) Close() {
	if d.cancel != nil {
		d.cancel()
		d.wg.Wait()
	}
}

func (d *alertDispatcher) run(ctx context.Context, s alertSink, wake <-chan struct{}) {
	defer d.wg.Done()
	logger := d.logger.With("sink", s.name())
	tick := time.NewTicker(alertPoll)
	defer tick.Stop()
	var errs distinct
	for {
		if err := d.drain(ctx, s, logger); ctx.Err() == nil && errs.changed(err) {
			logger.Error("alert delivery stopped", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-tick.C:
		}
	}
}

// drain delivers everything after the cursor.
func (d *alertDispatcher) drain(ctx context.Context, s alertSink, logger *slog.Logger) error {
	cursor, err := d.store.Cursor(ctx, s.name())
	if err != nil {
		return err
	}
	for {
		alerts, err := d.store.Alerts(ctx, cursor, alertBatch)
		if err != nil || len(alerts) == 0 {
			return err
		}
		for _, a := range alerts {
			if err := d.deliver(ctx, s, alertView(a), logger); err != nil {
				return err
			}
			cursor = a.Seq
			if err := d.store.SetCursor(ctx, s.name(), cursor); err != nil {
				return err
			}
		}
	}
}

// deliver retries one alert until it is delivered or ctx ends.
func (d *alertDispatcher) deliver(ctx context.Context, s alertSink, a AlertView, logger *slog.Logger) error {
	wait := backoff.New(alertRetryMin, alertRetryMax)
	for attempt := 1; ; attempt++ {
		err := s.deliver(ctx, a)
		if err == nil {
			if attempt > 1 {
				logger.Info("alert delivered after retries", "alert", a.ID, "attempts", attempt)
			}
			return nil
		}
		if attempt == 1 || attempt%10 == 0 {
			logger.Warn("alert delivery failed; retrying", "alert", a.ID, "attempt", attempt, "err", err)
		}
		if !wait.Sleep(ctx) {
			return errors.Join(ctx.Err(), err)
		}
	}
}
