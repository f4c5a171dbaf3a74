package export

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// appendValue appends the line-protocol form of one JSON value of a query
// answer to dst, as fieldValue followed by lineprotocol.Value.AppendBytes
// would, byte for byte. ok is false for null. Numbers and booleans in their
// usual JSON spelling are rewritten as text, without the parse into a
// float64 and the shortest-digit formatting back (together most of the
// dump's CPU time on numeric data); anything else takes that general path.
func appendValue(dst []byte, kind lineprotocol.ValueKind, raw json.RawMessage) (out []byte, ok bool, err error) {
	switch kind {
	case lineprotocol.Int:
		if isCanonicalInt(raw, true) {
			return append(append(dst, raw...), 'i'), true, nil
		}
	case lineprotocol.Uint:
		if isCanonicalInt(raw, false) {
			return append(append(dst, raw...), 'u'), true, nil
		}
	case lineprotocol.Float:
		if out, ok := appendShortFloat(dst, raw); ok {
			return out, true, nil
		}
	case lineprotocol.Bool:
		if string(raw) == "true" || string(raw) == "false" {
			return append(dst, raw...), true, nil
		}
	case lineprotocol.String:
		if isPlainJSONString(raw) {
			// Quoted, with nothing to unescape nor to escape: the
			// same bytes in both languages.
			return append(dst, raw...), true, nil
		}
	}
	v, ok, err := fieldValue(kind, raw)
	if !ok || err != nil {
		return dst, ok, err
	}
	return v.AppendBytes(dst), true, nil
}

// isPlainJSONString reports whether raw is a JSON string holding valid
// UTF-8 and none of the bytes either JSON or line protocol escapes
// (backslash, quote, newline, carriage return, tab).
func isPlainJSONString(raw []byte) bool {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return false
	}
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if escapedInStrings[c] {
			return false
		}
	}
	return utf8.Valid(inner)
}

// escapedInStrings marks the bytes isPlainJSONString refuses.
var escapedInStrings = [256]bool{'\\': true, '"': true, '\n': true, '\r': true, '\t': true}

// maxExactDigits is the number of significant decimal digits every
// float64 keeps (DBL_DIG): a decimal of at most that many digits parses to
// a float64 whose shortest round-trip spelling has the same digits.
const maxExactDigits = 15

// isCanonicalInt reports whether raw is an integer as strconv.AppendInt
// writes it (no sign but '-', no leading zero, no "-0") that fits in an
// int64 or, unsigned, a uint64: up to 18 digits always fit, longer ones
// take the general path, which range-checks them.
func isCanonicalInt(raw []byte, signed bool) bool {
	digits := raw
	if signed && len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 18 || (digits[0] == '0' && (len(digits) > 1 || len(raw) > 1)) {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// appendShortFloat appends the shortest 'g' form of the JSON number raw,
// as strconv.AppendFloat(dst, f, 'g', -1, 64) (what line protocol writes)
// would for the float64 f that raw parses to, when raw has at most
// maxExactDigits significant digits and a modest exponent: then raw's
// digits are f's shortest digits, and only their layout changes. ok is
// false, with dst unchanged, for anything else: zero (whose sign matters),
// more digits, extreme exponents, or what is not a JSON number.
func appendShortFloat(dst, raw []byte) ([]byte, bool) {
	var digits [maxExactDigits]byte
	nd := 0
	// point places the decimal point: the value is 0.<digits> * 10^point.
	point, zeros := 0, 0 // zeros: zero digits held back until a non-zero one follows
	sawDigit, sawPoint := false, false
	i := 0
	if len(raw) > 0 && raw[0] == '-' {
		i = 1
	}
	for ; i < len(raw); i++ {
		switch c := raw[i]; {
		case c >= '0' && c <= '9':
			sawDigit = true
			if !sawPoint {
				point++
			}
			switch {
			case c == '0' && nd == 0:
				point-- // a leading zero sets no digit and moves no point
			case c == '0':
				zeros++
			case nd+zeros >= maxExactDigits:
				return dst, false
			default:
				for ; zeros > 0; zeros-- {
					digits[nd] = '0'
					nd++
				}
				digits[nd] = c
				nd++
			}
		case c == '.' && sawDigit && !sawPoint && i+1 < len(raw):
			sawPoint = true
		case (c == 'e' || c == 'E') && sawDigit:
			exp, ok := parseSmallExponent(raw[i+1:])
			if !ok {
				return dst, false
			}
			point += exp
			i = len(raw)
		default:
			return dst, false
		}
	}
	if nd == 0 || point < -300 || point > 300 {
		return dst, false
	}
	if raw[0] == '-' {
		dst = append(dst, '-')
	}
	// strconv's shortest 'g' writes %e when the exponent is below -4 or
	// at least 6 (its "precision 6 for this decision"), else %f.
	if exp := point - 1; exp < -4 || exp >= 6 {
		dst = append(dst, digits[0])
		if nd > 1 {
			dst = append(append(dst, '.'), digits[1:nd]...)
		}
		sign := byte('+')
		if exp < 0 {
			sign, exp = '-', -exp
		}
		dst = append(dst, 'e', sign)
		if exp < 10 {
			dst = append(dst, '0')
		}
		return strconv.AppendInt(dst, int64(exp), 10), true
	}
	switch {
	case point <= 0:
		dst = append(dst, '0', '.')
		for range -point {
			dst = append(dst, '0')
		}
		return append(dst, digits[:nd]...), true
	case point >= nd:
		dst = append(dst, digits[:nd]...)
		for range point - nd {
			dst = append(dst, '0')
		}
		return dst, true
	default:
		return append(append(append(dst, digits[:point]...), '.'), digits[point:nd]...), true
	}
}

// parseSmallExponent parses the exponent of a JSON number ([+-]digits),
// up to four digits; ok is false for anything else.
func parseSmallExponent(b []byte) (int, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg, b = b[0] == '-', b[1:]
	}
	if len(b) == 0 || len(b) > 4 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}
