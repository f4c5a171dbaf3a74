package export

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/influxdata/influxdb1-client/models"
	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// toWire validates one point line of a dump and appends it to dst, with a
// newline, in the dialect InfluxDB 1.x's /write parses. The two dialects
// agree on everything but string fields holding a newline, tab or carriage
// return (v2 escapes them, 1.x keeps the backslash) and field keys holding
// a double quote; only such points are re-encoded, by InfluxDB 1.x's own
// line-protocol package. Every other line is copied as is.
func toWire(dst, line []byte) ([]byte, error) {
	reencode, err := inspectPoint(line)
	if err != nil {
		return dst, err
	}
	if !reencode {
		dst = append(dst, line...)
		return append(dst, '\n'), nil
	}
	p, err := point1x(line)
	if err != nil {
		return dst, err
	}
	dst = p.AppendString(dst)
	return append(dst, '\n'), nil
}

// inspectPoint decodes line fully (so every syntax error is caught here,
// with its column) and reports whether it needs re-encoding for 1.x.
func inspectPoint(line []byte) (reencode bool, err error) {
	dec := lineprotocol.NewDecoderWithBytes(line)
	if !dec.Next() {
		return false, errors.New("no point on the line")
	}
	if _, err := dec.Measurement(); err != nil {
		return false, err
	}
	if err := skipTags(dec); err != nil {
		return false, err
	}
	for {
		key, v, err := dec.NextField()
		if err != nil {
			return false, err
		}
		if key == nil {
			break
		}
		reencode = reencode || bytes.IndexByte(key, '"') >= 0 ||
			(v.Kind() == lineprotocol.String && bytes.ContainsAny(v.BytesV(), "\n\r\t"))
	}
	if err := checkTimeAndEnd(dec); err != nil {
		return false, err
	}
	return reencode, nil
}

func skipTags(dec *lineprotocol.Decoder) error {
	for {
		key, _, err := dec.NextTag()
		if err != nil || key == nil {
			return err
		}
	}
}

// checkTimeAndEnd requires a timestamp (without one the server would stamp
// the point with its own clock) and nothing after the point.
func checkTimeAndEnd(dec *lineprotocol.Decoder) error {
	t, err := dec.Time(lineprotocol.Nanosecond, time.Time{})
	if err != nil {
		return err
	}
	if t.IsZero() {
		return errors.New("point has no timestamp")
	}
	if dec.Next() {
		return errors.New("more than one point on the line")
	}
	return dec.Err()
}

// point1x decodes line into an InfluxDB 1.x point.
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

// lineError places a decoding error of one line at its line number in the
// dump.
func lineError(lineNo int, err error) error {
	var de *lineprotocol.DecodeError
	if errors.As(err, &de) {
		return fmt.Errorf("line %d, column %d: %w", lineNo, de.Column, de.Err)
	}
	return fmt.Errorf("line %d: %w", lineNo, err)
}
