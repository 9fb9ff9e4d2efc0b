package drivers

import "strings"

// GTIN14 checks a numeric barcode of 8, 12, 13 or 14 digits (EAN-8, UPC-A,
// EAN-13, GTIN-14), verifies its GS1 check digit and left-pads it to the
// 14 digits the barcode table is keyed by.
func GTIN14(code string) (gtin string, reason string) {
	switch len(code) {
	case 8, 12, 13, 14:
	default:
		return "", "must have 8, 12, 13 or 14 digits"
	}
	if !allDigits(code) {
		return "", "must be digits only"
	}
	if !CheckDigitValid(code) {
		return "", "check digit is wrong"
	}
	return strings.Repeat("0", 14-len(code)) + code, ""
}

// CheckDigitValid verifies the GS1 mod-10 check digit (the last digit) of a
// string of digits: from the right, digits are weighted 3, 1, 3, …
func CheckDigitValid(digits string) bool {
	if len(digits) < 2 || !allDigits(digits) {
		return false
	}
	sum := 0
	body := digits[:len(digits)-1]
	for i := range len(body) {
		d := int(body[len(body)-1-i] - '0')
		if i%2 == 0 {
			d *= 3
		}
		sum += d
	}
	return int(digits[len(digits)-1]-'0') == (10-sum%10)%10
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}
