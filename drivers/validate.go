package drivers

import (
	"strings"
	"time"
	"unicode"
)

// Limits of the data model (SPEC §2).
const (
	MaxIDLen      = 64  // warehouse, location, SKU, device, channel
	MaxEventIDLen = 128 // event id
	// MaxTicketIDLen leaves room for "/{line}" in the events of a ticket.
	MaxTicketIDLen = 120
	MaxQty         = 1_000_000
	// MaxBatch is the most events one payload may carry.
	MaxBatch = 1000
	// DefaultLocation is used when an event names none.
	DefaultLocation = "default"
	// QuarantineSample is how much of an oversized payload (MQTT message,
	// HTTP body, line of a dropped file) the quarantine keeps; the
	// rejection message records its full size.
	QuarantineSample = 4 << 10
)

// Sample cuts an oversized payload to what the quarantine keeps.
func Sample(raw []byte) []byte { return raw[:min(len(raw), QuarantineSample)] }

// Event types and their effect on on_hand.
const (
	TypeReceive  = "receive"  // +qty
	TypeReturn   = "return"   // +qty
	TypeSale     = "sale"     // −qty
	TypePick     = "pick"     // −qty
	TypeAdjust   = "adjust"   // ±qty
	TypeTransfer = "transfer" // −qty at location, +qty at to_location
	TypeCount    = "count"    // sets the absolute level
	// TypeVoid reverses every line of an earlier POS ticket of the same
	// device (Event.Voids), once.
	TypeVoid = "void"
)

// KnownType reports whether t is an event type of the data model.
func KnownType(t string) bool {
	switch t {
	case TypeReceive, TypeReturn, TypeSale, TypePick, TypeAdjust, TypeTransfer, TypeCount:
		return true
	}
	return false
}

// LocalHolder names a warehouse's own holder of rights to promise units
// (SPEC §9): no sales channel may take the name.
const LocalHolder = "local"

// ValidChannel reports whether c names a sales channel: an ID (SPEC §2)
// other than LocalHolder.
func ValidChannel(c string) bool { return ValidID(c) && c != LocalHolder }

// ValidID reports whether s is 1–64 chars of [A-Za-z0-9._-].
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ValidEventID reports whether s is an event id: 1–128 printable
// characters (no NUL, no control characters, valid UTF-8).
func ValidEventID(s string) bool { return validEventID(s) }

// validEventID reports whether s is 1–128 printable characters.
func validEventID(s string) bool {
	if len(s) == 0 || len(s) > MaxEventIDLen {
		return false
	}
	for _, r := range s {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// Validate checks e against the data model, filling defaults (location).
// The SKU must already be resolved. It returns nil when e is valid.
func Validate(e *Event) *Rejection {
	id := e.ID
	switch {
	case !validEventID(e.ID):
		return Reject("", ReasonBadField, "id: must be 1-%d printable characters", MaxEventIDLen)
	case !ValidID(e.Device):
		return Reject(id, ReasonBadField, "device: must be 1-%d chars of [A-Za-z0-9._-]", MaxIDLen)
	case e.Type == "":
		return Reject(id, ReasonBadField, "type: required")
	case e.Type == TypeVoid:
		if !validEventID(e.Voids) || len(e.Voids) > MaxTicketIDLen {
			return Reject(id, ReasonBadField, "voids: must name the voided ticket, 1-%d printable characters", MaxTicketIDLen)
		}
		return nil
	case !KnownType(e.Type):
		return Reject(id, ReasonUnknownType, "type: %q is not one of receive, return, sale, pick, adjust, transfer, count", e.Type)
	case !ValidID(e.SKU):
		return Reject(id, ReasonBadField, "sku: must be 1-%d chars of [A-Za-z0-9._-]", MaxIDLen)
	}
	if e.Location == "" {
		e.Location = DefaultLocation
	}
	if !ValidID(e.Location) {
		return Reject(id, ReasonBadField, "location: must be 1-%d chars of [A-Za-z0-9._-]", MaxIDLen)
	}
	switch e.Type {
	case TypeAdjust:
		if e.Qty == 0 || e.Qty > MaxQty || e.Qty < -MaxQty {
			return Reject(id, ReasonBadField, "qty: adjust needs a non-zero integer within ±%d", MaxQty)
		}
	case TypeCount:
		if e.Qty < 0 || e.Qty > MaxQty {
			return Reject(id, ReasonBadField, "qty: count needs an integer 0..%d", MaxQty)
		}
	default:
		if e.Qty < 1 || e.Qty > MaxQty {
			return Reject(id, ReasonBadField, "qty: %s needs an integer 1..%d", e.Type, MaxQty)
		}
	}
	if e.Type == TypeTransfer {
		switch {
		case !ValidID(e.ToLocation):
			return Reject(id, ReasonBadField, "to_location: transfer needs 1-%d chars of [A-Za-z0-9._-]", MaxIDLen)
		case e.ToLocation == e.Location:
			return Reject(id, ReasonBadField, "to_location: must differ from location %q", e.Location)
		}
	} else if e.ToLocation != "" {
		return Reject(id, ReasonBadField, "to_location: only a transfer has one")
	}
	if e.TS != "" {
		if _, err := time.Parse(time.RFC3339Nano, e.TS); err != nil {
			return Reject(id, ReasonBadField, "ts: not an RFC 3339 time: %q", e.TS)
		}
	}
	if e.Channel != "" && !ValidID(e.Channel) {
		return Reject(id, ReasonBadField, "channel: must be 1-%d chars of [A-Za-z0-9._-]", MaxIDLen)
	}
	if e.Seq < 0 {
		return Reject(id, ReasonBadField, "seq: must be >= 0")
	}
	return nil
}

// ColumnName is a CSV header name as matched: trimmed, lower-cased, without
// the byte-order mark spreadsheet exports put before the first one.
func ColumnName(h string) string {
	return strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
}
