package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/edgestock/edgestock/drivers"
	"github.com/stretchr/testify/require"
)

type table map[string]string

func (t table) SKUForGTIN(gtin string) (string, bool) { s, ok := t[gtin]; return s, ok }

func decode(t *testing.T, payload string, fixed bool) []drivers.Item {
	t.Helper()
	d, err := New(drivers.Env{Barcodes: table{"04006381333931": "SKU-B"}})
	require.NoError(t, err)
	return d.Decode(drivers.Message{Source: "mqtt", Warehouse: "wh1", Device: "d1", DeviceFixed: fixed, Payload: []byte(payload)})
}

func TestDriver_Decode(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload string
		want    drivers.Event // when valid
		reason  drivers.Reason
		id      string // id reported with a rejection
	}{
		{name: "receive", payload: `{"id":"e1","type":"receive","sku":"SKU-1","qty":5}`,
			want: drivers.Event{Device: "d1", ID: "e1", Type: "receive", SKU: "SKU-1", Qty: 5, Location: "default"}},
		{name: "full", payload: `{"id":"scn7-000123","type":"receive","sku":"SKU-1","qty":5,"location":"A-01","ts":"2026-11-27T10:00:00Z","channel":"store","seq":123}`,
			want: drivers.Event{Device: "d1", ID: "scn7-000123", Type: "receive", SKU: "SKU-1", Qty: 5, Location: "A-01", TS: "2026-11-27T10:00:00Z", Channel: "store", Seq: 123}},
		{name: "adjust negative", payload: `{"id":"e","type":"adjust","sku":"S","qty":-3}`,
			want: drivers.Event{Device: "d1", ID: "e", Type: "adjust", SKU: "S", Qty: -3, Location: "default"}},
		{name: "count zero", payload: `{"id":"e","type":"count","sku":"S","qty":0}`,
			want: drivers.Event{Device: "d1", ID: "e", Type: "count", SKU: "S", Qty: 0, Location: "default"}},
		{name: "transfer", payload: `{"id":"e","type":"transfer","sku":"S","qty":2,"location":"A","to_location":"B"}`,
			want: drivers.Event{Device: "d1", ID: "e", Type: "transfer", SKU: "S", Qty: 2, Location: "A", ToLocation: "B"}},
		{name: "barcode EAN-13 padded", payload: `{"id":"e","type":"sale","barcode":"4006381333931","qty":1}`,
			want: drivers.Event{Device: "d1", ID: "e", Type: "sale", SKU: "SKU-B", Barcode: "4006381333931", Qty: 1, Location: "default"}},
		{name: "device field matching topic", payload: `{"id":"e","device":"d1","type":"pick","sku":"S","qty":1}`,
			want: drivers.Event{Device: "d1", ID: "e", Type: "pick", SKU: "S", Qty: 1, Location: "default"}},

		{name: "not json", payload: `receive 5`, reason: drivers.ReasonBadJSON},
		{name: "truncated", payload: `{"id":"e1","type":"rec`, reason: drivers.ReasonBadJSON},
		{name: "empty", payload: ``, reason: drivers.ReasonBadJSON},
		{name: "missing id", payload: `{"type":"receive","sku":"S","qty":1}`, reason: drivers.ReasonBadField},
		{name: "long id", payload: fmt.Sprintf(`{"id":%q,"type":"receive","sku":"S","qty":1}`, strings.Repeat("x", 129)), reason: drivers.ReasonBadField},
		{name: "unknown type", payload: `{"id":"e1","type":"steal","sku":"S","qty":1}`, reason: drivers.ReasonUnknownType, id: "e1"},
		{name: "missing type", payload: `{"id":"e1","sku":"S","qty":1}`, reason: drivers.ReasonBadField, id: "e1"},
		{name: "missing qty", payload: `{"id":"e1","type":"receive","sku":"S"}`, reason: drivers.ReasonBadField, id: "e1"},
		{name: "zero qty", payload: `{"id":"e1","type":"receive","sku":"S","qty":0}`, reason: drivers.ReasonBadField, id: "e1"},
		{name: "float qty", payload: `{"id":"e1","type":"receive","sku":"S","qty":1.5}`, reason: drivers.ReasonBadField, id: "e1"},
		{name: "string qty", payload: `{"id":"e1","type":"receive","sku":"S","qty":"5"}`, reason: drivers.ReasonBadField, id: "e1"},
		{name: "huge qty", payload: `{"id":"e1","type":"receive","sku":"S","qty":1000001}`, reason: drivers.ReasonBadField, id: "e1"},
		{name: "negative sale", payload: `{"id":"e1","type":"sale","sku":"S","qty":-1}`, reason: drivers.ReasonBadField, id: "e1"},
		{name: "adjust zero", payload: `{"id":"e1","type":"adjust","sku":"S","qty":0}`, reason: drivers.ReasonBadField, id: "e1"},
		{name: "bad sku", payload: `{"id":"e1","type":"receive","sku":"SKU 1","qty":1}`, reason: drivers.ReasonBadField, id: "e1"},
		{name: "no sku", payload: `{"id":"e1","type":"receive","qty":1}`, reason: drivers.ReasonBadField, id: "e1"},
		{name: "unknown barcode", payload: `{"id":"e1","type":"receive","barcode":"96385074","qty":1}`, reason: drivers.ReasonUnknownBarcode, id: "e1"},
		{name: "barcode letters", payload: `{"id":"e1","type":"receive","barcode":"12AB5670","qty":1}`, reason: drivers.ReasonBadBarcode, id: "e1"},
		{name: "barcode check digit", payload: `{"id":"e1","type":"receive","barcode":"4006381333932","qty":1}`, reason: drivers.ReasonBadBarcode, id: "e1"},
		{name: "transfer to itself", payload: `{"id":"e1","type":"transfer","sku":"S","qty":1,"location":"A","to_location":"A"}`, reason: drivers.ReasonBadField, id: "e1"},
		{name: "transfer without target", payload: `{"id":"e1","type":"transfer","sku":"S","qty":1}`, reason: drivers.ReasonBadField, id: "e1"},
		{name: "to_location on receive", payload: `{"id":"e1","type":"receive","sku":"S","qty":1,"to_location":"B"}`, reason: drivers.ReasonBadField, id: "e1"},
		{name: "bad ts", payload: `{"id":"e1","type":"receive","sku":"S","qty":1,"ts":"yesterday"}`, reason: drivers.ReasonBadField, id: "e1"},
		{name: "bad channel", payload: `{"id":"e1","type":"receive","sku":"S","qty":1,"channel":"web shop"}`, reason: drivers.ReasonBadField, id: "e1"},
		{name: "negative seq", payload: `{"id":"e1","type":"receive","sku":"S","qty":1,"seq":-4}`, reason: drivers.ReasonBadField, id: "e1"},
		{name: "other device", payload: `{"id":"e1","device":"d2","type":"receive","sku":"S","qty":1}`, reason: drivers.ReasonBadField, id: "e1"},
		{name: "empty array", payload: `[]`, reason: drivers.ReasonBadJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items := decode(t, tc.payload, true)
			require.Len(t, items, 1)
			if tc.reason == "" {
				require.Nil(t, items[0].Rejected)
				require.Equal(t, tc.want, items[0].Event)
				return
			}
			require.NotNil(t, items[0].Rejected, "want %s", tc.reason)
			require.Equal(t, tc.reason, items[0].Rejected.Reason, items[0].Rejected.Message)
			require.Equal(t, tc.id, items[0].Rejected.ID)
			require.NotEmpty(t, items[0].Rejected.Message)
			require.Equal(t, tc.payload, string(items[0].Raw), "the raw payload is kept for the quarantine")
		})
	}
}

func TestDriver_DecodeArray(t *testing.T) {
	items := decode(t, `[{"id":"a","type":"receive","sku":"S","qty":1}, {"id":"b","type":"bogus","sku":"S","qty":1}, {"id":"c","type":"sale","sku":"S","qty":2}]`, true)
	require.Len(t, items, 3)
	require.Nil(t, items[0].Rejected)
	require.Equal(t, drivers.ReasonUnknownType, items[1].Rejected.Reason)
	require.JSONEq(t, `{"id":"b","type":"bogus","sku":"S","qty":1}`, string(items[1].Raw))
	require.Nil(t, items[2].Rejected)

	big := make([]json.RawMessage, drivers.MaxBatch+1)
	for i := range big {
		big[i] = json.RawMessage(fmt.Sprintf(`{"id":"%d","type":"receive","sku":"S","qty":1}`, i))
	}
	payload, err := json.Marshal(big)
	require.NoError(t, err)
	items = decode(t, string(payload), true)
	require.Len(t, items, 1)
	require.Equal(t, drivers.ReasonTooLarge, items[0].Rejected.Reason)
}

func TestDriver_DecodeHTTPDevice(t *testing.T) {
	items := decode(t, `{"id":"e1","device":"d2","type":"receive","sku":"S","qty":1}`, false)
	require.Nil(t, items[0].Rejected)
	require.Equal(t, "d2", items[0].Event.Device, "over HTTP an event may name its device")
}

func FuzzDriver_Decode(f *testing.F) {
	d, err := New(drivers.Env{Barcodes: table{"04006381333931": "SKU-B"}})
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, payload []byte) {
		items := d.Decode(drivers.Message{Device: "d1", DeviceFixed: true, Payload: payload})
		require.NotEmpty(t, items, "every payload gets a result")
		for _, it := range items {
			if it.Rejected != nil {
				require.NotEmpty(t, it.Rejected.Reason)
				require.NotEmpty(t, it.Rejected.Message)
				require.True(t, bytes.Contains(payload, it.Raw), "the quarantine keeps the rejected bytes as received")
				continue
			}
			e := it.Event
			require.Nil(t, drivers.Validate(&e), "a decoded event is valid")
			require.Equal(t, "d1", e.Device)
		}
	})
}
