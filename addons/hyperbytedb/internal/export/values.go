package export

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// fieldKinds maps SHOW FIELD KEYS types to line-protocol kinds. JSON
// cannot tell 1.0 from 1, so the declared type decides how a value is
// written: without it a float field holding whole numbers would come back
// as integers.
var fieldKinds = map[string]lineprotocol.ValueKind{
	"float":    lineprotocol.Float,
	"integer":  lineprotocol.Int,
	"unsigned": lineprotocol.Uint,
	"string":   lineprotocol.String,
	"boolean":  lineprotocol.Bool,
}

// typeName is the SHOW FIELD KEYS type of a kind.
func typeName(kind lineprotocol.ValueKind) string {
	for name, k := range fieldKinds {
		if k == kind {
			return name
		}
	}
	return kind.String()
}

// jsonNull is how a query answer marks a field the point does not have.
var jsonNull = []byte("null")

// fieldValue converts one JSON value of a query answer into a line-protocol
// value of the given kind. ok is false for null (no such field on this
// point). The returned value may refer to raw.
func fieldValue(kind lineprotocol.ValueKind, raw json.RawMessage) (v lineprotocol.Value, ok bool, err error) {
	if bytes.Equal(raw, jsonNull) {
		return v, false, nil
	}
	if kind == lineprotocol.Bool && len(raw) == 1 && (raw[0] == '0' || raw[0] == '1') {
		// HyperbyteDB stores booleans as UInt8 and answers 1 or 0
		// (hyperbytedb/src/adapters/chdb/native_adapter.rs:91, :1740);
		// SHOW FIELD KEYS still says boolean.
		return lineprotocol.BoolValue(raw[0] == '1'), true, nil
	}
	if kind != lineprotocol.String {
		v, err = lineprotocol.NewValueFromBytes(kind, raw)
		if err != nil {
			return v, false, fmt.Errorf("%s value %s: %w", kind, raw, err)
		}
		return v, true, nil
	}
	if len(raw) < 2 || raw[0] != '"' {
		return v, false, fmt.Errorf("string value %s is not a JSON string", raw)
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		// No JSON escapes: the bytes between the quotes are the string.
		v, err = lineprotocol.NewValueFromBytes(lineprotocol.String, raw[1:len(raw)-1])
	} else {
		var s string
		if err = json.Unmarshal(raw, &s); err == nil {
			v, err = lineprotocol.NewValueFromBytes(lineprotocol.String, []byte(s))
		}
	}
	if err != nil {
		return v, false, fmt.Errorf("string value %s: %w", raw, err)
	}
	return v, true, nil
}
