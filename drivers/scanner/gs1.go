package scanner

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/edgestock/edgestock/drivers"
)

// groupSeparator (ASCII GS, 0x1D) ends a variable-length GS1 element when
// another follows: it is how scanners transmit FNC1.
const groupSeparator = '\x1d'

// Element is one GS1 element string part: an application identifier and
// its data.
type Element struct {
	AI   string
	Data string
}

// Scan is what a barcode says.
type Scan struct {
	GTIN   string // 14 digits, check digit verified
	Batch  string // AI 10
	Expiry string // AI 17, YYMMDD
	Serial string // AI 21
	Qty    int64  // AI 30 or 37, when HasQty
	// HasQty is set when the string carries a quantity: (30)0 is a count of
	// zero, not a missing quantity.
	HasQty bool
}

// aiSpec describes an application identifier: its data length, and whether
// that length is fixed or a maximum, and whether the data is numeric.
type aiSpec struct {
	length  int
	fixed   bool
	numeric bool
}

// ais are the application identifiers edgestock understands: identification,
// batch, dates, serial and counts. Others are rejected by name rather than
// guessed, since a wrong split would misread every element after it.
var ais = map[string]aiSpec{
	"00": {18, true, true},   // SSCC
	"01": {14, true, true},   // GTIN
	"02": {14, true, true},   // GTIN of contained trade items
	"10": {20, false, false}, // batch or lot
	"11": {6, true, true},    // production date
	"13": {6, true, true},    // packaging date
	"15": {6, true, true},    // best before
	"16": {6, true, true},    // sell by
	"17": {6, true, true},    // expiry
	"20": {2, true, true},    // internal product variant
	"21": {20, false, false}, // serial number
	"30": {8, false, true},   // variable count of items
	"37": {8, false, true},   // count of trade items in a logistic unit
}

// aiFor finds the AI at the start of s: two digits for those above.
func aiFor(s string) (string, aiSpec, error) {
	if len(s) < 2 {
		return "", aiSpec{}, fmt.Errorf("truncated application identifier %q", s)
	}
	ai := s[:2]
	spec, ok := ais[ai]
	if !ok {
		return "", aiSpec{}, fmt.Errorf("application identifier (%s) is not supported", ai)
	}
	return ai, spec, nil
}

// ParseElements reads a GS1 element string in FNC1 form ("0109506000134352
// 17201225 10ABC<GS>21…") or in human-readable parenthesised form
// ("(01)09506000134352(17)201225(10)ABC").
func ParseElements(s string) ([]Element, error) {
	if strings.HasPrefix(s, "(") {
		return parseParenthesised(s)
	}
	var out []Element
	for len(s) > 0 {
		ai, spec, err := aiFor(s)
		if err != nil {
			return nil, err
		}
		s = s[len(ai):]
		var data string
		if spec.fixed {
			if len(s) < spec.length {
				return nil, fmt.Errorf("(%s) needs %d characters, has %d", ai, spec.length, len(s))
			}
			data, s = s[:spec.length], s[spec.length:]
			s = strings.TrimPrefix(s, string(groupSeparator)) // tolerated after fixed fields
		} else {
			end := strings.IndexByte(s, groupSeparator)
			if end < 0 {
				end = len(s)
				// Only a text field short enough to be valid can hide
				// elements unnoticed; a longer one fails below anyway.
				if !spec.numeric && len(s) <= spec.length {
					if hidden, ok := hiddenElements(s); ok {
						return nil, fmt.Errorf("(%s) %q runs to the end of the string and ends with what reads as %s: "+
							"is the GS separator (FNC1) after (%s) missing? Configure the scanner to transmit it, or send the parenthesised form",
							ai, s, hidden, ai)
					}
				}
			}
			data, s = s[:end], s[end:]
			s = strings.TrimPrefix(s, string(groupSeparator))
		}
		if err := checkElement(ai, spec, data); err != nil {
			return nil, err
		}
		out = append(out, Element{AI: ai, Data: data})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty element string")
	}
	return out, nil
}

func parseParenthesised(s string) ([]Element, error) {
	var out []Element
	for len(s) > 0 {
		if s[0] != '(' {
			return nil, fmt.Errorf("expected '(' at %q", s)
		}
		end := strings.IndexByte(s, ')')
		if end < 0 {
			return nil, fmt.Errorf("unclosed '(' in %q", s)
		}
		ai := s[1:end]
		spec, ok := ais[ai]
		if !ok {
			return nil, fmt.Errorf("application identifier (%s) is not supported", ai)
		}
		s = s[end+1:]
		next := strings.IndexByte(s, '(')
		if next < 0 {
			next = len(s)
		}
		data := s[:next]
		s = s[next:]
		if err := checkElement(ai, spec, data); err != nil {
			return nil, err
		}
		out = append(out, Element{AI: ai, Data: data})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty element string")
	}
	return out, nil
}

// swallowable are the AIs a variable-length field that lacks its GS
// separator most often swallows: fixed-length numeric ones (with check
// digits and dates to verify) and quantities. A suffix of the field that
// reads as a complete element string of these is taken as a missing GS,
// not guessed either way.
var swallowable = map[string]bool{"00": true, "01": true, "02": true, "11": true, "13": true, "15": true, "16": true,
	"17": true, "30": true, "37": true}

// hiddenElements reports whether a suffix of a variable-length field's data
// (FNC1 form, no GS after it) parses as elements of the swallowable AIs,
// naming them.
func hiddenElements(data string) (string, bool) {
	for i := 1; i+2 < len(data); i++ {
		if !swallowable[data[i:i+2]] {
			continue
		}
		elems, err := ParseElements(data[i:])
		if err != nil {
			continue
		}
		var names []string
		ok := true
		for _, e := range elems {
			if !swallowable[e.AI] {
				ok = false
				break
			}
			names = append(names, "("+e.AI+")"+e.Data)
		}
		if ok {
			return strings.Join(names, ""), true
		}
	}
	return "", false
}

// checkElement validates one element's data against its AI.
func checkElement(ai string, spec aiSpec, data string) error {
	switch {
	case spec.fixed && len(data) != spec.length:
		return fmt.Errorf("(%s) needs %d characters, has %d", ai, spec.length, len(data))
	case len(data) == 0 || len(data) > spec.length:
		return fmt.Errorf("(%s) needs 1-%d characters, has %d", ai, spec.length, len(data))
	case spec.numeric && !isDigits(data):
		return fmt.Errorf("(%s) must be numeric: %q", ai, data)
	case !spec.numeric && !isGS1Chars(data):
		return fmt.Errorf("(%s) has characters outside the GS1 set: %q", ai, data)
	}
	switch ai {
	case "01", "02", "00":
		if !drivers.CheckDigitValid(data) {
			return fmt.Errorf("(%s) %s: check digit is wrong", ai, data)
		}
	case "11", "13", "15", "16", "17":
		if !validDate(data) {
			return fmt.Errorf("(%s) %s is not a YYMMDD date", ai, data)
		}
	}
	return nil
}

// ToScan interprets elements as a scan of a trade item. An AI given twice
// with different data, or both quantities (30) and (37), is ambiguous and
// an error naming the AIs.
func ToScan(elems []Element) (Scan, error) {
	var s Scan
	seen := make(map[string]string, len(elems))
	for _, e := range elems {
		if prev, ok := seen[e.AI]; ok && prev != e.Data {
			return s, fmt.Errorf("(%s) appears twice, as %s and %s: which one is meant is ambiguous", e.AI, prev, e.Data)
		}
		seen[e.AI] = e.Data
		if q30, q37 := seen["30"], seen["37"]; q30 != "" && q37 != "" {
			return s, fmt.Errorf("(30) %s and (37) %s both give a quantity: send one", q30, q37)
		}
		switch e.AI {
		case "01", "02":
			s.GTIN = e.Data
		case "10":
			s.Batch = e.Data
		case "17":
			s.Expiry = e.Data
		case "21":
			s.Serial = e.Data
		case "30", "37":
			n, _ := strconv.ParseInt(e.Data, 10, 64) // digits only, at most 8
			s.Qty, s.HasQty = n, true
		}
	}
	if s.GTIN == "" {
		return s, fmt.Errorf("no GTIN (01 or 02) in the element string")
	}
	return s, nil
}

// validDate checks a GS1 YYMMDD date; day 00 means the end of the month.
func validDate(yymmdd string) bool {
	if yymmdd[4:] == "00" {
		yymmdd = yymmdd[:4] + "01"
	}
	_, err := time.Parse("060102", yymmdd)
	return err == nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isGS1Chars reports whether s uses only GS1 AI encodable character set 82.
func isGS1Chars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '!' || c > 'z' || strings.IndexByte("#$@[\\]^`", c) >= 0 {
			return false
		}
	}
	return true
}
