package export

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/influxdata/influxql"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/internal/influx"
)

// Time buckets (docs/dump-order.md). A retention policy is dumped in fixed
// UTC buckets of DumpOptions.Bucket, aligned on the Unix epoch, so the
// same points always fall in the same bucket and the output is
// deterministic. Each bucket is one query per measurement that has points
// in it, so no answer is larger than one bucket of one measurement:
// HyperbyteDB builds a whole answer in memory before sending it, even a
// chunked one (hyperbytedb/src/adapters/http/query.rs:260-279), and gives
// up after 30 s (config.rs:592-593). Empty stretches are skipped with a
// one-point look-ahead query instead of being walked bucket by bucket.

// DefaultBucket is the bucket length unless DumpOptions says: one hour
// keeps a back-filled hour from rewriting more than its own bucket.
const DefaultBucket = time.Hour

// window is a half-open time range [start, end) in nanoseconds.
type window struct {
	start, end int64
}

// where renders the window as a WHERE clause.
func (w window) where() string {
	return fmt.Sprintf(" WHERE time >= %d AND time < %d", w.start, w.end)
}

// cursor is where the dump of one measurement stands: no point of it lies
// before next (inside the dump's range); done when none is left.
type cursor struct {
	db, rp, measurement string
	next                int64
	done                bool
}

// bounds returns the dump's range in nanoseconds.
func (d *dumper) bounds() window {
	w := window{start: influxql.MinTime, end: influxql.MaxTime}
	if !d.opts.Start.IsZero() {
		w.start = d.opts.Start.UnixNano()
	}
	if !d.opts.End.IsZero() {
		w.end = d.opts.End.UnixNano()
	}
	return w
}

// cursors positions a cursor on the first point of each measurement.
func (d *dumper) cursors(ctx context.Context, db, rp string, measurements []string) ([]*cursor, error) {
	out := make([]*cursor, 0, len(measurements))
	for _, m := range measurements {
		cur := &cursor{db: db, rp: rp, measurement: m}
		if err := d.seek(ctx, cur, d.bounds().start); err != nil {
			return nil, fmt.Errorf("dump %s: %w", influxql.QuoteIdent(db, rp, m), err)
		}
		out = append(out, cur)
	}
	return out, nil
}

// seek moves cur to its first point at or after from, asking for one
// point only.
func (d *dumper) seek(ctx context.Context, cur *cursor, from int64) error {
	w := window{start: from, end: d.bounds().end}
	if w.start >= w.end {
		cur.done = true
		return nil
	}
	q := "SELECT * FROM " + influxql.QuoteIdent(cur.db, cur.rp, cur.measurement) + w.where() + " LIMIT 1"
	found := false
	err := d.client.Stream(ctx, influx.Scope{DB: cur.db, RP: cur.rp}, q, 0, func(s *influx.Series) error {
		if found || len(s.Values) == 0 || len(s.Values[0]) == 0 {
			return nil
		}
		t, err := strconv.ParseInt(string(s.Values[0][0]), 10, 64)
		if err != nil {
			return fmt.Errorf("time %s: %w", s.Values[0][0], err)
		}
		cur.next, found = max(t, from), true
		return nil
	})
	cur.done = !found
	return err
}

// nextBucket returns the bucket holding the earliest next point of all
// cursors, clipped to the dump's range; false when every cursor is done.
func (d *dumper) nextBucket(cursors []*cursor) (window, bool) {
	first, found := int64(0), false
	for _, cur := range cursors {
		if !cur.done && (!found || cur.next < first) {
			first, found = cur.next, true
		}
	}
	if !found {
		return window{}, false
	}
	size := int64(d.opts.Bucket)
	start := floorDiv(first, size) * size
	b := window{start: start, end: start + size}
	if start > influxql.MaxTime-size { // the last bucket would overflow
		b.end = influxql.MaxTime
	}
	all := d.bounds()
	b.start, b.end = max(b.start, all.start), min(b.end, all.end)
	return b, true
}

// floorDiv is a / b rounded down, for negative times too.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
