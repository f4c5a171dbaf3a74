package export

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// generalAppend is the path appendValue must equal byte for byte: the
// value parsed by fieldValue, then written by the line-protocol encoder.
func generalAppend(kind lineprotocol.ValueKind, raw string) (string, bool, error) {
	v, ok, err := fieldValue(kind, json.RawMessage(raw))
	if !ok || err != nil {
		return "", ok, err
	}
	return string(v.AppendBytes(nil)), true, nil
}

// checkAppendValue fails when appendValue and the general path disagree
// on raw: in the bytes written, in null-ness, or in whether it is an
// error.
func checkAppendValue(t *testing.T, kind lineprotocol.ValueKind, raw string) {
	t.Helper()
	want, wantOK, wantErr := generalAppend(kind, raw)
	got, ok, err := appendValue([]byte("prefix="), kind, json.RawMessage(raw))
	if (err != nil) != (wantErr != nil) || ok != wantOK {
		t.Fatalf("%s %q: got ok=%v err=%v, want ok=%v err=%v", kind, raw, ok, err, wantOK, wantErr)
	}
	if err == nil && string(got) != "prefix="+want {
		t.Fatalf("%s %q: wrote %q, want %q", kind, raw, got, "prefix="+want)
	}
}

// TestAppendValueMatchesTheEncoder: the text rewrite of numbers gives the
// encoder's bytes, so dumps stay byte-identical (dedup across releases
// depends on it), for the spellings InfluxDB (Go's encoding/json) and
// HyperbyteDB (Rust's serde_json: "1.0", "1e21") use and for edge cases.
func TestAppendValueMatchesTheEncoder(t *testing.T) {
	floats := []string{"0", "-0", "0.0", "1", "-1", "1.0", "12.345", "0.5", "0.05", "0.0001", "0.00001",
		"1e-05", "1e-5", "1.5e-7", "1.5E-07", "100000", "999999", "1000000", "1234567", "1234567.0",
		"123456.7", "1e+20", "1e20", "1e21", "1e+21", "100000000000000000000", "123456789012345",
		"1234567890123456", "0.1234567890123456", "0.30000000000000004", "1.7976931348623157e308",
		"5e-324", "1e-300", "1e-301", "1e300", "1e301", "1e400", "-12.5e3", "1.", ".5", "1e", "1e+",
		"--1", "1.2.3", "1e5.5", "+1", "", "-", "null", "true", "\"1\"", "007", "1.50", "10.0e-3"}
	for _, raw := range floats {
		checkAppendValue(t, lineprotocol.Float, raw)
	}
	ints := []string{"0", "-0", "1", "-1", "00", "01", "123456789012345678", "-123456789012345678",
		"9223372036854775807", "-9223372036854775808", "9223372036854775808", "18446744073709551615",
		"18446744073709551616", "1.0", "1e3", "", "-", "null", "+1"}
	for _, raw := range ints {
		checkAppendValue(t, lineprotocol.Int, raw)
		checkAppendValue(t, lineprotocol.Uint, raw)
	}
	for _, raw := range []string{"true", "false", "0", "1", "null", "TRUE", "t"} {
		checkAppendValue(t, lineprotocol.Bool, raw)
	}
	for _, raw := range []string{`""`, `"a b"`, `"ü x"`, `"a\"b"`, `"a\\b"`, `"a\nb"`, "\"a\tb\"", "\"a\nb\"",
		"\"\xff\"", `"\u003c"`, `"`, `x`, `12`, `null`} {
		checkAppendValue(t, lineprotocol.String, raw)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		f := randomFloat(r)
		for _, raw := range floatSpellings(f, r) {
			checkAppendValue(t, lineprotocol.Float, raw)
		}
		checkAppendValue(t, lineprotocol.Int, strconv.FormatInt(r.Int64()>>r.IntN(64), 10))
	}
}

// randomFloat draws a float64 of a random number of significant digits
// (1 to 17) and a random magnitude, as metrics are: mostly few digits.
func randomFloat(r *rand.Rand) float64 {
	digits := 1 + r.IntN(17)
	mantissa := r.Int64N(int64(math.Pow10(min(digits, 18))))
	f := float64(mantissa) * math.Pow10(r.IntN(60)-30)
	if digits == 17 {
		f = r.Float64() * math.Pow10(r.IntN(60)-30)
	}
	if r.IntN(2) == 0 {
		f = -f
	}
	return f
}

// floatSpellings are the JSON spellings of f that servers write: Go's
// encoding/json (InfluxDB), the shortest %e and %g forms, and a Rust-like
// whole number with ".0".
func floatSpellings(f float64, r *rand.Rand) []string {
	goJSON, err := json.Marshal(f)
	if err != nil {
		panic(err)
	}
	out := []string{string(goJSON), strconv.FormatFloat(f, 'e', -1, 64), strconv.FormatFloat(f, 'g', -1, 64),
		strconv.FormatFloat(f, 'f', r.IntN(20), 64)}
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		out = append(out, strconv.FormatFloat(f, 'f', -1, 64)+".0")
	}
	return out
}

// FuzzAppendValue holds appendValue to the general path on any input.
func FuzzAppendValue(f *testing.F) {
	for _, seed := range []string{"12.345", "1e21", "-0", "1234567.0", "0.00001", "7", "true"} {
		f.Add(seed, uint8(lineprotocol.Float))
	}
	f.Fuzz(func(t *testing.T, raw string, kind uint8) {
		k := []lineprotocol.ValueKind{lineprotocol.Float, lineprotocol.Int, lineprotocol.Uint, lineprotocol.Bool,
			lineprotocol.String}[kind%5]
		checkAppendValue(t, k, raw)
	})
}
