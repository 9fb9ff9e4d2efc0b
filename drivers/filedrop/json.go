package filedrop

import (
	"bytes"
	"encoding/json"
)

// jsonNumber keeps a CSV number as written, so the events driver applies
// its own integer rules ("1.5" and "5x" are rejected, not coerced); text
// that is not a JSON number stays a string and is rejected the same way.
func jsonNumber(s string) any {
	if json.Valid([]byte(s)) && s != "" && (s[0] == '-' || s[0] >= '0' && s[0] <= '9') {
		return json.Number(s)
	}
	return s
}

func jsonDecoder(b []byte) *json.Decoder {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec
}

func marshal(obj map[string]any) ([]byte, error) { return json.Marshal(obj) }
