package pos

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/drivers"
)

type table map[string]string

func (t table) SKUForGTIN(gtin string) (string, bool) { s, ok := t[gtin]; return s, ok }

func decode(t testing.TB, payload string) []drivers.Item {
	d, err := New(drivers.Env{Barcodes: table{"04006381333931": "SKU-B"}})
	require.NoError(t, err)
	return d.Decode(drivers.Message{Device: "pos1", DeviceFixed: true, Payload: []byte(payload)})
}

func TestDriver_Decode(t *testing.T) {
	items := decode(t, `{"id":"T-1001","type":"sale","lines":[{"sku":"SKU-1","qty":2},{"barcode":"4006381333931","qty":1,"location":"front"}],"channel":"store","ts":"2026-11-27T10:00:00Z"}`)
	require.Len(t, items, 2)
	require.Nil(t, items[0].Rejected)
	require.Equal(t, drivers.Event{Device: "pos1", ID: "T-1001/1", Type: "sale", SKU: "SKU-1", Qty: 2, Location: "default", Channel: "store", TS: "2026-11-27T10:00:00Z", Ticket: "T-1001"}, items[0].Event)
	require.Equal(t, drivers.Event{Device: "pos1", ID: "T-1001/2", Type: "sale", SKU: "SKU-B", Barcode: "4006381333931", Qty: 1, Location: "front", Channel: "store", TS: "2026-11-27T10:00:00Z", Ticket: "T-1001"}, items[1].Event)

	items = decode(t, `{"id":"T-1002","type":"return","lines":[{"sku":"SKU-1","qty":1}]}`)
	require.Len(t, items, 1)
	require.Equal(t, "return", items[0].Event.Type)

	items = decode(t, `{"id":"T-1003","type":"void","voids":"T-1001"}`)
	require.Len(t, items, 1)
	require.Nil(t, items[0].Rejected)
	require.Equal(t, drivers.Event{Device: "pos1", ID: "T-1003", Type: "void", Voids: "T-1001"}, items[0].Event)
}

func TestDriver_DecodeRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		payload string
		reason  drivers.Reason
	}{
		"not json":           {`T-1001 sale`, drivers.ReasonBadJSON},
		"no id":              {`{"type":"sale","lines":[{"sku":"S","qty":1}]}`, drivers.ReasonBadField},
		"no type":            {`{"id":"T","lines":[{"sku":"S","qty":1}]}`, drivers.ReasonBadField},
		"unknown type":       {`{"id":"T","type":"refund","lines":[{"sku":"S","qty":1}]}`, drivers.ReasonUnknownType},
		"no lines":           {`{"id":"T","type":"sale","lines":[]}`, drivers.ReasonBadField},
		"bad line":           {`{"id":"T","type":"sale","lines":[{"sku":"S","qty":1},{"sku":"S","qty":0}]}`, drivers.ReasonBadField},
		"unknown barcode":    {`{"id":"T","type":"sale","lines":[{"barcode":"96385074","qty":1}]}`, drivers.ReasonUnknownBarcode},
		"bad barcode":        {`{"id":"T","type":"sale","lines":[{"barcode":"96385075","qty":1}]}`, drivers.ReasonBadBarcode},
		"void without voids": {`{"id":"T","type":"void"}`, drivers.ReasonBadField},
		"void with lines":    {`{"id":"T","type":"void","voids":"T-1","lines":[{"sku":"S","qty":1}]}`, drivers.ReasonBadField},
		"void itself":        {`{"id":"T","type":"void","voids":"T"}`, drivers.ReasonBadField},
		"sale with voids":    {`{"id":"T","type":"sale","voids":"T-1","lines":[{"sku":"S","qty":1}]}`, drivers.ReasonBadField},
	} {
		t.Run(name, func(t *testing.T) {
			items := decode(t, tc.payload)
			require.Len(t, items, 1, "a ticket is all or nothing")
			require.NotNil(t, items[0].Rejected)
			require.Equal(t, tc.reason, items[0].Rejected.Reason, items[0].Rejected.Message)
			require.Equal(t, tc.payload, string(items[0].Raw))
		})
	}
}

func FuzzDriver_Decode(f *testing.F) {
	d, err := New(drivers.Env{})
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, payload []byte) {
		items := d.Decode(drivers.Message{Device: "pos1", DeviceFixed: true, Payload: payload})
		require.NotEmpty(t, items)
		for _, it := range items {
			if it.Rejected != nil {
				require.Len(t, items, 1)
				continue
			}
			e := it.Event
			require.Nil(t, drivers.Validate(&e))
		}
	})
}
