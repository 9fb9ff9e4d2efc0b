// Package pos is the POS ticket driver (SPEC §3): on
// {prefix}/{wh}/devices/{device}/pos a terminal sends
//
//	{"id":"T-1001","type":"sale|return|void","lines":[{"sku":"SKU-1","qty":2}],"channel":"store","voids":"T-1000"}
//
// Line i (from 1) of a sale or return becomes event "T-1001/i". A void needs
// no lines: it reverses every line of the referenced ticket, once; the
// agent resolves it against the event log, since a driver keeps no state.
// A ticket is all or nothing: one bad line rejects the whole ticket.
package pos

import (
	"encoding/json"
	"fmt"

	"github.com/edgestock/edgestock/drivers"
)

func init() {
	drivers.Register(drivers.Registration{Name: "pos", Topic: "pos", New: New})
}

// MaxLines bounds the lines of one ticket.
const MaxLines = drivers.MaxBatch

// Driver decodes POS tickets.
type Driver struct {
	barcodes drivers.BarcodeLookup
}

// New returns the driver.
func New(env drivers.Env) (drivers.Driver, error) {
	return &Driver{barcodes: env.Barcodes}, nil
}

// Ticket is a POS ticket as sent.
type Ticket struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Lines   []Line `json:"lines"`
	Channel string `json:"channel"`
	Voids   string `json:"voids"`
	TS      string `json:"ts"`
}

// Line is one ticket line.
type Line struct {
	SKU      string `json:"sku"`
	Barcode  string `json:"barcode"`
	Qty      int64  `json:"qty"`
	Location string `json:"location"`
}

// Decode turns a ticket into its line events, or one rejection.
func (d *Driver) Decode(msg drivers.Message) []drivers.Item {
	var t Ticket
	if err := json.Unmarshal(msg.Payload, &t); err != nil {
		return reject(msg, drivers.Reject(t.ID, drivers.ReasonBadJSON, "%v", err))
	}
	events, rej := d.ticketEvents(msg, &t)
	if rej != nil {
		return reject(msg, rej)
	}
	items := make([]drivers.Item, len(events))
	for i, e := range events {
		items[i] = drivers.Item{Event: e, Raw: msg.Payload}
	}
	return items
}

func reject(msg drivers.Message, rej *drivers.Rejection) []drivers.Item {
	return []drivers.Item{{Rejected: rej, Raw: msg.Payload}}
}

func (d *Driver) ticketEvents(msg drivers.Message, t *Ticket) ([]drivers.Event, *drivers.Rejection) {
	if t.ID == "" || len(t.ID) > drivers.MaxTicketIDLen {
		return nil, drivers.Reject("", drivers.ReasonBadField, "id: a ticket needs an id of 1-%d characters", drivers.MaxTicketIDLen)
	}
	switch t.Type {
	case drivers.TypeVoid:
		if len(t.Lines) > 0 {
			return nil, drivers.Reject(t.ID, drivers.ReasonBadField, "lines: a void reverses the ticket it names and has no lines")
		}
		e := drivers.Event{Device: msg.Device, ID: t.ID, Type: drivers.TypeVoid, Voids: t.Voids, Channel: t.Channel, TS: t.TS}
		if t.Voids == t.ID {
			return nil, drivers.Reject(t.ID, drivers.ReasonBadField, "voids: a ticket cannot void itself")
		}
		if rej := drivers.Validate(&e); rej != nil {
			return nil, rej
		}
		return []drivers.Event{e}, nil
	case drivers.TypeSale, drivers.TypeReturn:
	case "":
		return nil, drivers.Reject(t.ID, drivers.ReasonBadField, "type: required (sale, return or void)")
	default:
		return nil, drivers.Reject(t.ID, drivers.ReasonUnknownType, "type: %q is not sale, return or void", t.Type)
	}
	if t.Voids != "" {
		return nil, drivers.Reject(t.ID, drivers.ReasonBadField, "voids: only a void ticket names one")
	}
	if len(t.Lines) == 0 || len(t.Lines) > MaxLines {
		return nil, drivers.Reject(t.ID, drivers.ReasonBadField, "lines: a %s needs 1-%d lines", t.Type, MaxLines)
	}
	events := make([]drivers.Event, len(t.Lines))
	for i, l := range t.Lines {
		e := drivers.Event{
			Device: msg.Device, ID: fmt.Sprintf("%s/%d", t.ID, i+1), Type: t.Type, SKU: l.SKU, Barcode: l.Barcode,
			Qty: l.Qty, Location: l.Location, Channel: t.Channel, TS: t.TS, Ticket: t.ID,
		}
		if e.SKU == "" && e.Barcode != "" {
			sku, rej := d.resolve(t.ID, i+1, l.Barcode)
			if rej != nil {
				return nil, rej
			}
			e.SKU = sku
		}
		if rej := drivers.Validate(&e); rej != nil {
			return nil, drivers.Reject(t.ID, rej.Reason, "line %d: %s", i+1, rej.Message)
		}
		events[i] = e
	}
	return events, nil
}

func (d *Driver) resolve(ticket string, line int, barcode string) (string, *drivers.Rejection) {
	gtin, why := drivers.GTIN14(barcode)
	if why != "" {
		return "", drivers.Reject(ticket, drivers.ReasonBadBarcode, "line %d: barcode %q %s", line, barcode, why)
	}
	if d.barcodes == nil {
		return "", drivers.Reject(ticket, drivers.ReasonUnknownBarcode, "line %d: barcode %s: no barcode table is configured", line, barcode)
	}
	sku, ok := d.barcodes.SKUForGTIN(gtin)
	if !ok {
		return "", drivers.Reject(ticket, drivers.ReasonUnknownBarcode, "line %d: barcode %s is not in the barcode table", line, barcode)
	}
	return sku, nil
}

var _ drivers.Driver = (*Driver)(nil)
