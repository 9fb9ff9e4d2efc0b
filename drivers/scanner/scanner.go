// Package scanner is the barcode scanner driver (SPEC §3): on
// {prefix}/{wh}/devices/{device}/scan[/{type}] a scanner sends a JSON event,
// or plain text: an EAN-8, UPC-A, EAN-13 or GTIN-14, or a GS1 element string
// (parenthesised, or FNC1 form with GS separators and an optional symbology
// identifier such as ]C1, ]d2, ]Q3), resolved to a SKU by the barcode table.
package scanner

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"strings"

	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/drivers/events"
)

func init() {
	drivers.Register(drivers.Registration{Name: "scanner", Topic: "scan", New: New})
}

// IDProperty is the MQTT v5 user property that carries a scan's event id.
const IDProperty = "id"

// Driver decodes scans.
type Driver struct {
	json     drivers.Driver
	barcodes drivers.BarcodeLookup
	devices  drivers.DeviceSettings
}

// New returns the driver.
func New(env drivers.Env) (drivers.Driver, error) {
	j, err := events.New(env)
	if err != nil {
		return nil, err
	}
	return &Driver{json: j, barcodes: env.Barcodes, devices: env.Devices}, nil
}

// gs1Symbologies are the symbology identifiers whose data is a GS1 element
// string in FNC1 form (GS1-128, GS1 DataBar, GS1 DataMatrix, GS1 QR, GS1
// Composite). Other identifiers (]E0 EAN/UPC, ]E4 EAN-8, …) carry plain data.
var gs1Symbologies = map[string]bool{"]C1": true, "]e0": true, "]d2": true, "]Q3": true, "]J1": true}

// Decode turns one scan into one item.
func (d *Driver) Decode(msg drivers.Message) []drivers.Item {
	text := bytes.TrimSpace(msg.Payload)
	if len(text) > 0 && (text[0] == '{' || text[0] == '[') {
		return d.json.Decode(msg)
	}
	e, rej := d.decodeText(msg, string(text))
	return []drivers.Item{{Event: e, Rejected: rej, Raw: msg.Payload}}
}

func (d *Driver) decodeText(msg drivers.Message, text string) (drivers.Event, *drivers.Rejection) {
	id := msg.Properties[IDProperty]
	e := drivers.Event{Device: msg.Device, ID: id, Location: drivers.DefaultLocation, Qty: 1}
	scan, rej := parseBarcode(id, text)
	if rej != nil {
		return e, rej
	}
	e.Barcode = text
	if scan.HasQty {
		e.Qty = scan.Qty
	}
	e.Type = msg.Subtopic
	if e.Type == "" && d.devices != nil {
		e.Type = d.devices.Mode(msg.Device)
	}
	if e.Type == "" {
		return e, drivers.Reject(id, drivers.ReasonBadField, "type: the topic names none (…/scan/receive) and device %s has no configured mode", msg.Device)
	}
	if !drivers.KnownType(e.Type) || e.Type == drivers.TypeTransfer || e.Type == drivers.TypeAdjust {
		return e, drivers.Reject(id, drivers.ReasonUnknownType, "type: a scan can be receive, return, sale, pick or count, not %q", e.Type)
	}
	switch {
	case e.Type == drivers.TypeCount && !scan.HasQty:
		return e, drivers.Reject(id, drivers.ReasonBadField, "qty: a count scan needs the counted quantity (AI 30 or 37)")
	case e.Type != drivers.TypeCount && scan.HasQty && scan.Qty < 1:
		return e, drivers.Reject(id, drivers.ReasonBadField, "qty: (30)/(37) is 0: a %s scan needs a quantity of 1..%d", e.Type, drivers.MaxQty)
	}
	if e.ID == "" {
		switch {
		case scan.Serial != "":
			// A serialised item is one physical unit: the agent numbers its
			// movements (drivers.Event.Serial), since a unit can be sold,
			// returned and sold again.
			e.Serial = scan.GTIN + "/" + scan.Serial + "/"
			e.ID = drivers.SerialID(e.Serial, e.Type, 1)
		case d.devices != nil && d.devices.AtLeastOnce(msg.Device):
			e.ID = "alo-" + randomHex()
		default:
			return e, drivers.Reject("", drivers.ReasonMissingID,
				"scan has no id: send the MQTT v5 user property %q, scan a serialised item (AI 21), or opt the device in to at-least-once counting", IDProperty)
		}
	}
	if d.barcodes == nil {
		return e, drivers.Reject(e.ID, drivers.ReasonUnknownBarcode, "barcode %s: no barcode table is configured", scan.GTIN)
	}
	sku, ok := d.barcodes.SKUForGTIN(scan.GTIN)
	if !ok {
		return e, drivers.Reject(e.ID, drivers.ReasonUnknownBarcode, "GTIN %s is not in the barcode table", scan.GTIN)
	}
	e.SKU = sku
	return e, drivers.Validate(&e)
}

// parseBarcode reads a plain GTIN or a GS1 element string.
func parseBarcode(id, text string) (Scan, *drivers.Rejection) {
	if text == "" {
		return Scan{}, drivers.Reject(id, drivers.ReasonBadBarcode, "empty scan")
	}
	gs1 := false
	if strings.HasPrefix(text, "]") {
		if len(text) < 3 {
			return Scan{}, drivers.Reject(id, drivers.ReasonBadBarcode, "truncated symbology identifier %q", text)
		}
		gs1 = gs1Symbologies[text[:3]]
		text = text[3:]
	}
	if !gs1 && isDigits(text) && len(text) <= 14 {
		gtin, why := drivers.GTIN14(text)
		if why != "" {
			return Scan{}, drivers.Reject(id, drivers.ReasonBadBarcode, "barcode %s: %s", text, why)
		}
		return Scan{GTIN: gtin}, nil
	}
	elems, err := ParseElements(text)
	if err != nil {
		return Scan{}, drivers.Reject(id, drivers.ReasonBadBarcode, "GS1 element string: %v", err)
	}
	scan, err := ToScan(elems)
	if err != nil {
		return Scan{}, drivers.Reject(id, drivers.ReasonBadBarcode, "GS1 element string: %v", err)
	}
	return scan, nil
}

func randomHex() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var _ drivers.Driver = (*Driver)(nil)
