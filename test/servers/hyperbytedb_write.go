package servers

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/influxdata/influxdb1-client/models"
)

// How the emulation takes /write. HyperbyteDB parses line protocol with
// the influxdb_line_protocol crate of InfluxDB IOx
// (hyperbytedb/Cargo.toml:25-26, application/line_protocol.rs:3, :86)
// and keeps the names it yields (line_protocol.rs:105-130), which are not
// the names InfluxDB 1.x reads from the same bytes:
//   - a `\\` in a measurement, tag key, tag value or field key is one
//     backslash (1.x keeps both);
//   - a `\"` in a field key stays a backslash and a quote (1.x unescapes
//     it to a quote).
//
// And where 1.x refuses a point whose field has another type than the
// stored one (field type conflict), HyperbyteDB widens: float absorbs
// integer (domain/field_type.rs:11-17, merged on ingest at
// application/ingest_metadata.rs:499). The emulation reproduces the case a
// client cannot see: an integer written to a float field is stored as a
// float, silently. (The other way, HyperbyteDB turns the stored integers
// into floats, which a 1.x backend cannot emulate; it answers 1.x's
// conflict.)

// write rewrites a /write body as HyperbyteDB reads it and passes it on.
func (h *HyperbyteDB) write(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	q := r.URL.Query()
	types := map[string]map[string]string{} // measurement → field → type, from the backend
	var out bytes.Buffer
	for _, line := range pointLines(body) {
		line = bytes.TrimRight(line, "\r")
		if len(bytes.TrimSpace(line)) == 0 || line[0] == '#' {
			continue
		}
		p, err := h.hyperbytePoint(line, q.Get("db"), q.Get("rp"), q.Get("precision"), types)
		if err != nil {
			// What neither parser takes: the backend's answer says why.
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
			h.forward(w, r)
			return
		}
		out.WriteString(p.PrecisionString("n"))
		out.WriteByte('\n')
	}
	q.Set("precision", "n")
	r.URL.RawQuery = q.Encode()
	r.Body, r.ContentLength = io.NopCloser(&out), int64(out.Len())
	h.forward(w, r)
}

// pointLines splits a body into points: at newlines, except inside a
// quoted string field value, which may hold one.
func pointLines(body []byte) [][]byte {
	var out [][]byte
	start, fields, quoted := 0, false, false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case c == '\\':
			i++
		case c == ' ' && !fields:
			fields = true
		case c == '"' && fields:
			quoted = !quoted
		case c == '\n' && !quoted:
			out = append(out, body[start:i])
			start, fields = i+1, false
		}
	}
	return append(out, body[start:])
}

// hyperbytePoint is the point HyperbyteDB stores for one line: 1.x's
// parse for the values and time, the IOx reading for the names, and
// integer values widened into float fields.
func (h *HyperbyteDB) hyperbytePoint(line []byte, db, rp, precision string, types map[string]map[string]string) (models.Point, error) {
	if precision == "" {
		precision = "n"
	}
	points, err := models.ParsePointsWithPrecision(line, time.Now().UTC(), precision)
	if err != nil {
		return nil, err
	}
	if len(points) != 1 {
		return nil, errors.New("not one point")
	}
	p := points[0]
	name, tags, keys, err := ioxNames(line)
	if err != nil {
		return nil, err
	}
	stored, ok := types[name]
	if !ok {
		if stored, err = h.fieldTypes(db, rp, name); err != nil {
			return nil, err
		}
		types[name] = stored
	}
	fields := models.Fields{}
	iter := p.FieldIterator()
	for i := 0; iter.Next(); i++ {
		if i >= len(keys) {
			return nil, errors.New("field count differs between parsers")
		}
		var v any
		switch iter.Type() {
		case models.Float:
			v, err = iter.FloatValue()
		case models.Integer:
			var n int64
			n, err = iter.IntegerValue()
			v = n
			if stored[keys[i]] == "float" {
				v = float64(n) // field_type.rs:16: float absorbs integer
			}
		case models.Unsigned:
			v, err = iter.UnsignedValue()
		case models.String:
			v = iter.StringValue()
		case models.Boolean:
			v, err = iter.BooleanValue()
		}
		if err != nil {
			return nil, err
		}
		fields[keys[i]] = v
		if _, known := stored[keys[i]]; !known {
			stored[keys[i]] = influxType(v) // later lines of the write see it
		}
	}
	return models.NewPoint(name, models.NewTags(tags), fields, p.Time())
}

// influxType is SHOW FIELD KEYS's name of a field value's type.
func influxType(v any) string {
	switch v.(type) {
	case float64:
		return "float"
	case int64:
		return "integer"
	case uint64:
		return "unsigned"
	case string:
		return "string"
	}
	return "boolean"
}

// fieldTypes lists the backend's field types of measurement m.
func (h *HyperbyteDB) fieldTypes(db, rp, m string) (map[string]string, error) {
	out := map[string]string{}
	if db == "" {
		return out, nil
	}
	from := quoteIdent(m)
	if rp != "" {
		from = quoteIdent(rp) + "." + from
	}
	res, err := h.backend(request{db: db}, "SHOW FIELD KEYS ON "+quoteIdent(db)+" FROM "+from)
	if err != nil {
		return nil, err
	}
	for _, s := range res.Series {
		for _, row := range s.Values {
			if len(row) == 2 {
				out[fmt.Sprint(row[0])] = fmt.Sprint(row[1])
			}
		}
	}
	return out, nil
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}

// ioxNames reads a line's measurement, tags and field keys as the IOx
// parser does: a backslash escapes ',', '=', ' ' and itself; in field keys
// `\"` is kept as it is.
func ioxNames(line []byte) (name string, tags map[string]string, keys []string, err error) {
	s := string(line)
	i := 0
	// token reads up to an unescaped stop byte.
	token := func(stops string, keepQuote bool) string {
		var b strings.Builder
		for i < len(s) && !strings.ContainsRune(stops, rune(s[i])) {
			if s[i] == '\\' && i+1 < len(s) {
				switch next := s[i+1]; {
				case next == '"' && keepQuote:
					b.WriteString(`\"`)
					i += 2
					continue
				case next == '\\' || next == ',' || next == '=' || next == ' ':
					b.WriteByte(next)
					i += 2
					continue
				}
			}
			b.WriteByte(s[i])
			i++
		}
		return b.String()
	}
	name = token(", ", false)
	tags = map[string]string{}
	for i < len(s) && s[i] == ',' {
		i++
		k := token("=", false)
		i++ // '='
		tags[k] = token(", ", false)
	}
	if i >= len(s) || s[i] != ' ' {
		return "", nil, nil, errors.New("no fields")
	}
	i++
	for {
		keys = append(keys, token("=", true))
		i++ // '='
		// Skip the value: a quoted string (with escapes) or a bare value.
		if i < len(s) && s[i] == '"' {
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
				}
			}
			i++
		} else {
			for i < len(s) && s[i] != ',' && s[i] != ' ' {
				i++
			}
		}
		if i >= len(s) || s[i] != ',' {
			return name, tags, keys, nil
		}
		i++
	}
}
