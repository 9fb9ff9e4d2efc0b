package drivers

import (
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Message is one payload received from a device.
type Message struct {
	Source    string // "mqtt" or "http": where it came from, for the quarantine
	Warehouse string
	// Device is the sender's identity: the topic's device segment over MQTT.
	Device string
	// DeviceFixed is set when Device is authoritative (MQTT topic): an event
	// naming another device is then rejected. Over HTTP an event may name
	// its device, and Device is only the default.
	DeviceFixed bool
	// Subtopic is what follows the device's topic kind, e.g. "receive" in
	// …/scan/receive; empty when absent.
	Subtopic   string
	Payload    []byte
	Properties map[string]string // MQTT v5 user properties
	ReceivedAt time.Time
}

// Event is a validated stock event, in the data model of SPEC §2.
type Event struct {
	Device     string `json:"device"`
	ID         string `json:"id"`
	Type       string `json:"type"`
	SKU        string `json:"sku"`
	Barcode    string `json:"barcode,omitempty"`
	Qty        int64  `json:"qty"`
	Location   string `json:"location"`
	ToLocation string `json:"to_location,omitempty"`
	TS         string `json:"ts,omitempty"`
	Channel    string `json:"channel,omitempty"`
	Seq        int64  `json:"seq,omitempty"`
	// Voids is the ticket a void event reverses (TypeVoid only).
	Voids string `json:"voids,omitempty"`
	// Ticket is the POS ticket a line event belongs to: the agent applies a
	// ticket's lines all or none (the same ticket id with another body is
	// id_reused for every line).
	Ticket string `json:"-"`
	// Serial is "{gtin}/{serial}/" when the event is a scan of a serialised
	// unit that carried no id of its own. ID is then Serial+type+"/1": the
	// agent renumbers it with the unit's movement count (SerialID), so the
	// same unit sold, returned and sold again is three movements while a
	// redelivered scan stays one.
	Serial string `json:"-"`
}

// SerialID is the event id of the n-th movement of type typ of the
// serialised unit serial ("{gtin}/{serial}/").
func SerialID(serial, typ string, n int) string {
	return serial + typ + "/" + strconv.Itoa(n)
}

// Reason is a rejection reason code of SPEC §2.
type Reason string

const (
	ReasonBadJSON        Reason = "bad_json"
	ReasonBadField       Reason = "bad_field"
	ReasonUnknownType    Reason = "unknown_type"
	ReasonUnknownSKU     Reason = "unknown_sku"
	ReasonUnknownBarcode Reason = "unknown_barcode"
	ReasonBadBarcode     Reason = "bad_barcode"    // malformed, wrong check digit, unsupported GS1 AI
	ReasonMissingID      Reason = "missing_id"     // a scan with no id and no serial number
	ReasonUnknownTicket  Reason = "unknown_ticket" // a void of a ticket this device never sent
	ReasonIDReused       Reason = "id_reused"
	ReasonUnauthorized   Reason = "unauthorized"
	ReasonTooLarge       Reason = "too_large"
	ReasonRateLimited    Reason = "rate_limited"
	ReasonUnknownTopic   Reason = "unknown_topic"
)

// Rejection says why input was refused. ID is the event id when one could be
// read, so the device can match the result to what it sent.
type Rejection struct {
	ID      string `json:"id,omitempty"`
	Reason  Reason `json:"reason"`
	Message string `json:"message"`
}

func (r *Rejection) Error() string { return fmt.Sprintf("%s: %s", r.Reason, r.Message) }

// Reject builds a Rejection with a formatted message.
func Reject(id string, reason Reason, format string, args ...any) *Rejection {
	return &Rejection{ID: id, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Item is one decoded unit: a valid Event, or a Rejection when Rejected is
// non-nil. Raw is the part of the payload it came from.
type Item struct {
	Event    Event
	Rejected *Rejection
	Raw      []byte
}

// Driver decodes device payloads. Decode must be safe for concurrent use and
// must not keep msg.Payload beyond the call except through Item.Raw.
type Driver interface {
	Decode(msg Message) []Item
}

// BarcodeLookup resolves a GTIN (14 digits) to a SKU.
type BarcodeLookup interface {
	SKUForGTIN(gtin string) (sku string, ok bool)
}

// DeviceSettings is the per-device configuration drivers consult.
type DeviceSettings interface {
	// Mode is the event type of a device's plain-text scans when the topic
	// names none ("" when not configured).
	Mode(device string) string
	// AtLeastOnce reports whether the operator opted a device in to
	// counting scans that carry no id (each delivery counts).
	AtLeastOnce(device string) bool
}

// Env is what a driver may use. Init-time validation only: no I/O.
type Env struct {
	Barcodes BarcodeLookup  // nil when no barcode table is configured
	Devices  DeviceSettings // nil: no modes, no at-least-once devices
	Logger   *slog.Logger
}

// Registration describes one driver.
type Registration struct {
	Name string
	// Topic is the device topic kind the driver serves: the segment after
	// {prefix}/{wh}/devices/{device}/. Empty for drivers fed otherwise.
	Topic string
	New   func(Env) (Driver, error)
}

var (
	registryMu sync.RWMutex
	registry   = map[string]Registration{}
)

// Register makes a driver available. It panics on a duplicate name, as that
// is a programming error caught by any test.
func Register(r Registration) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[r.Name]; dup {
		panic("drivers: duplicate registration of " + r.Name)
	}
	registry[r.Name] = r
}

// Registered returns every registered driver, sorted by name.
func Registered() []Registration {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]Registration, 0, len(registry))
	for _, r := range registry {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
