package export

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/influxdata/influxdb1-client/models"
	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// The dump's points are v2 line protocol, one per line; InfluxDB 1.x's
// /write parses a dialect that agrees on everything but string fields
// holding a newline, tab or carriage return (v2 escapes them, 1.x keeps the
// backslash) and field keys holding a double quote. toWire validates a
// batch of dump lines and re-encodes just those points, with InfluxDB
// 1.x's own line-protocol package; every other line goes out as is.

// toWire checks every point of buf (dump lines, each ending in '\n') and
// returns the buffer to send, which is buf itself unless some point needs
// re-encoding. A failure names the point's index and column.
func toWire(buf []byte, sch *batchSchema) ([]byte, error) {
	dec := lineprotocol.NewDecoderWithBytes(buf)
	var reencode []int
	sch.reset()
	for i := 0; dec.Next(); i++ {
		again, err := inspectPoint(dec, sch)
		if err != nil {
			return nil, &pointError{index: i, err: err}
		}
		if again {
			reencode = append(reencode, i)
		}
	}
	if err := dec.Err(); err != nil {
		return nil, err
	}
	if len(reencode) == 0 {
		return buf, nil
	}
	return reencodeLines(buf, reencode)
}

// pointError is a point toWire rejected.
type pointError struct {
	index int // of the point in the batch
	err   error
}

func (e *pointError) Error() string { return e.err.Error() }
func (e *pointError) Unwrap() error { return e.err }

// inspectPoint decodes the decoder's current point fully (so every syntax
// error is caught here), records its names and field kinds in sch, and
// reports whether it needs re-encoding for 1.x.
func inspectPoint(dec *lineprotocol.Decoder, sch *batchSchema) (reencode bool, err error) {
	m, err := dec.Measurement()
	if err != nil {
		return false, err
	}
	if sch.hyper && backslashEscape(m) {
		return false, fmt.Errorf("measurement %q: %s", m, backslashProblem)
	}
	fields, tags := sch.measurement(m)
	for {
		key, value, err := dec.NextTag()
		if err != nil {
			return false, err
		}
		if key == nil {
			break
		}
		if sch.hyper && backslashEscape(value) {
			// Tag and field keys are held to [A-Za-z0-9_] (columnNameError).
			return false, fmt.Errorf("tag %s=%q of measurement %q: %s", key, value, m, backslashProblem)
		}
		if _, ok := tags[string(key)]; !ok {
			tags[string(key)] = struct{}{}
		}
	}
	for {
		key, v, err := dec.NextField()
		if err != nil {
			return false, err
		}
		if key == nil {
			break
		}
		if err := sch.field(fields, key, v.Kind()); err != nil {
			return false, err
		}
		reencode = reencode || bytes.IndexByte(key, '"') >= 0 ||
			(v.Kind() == lineprotocol.String && bytes.ContainsAny(v.BytesV(), "\n\r\t"))
	}
	t, err := dec.Time(lineprotocol.Nanosecond, time.Time{})
	if err != nil {
		return false, err
	}
	if t.IsZero() {
		return false, errors.New("point has no timestamp")
	}
	return reencode, nil
}

// backslashProblem is why a name with backslashEscape cannot be restored
// to HyperbyteDB: it parses line protocol with InfluxDB IOx's crate
// (hyperbytedb/Cargo.toml:25-26, application/line_protocol.rs:3, :86),
// which unescapes what 1.x and the dump keep, so it would store another
// name than the dump's, silently.
const backslashProblem = `HyperbyteDB's line-protocol parser reads \\ as one backslash (and a backslash before ',', '=' or ' ' ` +
	`as an escape), so it would store another name; rename it before the backup`

// backslashEscape reports whether a name holds a backslash that
// HyperbyteDB's parser would read as an escape.
func backslashEscape(name []byte) bool {
	for i := bytes.IndexByte(name, '\\'); i >= 0 && i+1 < len(name); {
		switch name[i+1] {
		case '\\', ',', '=', ' ':
			return true
		}
		next := bytes.IndexByte(name[i+1:], '\\')
		if next < 0 {
			return false
		}
		i += 1 + next
	}
	return false
}

// reencodeLines copies buf, replacing the listed lines with their 1.x form.
func reencodeLines(buf []byte, lines []int) ([]byte, error) {
	out := make([]byte, 0, len(buf)+len(buf)/8)
	next := 0
	for i, rest := 0, buf; len(rest) > 0; i++ {
		end := bytes.IndexByte(rest, '\n') + 1
		line := rest[:end]
		rest = rest[end:]
		if next < len(lines) && lines[next] == i {
			next++
			p, err := point1x(bytes.TrimSuffix(line, []byte{'\n'}))
			if err != nil {
				return nil, &pointError{index: i, err: err}
			}
			out = append(p.AppendString(out), '\n')
			continue
		}
		out = append(out, line...)
	}
	return out, nil
}

// point1x decodes one line into an InfluxDB 1.x point.
func point1x(line []byte) (models.Point, error) {
	dec := lineprotocol.NewDecoderWithBytes(line)
	dec.Next()
	name, err := dec.Measurement()
	if err != nil {
		return nil, err
	}
	name = bytes.Clone(name)
	var tags models.Tags
	for {
		k, v, err := dec.NextTag()
		if err != nil {
			return nil, err
		}
		if k == nil {
			break
		}
		tags = append(tags, models.NewTag(bytes.Clone(k), bytes.Clone(v)))
	}
	fields := models.Fields{}
	for {
		k, v, err := dec.NextField()
		if err != nil {
			return nil, err
		}
		if k == nil {
			break
		}
		fields[string(k)] = v.Interface()
	}
	t, err := dec.Time(lineprotocol.Nanosecond, time.Time{})
	if err != nil {
		return nil, err
	}
	p, err := models.NewPoint(string(name), tags, fields, t)
	if err != nil {
		return nil, fmt.Errorf("re-encode for InfluxDB 1.x: %w", err)
	}
	return p, nil
}

// lineError places an error of the point at index i of a batch at its dump
// line, with the column when the decoder knows it.
func lineError(lines []int, err error) error {
	var pe *pointError
	var de *lineprotocol.DecodeError
	switch {
	case errors.As(err, &de) && int(de.Line) >= 1 && int(de.Line) <= len(lines):
		return fmt.Errorf("line %d, column %d: %w", lines[de.Line-1], de.Column, de.Err)
	case errors.As(err, &pe) && pe.index < len(lines):
		return fmt.Errorf("line %d: %w", lines[pe.index], pe.err)
	}
	return err
}
