package events

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// scanObject must give up or agree with encoding/json exactly.
func checkScan(t *testing.T, payload []byte) (accepted bool) {
	var fast wireEvent
	if !scanObject(payload, &fast) {
		return false
	}
	var slow wireEvent
	require.NoError(t, json.Unmarshal(payload, &slow), "scanObject accepted what encoding/json rejects: %q", payload)
	// RawMessage: nil and absent are alike to toEvent (isAbsent); compare text.
	require.Equal(t, string(slow.Qty), string(fast.Qty), "qty of %q", payload)
	require.Equal(t, string(slow.Seq), string(fast.Seq), "seq of %q", payload)
	slow.Qty, slow.Seq, fast.Qty, fast.Seq = nil, nil, nil, nil
	require.Equal(t, slow, fast, "decoding %q", payload)
	return true
}

func TestScanObject(t *testing.T) {
	for _, c := range []struct {
		payload string
		fast    bool // the hand scanner decides it
	}{
		{`{"id":"e1","type":"receive","sku":"SKU-1","qty":5}`, true},
		{" \t\r\n{ \"id\" : \"e1\" , \"qty\" : -0 , \"seq\":9007199254740993 }\n", true},
		{`{}`, true},
		{`{"id":"a","id":"b","qty":1,"qty":2}`, true}, // the last one wins, as in encoding/json
		{`{"id":"e\"1","qty":1}`, false},              // escapes
		{`{"id":"é","qty":1}`, false},                 // non-ASCII
		{`{"ID":"e1","qty":1}`, false},                // case-insensitive key match
		{`{"id":"e1","extra":{"a":1},"qty":1}`, false},
		{`{"id":"e1","qty":1.5}`, false},
		{`{"id":"e1","qty":1e3}`, false},
		{`{"id":"e1","qty":01}`, false},
		{`{"id":"e1","qty":"5"}`, false},
		{`{"id":"e1","qty":null}`, false},
		{`{"id":null,"qty":1}`, false},
		{`{"id":"e1","qty":1,}`, false},
		{`{"id":"e1","qty":1} x`, false},
		{`{"id":"e1","qty":1}{}`, false},
		{`{"id":"e1"` + "\f" + `,"qty":1}`, false},
		{`[{"id":"e1","qty":1}]`, false},
		{`{"id":"e1","qty":-}`, false},
		{``, false},
	} {
		require.Equal(t, c.fast, checkScan(t, []byte(c.payload)), "%q", c.payload)
	}
}

// FuzzScanObject: on every input the hand scanner accepts, it agrees with
// encoding/json field for field.
func FuzzScanObject(f *testing.F) {
	for _, s := range []string{
		`{"id":"e1","type":"receive","sku":"SKU-1","qty":5,"location":"A-01","to_location":"B","ts":"2026-11-27T10:00:00Z","channel":"web","seq":12,"voids":"t","barcode":"4006381333931","device":"d1"}`,
		`{"id":"e1","qty":-3}`, `{ }`, `{"qty":0}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) { checkScan(t, payload) })
}
