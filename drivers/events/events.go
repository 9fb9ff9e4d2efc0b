// Package events is the generic JSON event driver (SPEC §2–§3): a payload is
// one event object or an array of up to drivers.MaxBatch of them.
package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/edgestock/edgestock/drivers"
)

func init() {
	drivers.Register(drivers.Registration{Name: "events", Topic: "events", New: New})
}

// Driver decodes JSON events.
type Driver struct {
	barcodes drivers.BarcodeLookup
}

// New returns the driver.
func New(env drivers.Env) (drivers.Driver, error) {
	return &Driver{barcodes: env.Barcodes}, nil
}

// Decode splits msg into events and rejections. One bad element of an array
// never affects its neighbours.
func (d *Driver) Decode(msg drivers.Message) []drivers.Item {
	payload := bytes.TrimSpace(msg.Payload)
	if len(payload) > 0 && payload[0] == '[' {
		var elems []json.RawMessage
		if err := json.Unmarshal(payload, &elems); err != nil {
			return []drivers.Item{{Rejected: drivers.Reject("", drivers.ReasonBadJSON, "%v", err), Raw: msg.Payload}}
		}
		if len(elems) > drivers.MaxBatch {
			return []drivers.Item{{Rejected: drivers.Reject("", drivers.ReasonTooLarge, "array of %d events: at most %d per payload", len(elems), drivers.MaxBatch), Raw: msg.Payload}}
		}
		if len(elems) == 0 {
			return []drivers.Item{{Rejected: drivers.Reject("", drivers.ReasonBadJSON, "empty array"), Raw: msg.Payload}}
		}
		items := make([]drivers.Item, len(elems))
		for i, raw := range elems {
			items[i] = d.decodeOne(msg, raw)
		}
		return items
	}
	return []drivers.Item{d.decodeOne(msg, msg.Payload)}
}

// wireEvent is an event as sent. Numbers stay raw so a float, a quoted number
// or an out-of-range quantity is reported, not rounded or coerced.
type wireEvent struct {
	ID         string          `json:"id"`
	Device     string          `json:"device"`
	Type       string          `json:"type"`
	SKU        string          `json:"sku"`
	Barcode    string          `json:"barcode"`
	Qty        json.RawMessage `json:"qty"`
	Location   string          `json:"location"`
	ToLocation string          `json:"to_location"`
	TS         string          `json:"ts"`
	Channel    string          `json:"channel"`
	Seq        json.RawMessage `json:"seq"`
	Voids      string          `json:"voids"`
}

func (d *Driver) decodeOne(msg drivers.Message, raw []byte) drivers.Item {
	item := drivers.Item{Raw: raw}
	var w wireEvent
	if !scanObject(raw, &w) { // the common shape is scanned by hand (fast.go)
		w = wireEvent{}
		if err := json.Unmarshal(raw, &w); err != nil {
			var typeErr *json.UnmarshalTypeError
			if errors.As(err, &typeErr) && typeErr.Field != "" {
				item.Rejected = drivers.Reject(w.ID, drivers.ReasonBadField, "%s: must be a %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()))
			} else {
				item.Rejected = drivers.Reject(w.ID, drivers.ReasonBadJSON, "%v", err)
			}
			return item
		}
	}
	e, rej := d.toEvent(msg, &w)
	item.Event, item.Rejected = e, rej
	return item
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "slice", "array":
		return "array"
	case "struct", "map":
		return "object"
	}
	return "number"
}

func (d *Driver) toEvent(msg drivers.Message, w *wireEvent) (drivers.Event, *drivers.Rejection) {
	e := drivers.Event{
		Device: msg.Device, ID: w.ID, Type: w.Type, SKU: w.SKU, Barcode: w.Barcode,
		Location: w.Location, ToLocation: w.ToLocation, TS: w.TS, Channel: w.Channel, Voids: w.Voids,
	}
	if w.Device != "" && w.Device != msg.Device {
		if msg.DeviceFixed {
			return e, drivers.Reject(w.ID, drivers.ReasonBadField, "device: %q does not match the topic's device %q", w.Device, msg.Device)
		}
		e.Device = w.Device
	}
	if w.ID == "" {
		return e, drivers.Reject("", drivers.ReasonBadField, "id: required")
	}
	if e.Type == drivers.TypeVoid {
		return e, drivers.Validate(&e)
	}
	if e.Voids != "" {
		return e, drivers.Reject(w.ID, drivers.ReasonBadField, "voids: only a void names one")
	}
	var err error
	if isAbsent(w.Qty) {
		return e, drivers.Reject(w.ID, drivers.ReasonBadField, "qty: required")
	}
	if e.Qty, err = strconv.ParseInt(string(w.Qty), 10, 64); err != nil {
		return e, drivers.Reject(w.ID, drivers.ReasonBadField, "qty: must be an integer, got %.20s", w.Qty)
	}
	if !isAbsent(w.Seq) {
		if e.Seq, err = strconv.ParseInt(string(w.Seq), 10, 64); err != nil {
			return e, drivers.Reject(w.ID, drivers.ReasonBadField, "seq: must be an integer, got %.20s", w.Seq)
		}
	}
	if e.SKU == "" && e.Barcode != "" {
		sku, rej := d.resolveBarcode(w.ID, e.Barcode)
		if rej != nil {
			return e, rej
		}
		e.SKU = sku
	}
	if e.SKU == "" {
		return e, drivers.Reject(w.ID, drivers.ReasonBadField, "sku: required (or barcode)")
	}
	return e, drivers.Validate(&e)
}

func isAbsent(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

func (d *Driver) resolveBarcode(id, barcode string) (string, *drivers.Rejection) {
	gtin, why := drivers.GTIN14(barcode)
	if why != "" {
		return "", drivers.Reject(id, drivers.ReasonBadBarcode, "barcode: %q %s", barcode, why)
	}
	if d.barcodes == nil {
		return "", drivers.Reject(id, drivers.ReasonUnknownBarcode, "barcode: %s: no barcode table is configured", barcode)
	}
	sku, ok := d.barcodes.SKUForGTIN(gtin)
	if !ok {
		return "", drivers.Reject(id, drivers.ReasonUnknownBarcode, "barcode: %s is not in the barcode table", barcode)
	}
	return sku, nil
}

var _ drivers.Driver = (*Driver)(nil)
