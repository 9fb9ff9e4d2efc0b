package scanner

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/drivers"
)

type table map[string]string

func (t table) SKUForGTIN(gtin string) (string, bool) { s, ok := t[gtin]; return s, ok }

type devices map[string]string

func (d devices) Mode(device string) string      { return d[device] }
func (d devices) AtLeastOnce(device string) bool { return device == "alo" }

var testTable = table{
	"00000096385074": "SKU-EAN8",
	"04006381333931": "SKU-EAN13",
	"09506000134352": "SKU-GS1",
	"19506000134359": "SKU-CASE",
	"00036000291452": "SKU-UPC",
	"05901234123457": "SKU-PL",
}

func newDriver(t testing.TB) drivers.Driver {
	d, err := New(drivers.Env{Barcodes: testTable, Devices: devices{"modeful": "receive", "counter": "count"}})
	require.NoError(t, err)
	return d
}

const gs = "\x1d"

func TestDriver_DecodeBarcodes(t *testing.T) {
	type want struct {
		sku, typ, id string
		qty          int64
	}
	for _, tc := range []struct {
		name, text, sub, device, idProp string
		want                            want
		reason                          drivers.Reason
	}{
		// Plain GTINs, check digits verified.
		{"EAN-8", "96385074", "receive", "s1", "x1", want{"SKU-EAN8", "receive", "x1", 1}, ""},
		{"EAN-13", "4006381333931", "sale", "s1", "x2", want{"SKU-EAN13", "sale", "x2", 1}, ""},
		{"EAN-13 trailing newline", "4006381333931\r\n", "sale", "s1", "x3", want{"SKU-EAN13", "sale", "x3", 1}, ""},
		{"UPC-A", "036000291452", "pick", "s1", "x4", want{"SKU-UPC", "pick", "x4", 1}, ""},
		{"GTIN-14", "19506000134359", "receive", "s1", "x5", want{"SKU-CASE", "receive", "x5", 1}, ""},
		{"EAN-13 as GTIN-14 with leading zero", "05901234123457", "return", "s1", "x6", want{"SKU-PL", "return", "x6", 1}, ""},
		{"EAN-13 symbology ]E0", "]E04006381333931", "sale", "s1", "x7", want{"SKU-EAN13", "sale", "x7", 1}, ""},
		{"EAN-8 symbology ]E4", "]E496385074", "sale", "s1", "x8", want{"SKU-EAN8", "sale", "x8", 1}, ""},
		{"mode from device", "4006381333931", "", "modeful", "x9", want{"SKU-EAN13", "receive", "x9", 1}, ""},
		{"EAN-8 bad check digit", "96385075", "receive", "s1", "y1", want{}, drivers.ReasonBadBarcode},
		{"EAN-13 bad check digit", "4006381333932", "receive", "s1", "y2", want{}, drivers.ReasonBadBarcode},
		{"UPC-A bad check digit", "036000291453", "receive", "s1", "y3", want{}, drivers.ReasonBadBarcode},
		{"GTIN-14 bad check digit", "19506000134358", "receive", "s1", "y4", want{}, drivers.ReasonBadBarcode},
		{"wrong length", "1234567890", "receive", "s1", "y5", want{}, drivers.ReasonBadBarcode},
		{"11 digits", "73500538502", "receive", "s1", "y6", want{}, drivers.ReasonBadBarcode},
		{"EAN-13 not in table", "4006381333900", "receive", "s1", "y7", want{}, drivers.ReasonUnknownBarcode},
		{"not in table", "40063812", "receive", "s1", "y8", want{}, drivers.ReasonUnknownBarcode},
		// GS1 element strings.
		{"parenthesised GTIN+expiry+batch", "(01)09506000134352(17)261231(10)ABC123", "receive", "s1", "g1", want{"SKU-GS1", "receive", "g1", 1}, ""},
		{"parenthesised with count", "(01)09506000134352(30)12", "receive", "s1", "g2", want{"SKU-GS1", "receive", "g2", 12}, ""},
		{"parenthesised serial gives the id", "(01)09506000134352(21)SN-0042", "sale", "s1", "", want{"SKU-GS1", "sale", "09506000134352/SN-0042/sale/1", 1}, ""},
		{"FNC1 ]C1 fixed then variable", "]C1010950600013435217261231" + "10LOT7", "receive", "s1", "g3", want{"SKU-GS1", "receive", "g3", 1}, ""},
		{"FNC1 ]C1 GS after variable batch", "]C10109506000134352" + "10LOT7" + gs + "30" + "24", "receive", "s1", "g4", want{"SKU-GS1", "receive", "g4", 24}, ""},
		{"FNC1 ]d2 DataMatrix serial", "]d2010950600013435221XYZ" + gs + "17270101", "pick", "s1", "", want{"SKU-GS1", "pick", "09506000134352/XYZ/pick/1", 1}, ""},
		{"FNC1 ]Q3 QR with 02 and 37", "]Q30219506000134359" + "37" + "6", "receive", "s1", "g5", want{"SKU-CASE", "receive", "g5", 6}, ""},
		{"FNC1 without symbology", "0109506000134352" + "10B1" + gs + "21S1", "receive", "s1", "g6", want{"SKU-GS1", "receive", "g6", 1}, ""},
		{"expiry end of month (day 00)", "(01)09506000134352(17)260200", "receive", "s1", "g7", want{"SKU-GS1", "receive", "g7", 1}, ""},
		{"count mode with quantity", "(01)09506000134352(30)40", "", "counter", "g8", want{"SKU-GS1", "count", "g8", 40}, ""},
		{"GS1 bad GTIN check digit", "(01)09506000134353(10)A", "receive", "s1", "h1", want{}, drivers.ReasonBadBarcode},
		{"GS1 bad date", "(01)09506000134352(17)261332", "receive", "s1", "h2", want{}, drivers.ReasonBadBarcode},
		{"GS1 unsupported AI", "(01)09506000134352(99)X", "receive", "s1", "h3", want{}, drivers.ReasonBadBarcode},
		{"GS1 truncated GTIN", "]C1010950600013", "receive", "s1", "h4", want{}, drivers.ReasonBadBarcode},
		{"GS1 batch too long", "(01)09506000134352(10)ABCDEFGHIJKLMNOPQRSTU", "receive", "s1", "h5", want{}, drivers.ReasonBadBarcode},
		{"GS1 without GTIN", "(10)ABC(17)261231", "receive", "s1", "h6", want{}, drivers.ReasonBadBarcode},
		{"GS1 letters in count", "(01)09506000134352(30)1A", "receive", "s1", "h7", want{}, drivers.ReasonBadBarcode},
		{"GS1 unclosed paren", "(01", "receive", "s1", "h8", want{}, drivers.ReasonBadBarcode},
		{"truncated symbology id", "]C", "receive", "s1", "h9", want{}, drivers.ReasonBadBarcode},
		{"garbage", "hello", "receive", "s1", "h10", want{}, drivers.ReasonBadBarcode},
		// Quantities and ambiguity: rejected with the AI named, never guessed.
		{"(30)0 on a receive", "(01)09506000134352(30)0", "receive", "s1", "q1", want{}, drivers.ReasonBadField},
		{"(30)0 on a count is a count of zero", "(01)09506000134352(30)0", "", "counter", "q2", want{"SKU-GS1", "count", "q2", 0}, ""},
		{"(37)0 on a count", "]C10219506000134359" + "370", "count", "s1", "q3", want{"SKU-CASE", "count", "q3", 0}, ""},
		{"(37) and (30) conflict", "(01)09506000134352(37)5(30)3", "receive", "s1", "q4", want{}, drivers.ReasonBadBarcode},
		{"(30) and (37) same value", "(01)09506000134352(30)5(37)5", "receive", "s1", "q5", want{}, drivers.ReasonBadBarcode},
		{"AI twice with different data", "(01)09506000134352(10)A(10)B", "receive", "s1", "q6", want{}, drivers.ReasonBadBarcode},
		{"AI twice with the same data", "(01)09506000134352(10)A(10)A", "receive", "s1", "q7", want{"SKU-GS1", "receive", "q7", 1}, ""},
		{"missing GS after (10) hides (30)", "]C10109506000134352" + "10LOT7" + "30" + "05", "receive", "s1", "q8", want{}, drivers.ReasonBadBarcode},
		{"missing GS after (21) hides (17)", "]d2010950600013435221XYZ" + "17270101", "pick", "s1", "", want{}, drivers.ReasonBadBarcode},
		{"missing GS after (10) hides (17) and (30)", "0109506000134352" + "10L" + "17261231" + "3012", "receive", "s1", "q9", want{}, drivers.ReasonBadBarcode},
		{"GS after (10) keeps (30)", "]C10109506000134352" + "10LOT7" + gs + "30" + "05", "receive", "s1", "q10", want{"SKU-GS1", "receive", "q10", 5}, ""},
		{"batch with digits but no element", "]C10109506000134352" + "10LOT-3", "receive", "s1", "q11", want{"SKU-GS1", "receive", "q11", 1}, ""},
		{"count of 53703 is not (37)03", "]C10109506000134352" + "30" + "53703", "count", "s1", "q12", want{"SKU-GS1", "count", "q12", 53703}, ""},
		// Ids and types.
		{"no id, no serial", "4006381333931", "sale", "s1", "", want{}, drivers.ReasonMissingID},
		{"no id, at-least-once device", "4006381333931", "sale", "alo", "", want{"SKU-EAN13", "sale", "", 1}, ""},
		{"no type anywhere", "4006381333931", "", "s1", "i1", want{}, drivers.ReasonBadField},
		{"unknown type in topic", "4006381333931", "steal", "s1", "i2", want{}, drivers.ReasonUnknownType},
		{"transfer cannot be scanned", "4006381333931", "transfer", "s1", "i3", want{}, drivers.ReasonUnknownType},
		{"count mode without quantity", "4006381333931", "", "counter", "i4", want{}, drivers.ReasonBadField},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := drivers.Message{Device: tc.device, DeviceFixed: true, Subtopic: tc.sub, Payload: []byte(tc.text)}
			if tc.idProp != "" {
				msg.Properties = map[string]string{IDProperty: tc.idProp}
			}
			items := newDriver(t).Decode(msg)
			require.Len(t, items, 1)
			it := items[0]
			if tc.reason != "" {
				require.NotNil(t, it.Rejected, "want %s", tc.reason)
				require.Equal(t, tc.reason, it.Rejected.Reason, it.Rejected.Message)
				require.Equal(t, tc.text, string(it.Raw))
				return
			}
			require.Nil(t, it.Rejected)
			require.Equal(t, tc.want.sku, it.Event.SKU)
			require.Equal(t, tc.want.typ, it.Event.Type)
			require.Equal(t, tc.want.qty, it.Event.Qty)
			if tc.want.id != "" {
				require.Equal(t, tc.want.id, it.Event.ID)
			} else {
				require.Regexp(t, `^alo-[0-9a-f]{24}$`, it.Event.ID)
			}
		})
	}
}

func TestDriver_DecodeJSONScan(t *testing.T) {
	items := newDriver(t).Decode(drivers.Message{Device: "s1", DeviceFixed: true,
		Payload: []byte(`{"id":"j1","type":"receive","barcode":"4006381333931","qty":3}`)})
	require.Len(t, items, 1)
	require.Nil(t, items[0].Rejected)
	require.Equal(t, "SKU-EAN13", items[0].Event.SKU)
	require.Equal(t, int64(3), items[0].Event.Qty)
}

func FuzzDriver_Decode(f *testing.F) {
	d := newDriver(f)
	f.Fuzz(func(t *testing.T, payload []byte, sub string) {
		items := d.Decode(drivers.Message{Device: "s1", DeviceFixed: true, Subtopic: sub, Payload: payload,
			Properties: map[string]string{IDProperty: "f1"}})
		require.NotEmpty(t, items)
		for _, it := range items {
			if it.Rejected != nil {
				require.NotEmpty(t, it.Rejected.Reason)
				continue
			}
			e := it.Event
			require.Nil(t, drivers.Validate(&e))
		}
	})
}

func FuzzParseElements(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		elems, err := ParseElements(s)
		if err != nil {
			return
		}
		for _, e := range elems {
			spec := ais[e.AI]
			require.LessOrEqual(t, len(e.Data), spec.length)
			require.NotEmpty(t, e.Data)
		}
	})
}
