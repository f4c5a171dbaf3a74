package export

import (
	"errors"

	"github.com/influxdata/influxql"
)

// Query windows (docs/dump-order.md). The dump's order is fixed by its
// buckets, but a query per bucket costs InfluxDB 1.x a fixed price (it
// opens a cursor per series and field and decodes whole TSM blocks, about
// a thousand points each, however few the bucket needs), which dominates
// when a bucket holds few points per series. So the dumper asks for
// several buckets at once, routes each line to its bucket's buffer, and
// writes the buffers in bucket order once every measurement of the window
// is read: the same bytes as one query per bucket. The window's length
// adapts to the data so a window holds about targetWindowBytes of dump; a
// window that grows past maxWindowBytes is abandoned and asked again
// shorter, so memory stays bounded. One bucket at a time is streamed
// straight out, as before. HyperbyteDB builds every answer whole in
// memory, so there every window is one bucket.

const (
	// targetWindowBytes is the dump bytes a window aims at.
	targetWindowBytes = 8 << 20
	// maxWindowBytes is the most a window of several buckets may buffer.
	maxWindowBytes = 16 << 20
	// maxWindowBuckets bounds a window on sparse data (170 days of
	// one-hour buckets), and so how far a query reaches.
	maxWindowBuckets = 4096
	// maxWindowGrowth bounds how fast the window lengthens, so a guess
	// from one sparse window cannot overshoot far.
	maxWindowGrowth = 4
)

// windowLimits are the constants above, which tests shrink.
type windowLimits struct {
	target, max, maxSpan int
}

var defaultWindowLimits = windowLimits{target: targetWindowBytes, max: maxWindowBytes, maxSpan: maxWindowBuckets}

// errWindowFull abandons a window that outgrew maxWindowBytes.
var errWindowFull = errors.New("query window over its memory bound")

// nextWindow returns the window of span buckets starting at the bucket
// nextBucket returns, clipped to the dump's range.
func (d *dumper) nextWindow(cursors []*cursor, span int) (window, bool) {
	w, ok := d.nextBucket(cursors)
	if !ok || span <= 1 {
		return w, ok
	}
	size := int64(d.opts.Bucket)
	base := floorDiv(w.start, size) * size
	if base > influxql.MaxTime-int64(span)*size {
		w.end = influxql.MaxTime
	} else {
		w.end = base + int64(span)*size
	}
	w.end = min(w.end, d.bounds().end)
	return w, true
}

// startWindow prepares the buffers of window w.
func (d *dumper) startWindow(w window) {
	size := int64(d.opts.Bucket)
	d.base = floorDiv(w.start, size) * size
	d.buffered = 0
	n := 0
	if d.span > 1 {
		n = int((w.end - d.base + size - 1) / size)
	}
	for len(d.parts) < n {
		d.parts = append(d.parts, nil)
	}
	for i := range d.parts {
		d.parts[i] = d.parts[i][:0]
	}
	d.parts = d.parts[:n]
}

// emit adds the line of a point at time t (nanoseconds) to the window.
func (d *dumper) emit(t int64, line []byte) error {
	d.buffered += len(line)
	if len(d.parts) == 0 {
		_, err := d.out.Write(line)
		return err
	}
	i := (t - d.base) / int64(d.opts.Bucket)
	d.parts[i] = append(d.parts[i], line...)
	if d.buffered > d.limits.max {
		return errWindowFull
	}
	return nil
}

// flushWindow writes a complete window's buckets in order and picks the
// next window's span from how many bytes this one held per bucket.
func (d *dumper) flushWindow() {
	for _, p := range d.parts {
		_, _ = d.out.Write(p) // errors surface at the final Flush
	}
	buckets := max(len(d.parts), 1)
	next := d.span * maxWindowGrowth
	if perBucket := d.buffered / buckets; perBucket > 0 {
		next = min(next, d.limits.target/perBucket)
	}
	d.span = max(1, min(next, d.limits.maxSpan))
	if d.span == 1 {
		// Keep no buffers a dense measurement once grew.
		d.parts = nil
	}
}

// saveCursors copies the cursors' positions, for retrying a window.
func saveCursors(cursors []*cursor) []cursor {
	out := make([]cursor, len(cursors))
	for i, c := range cursors {
		out[i] = *c
	}
	return out
}

func restoreCursors(cursors []*cursor, saved []cursor) {
	for i, c := range cursors {
		*c = saved[i]
	}
}
