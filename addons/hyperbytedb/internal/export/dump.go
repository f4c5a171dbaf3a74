package export

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/influxdata/influxql"
	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/internal/influx"
)

// DumpOptions selects what Dump writes.
type DumpOptions struct {
	// Databases to dump; empty means all but _internal.
	Databases []string
	// Start and End bound point times to [Start, End); zero means
	// unbounded.
	Start, End time.Time
	// ChunkSize is the number of rows per chunk of a query answer, which
	// bounds the dumper's memory; 0 means DefaultChunkSize.
	ChunkSize int
	// Bucket is the length of the time buckets that order the dump and
	// bound every query; 0 means DefaultBucket.
	Bucket time.Duration

	// window overrides defaultWindowLimits (tests).
	window *windowLimits
}

// DefaultChunkSize is the rows per query chunk unless DumpOptions says.
const DefaultChunkSize = 10000

// Dump writes every point of the selected databases to w in the export
// format, in a deterministic order (database, retention policy, time
// bucket, measurement, series, time), so a dump of unchanged data is byte
// for byte the same and deduplicates completely, and points appended
// after all others change only its end.
func Dump(ctx context.Context, c *influx.Client, opts DumpOptions, w io.Writer) error {
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = DefaultChunkSize
	}
	if opts.Bucket <= 0 {
		opts.Bucket = DefaultBucket
	}
	dbs, err := selectDatabases(ctx, c, opts.Databases)
	if err != nil {
		return err
	}
	schemas, err := dumpSchemas(ctx, c, dbs)
	if err != nil {
		return err
	}
	d := &dumper{client: c, opts: opts, out: bufio.NewWriterSize(w, 256<<10), span: 1, limits: defaultWindowLimits}
	if opts.window != nil {
		d.limits = *opts.window
	}
	if c.HyperbyteDB() {
		d.limits.maxSpan = 1 // it builds every answer whole: one bucket per query
	}
	d.enc.SetPrecision(lineprotocol.Nanosecond)
	d.text(exportHeader(opts.Start, opts.End), ddlMarker)
	for _, s := range schemas {
		d.text(ddlStatements(s.name, s.policies)...)
	}
	d.text(dmlMarker)
	for _, s := range schemas {
		if err := d.database(ctx, s); err != nil {
			return err
		}
	}
	if err := d.out.Flush(); err != nil {
		return fmt.Errorf("write dump: %w", err)
	}
	return nil
}

func dumpSchemas(ctx context.Context, c *influx.Client, dbs []string) ([]databaseSchema, error) {
	var out []databaseSchema
	for _, db := range dbs {
		if err := contextName("database", db); err != nil {
			return nil, err
		}
		policies, err := retentionPolicies(ctx, c, db)
		if err != nil {
			return nil, err
		}
		for _, rp := range policies {
			if err := contextName("retention policy", rp.Name); err != nil {
				return nil, err
			}
		}
		out = append(out, databaseSchema{name: db, policies: policies})
	}
	return out, nil
}

// dumper writes one dump.
type dumper struct {
	client *influx.Client
	opts   DumpOptions
	out    *bufio.Writer
	enc    lineprotocol.Encoder
	tags   []string // sorted tag keys of the current series chunk
	kinds  []lineprotocol.ValueKind
	prefix []byte   // measurement and tags of the chunk's lines, escaped
	keys   [][]byte // per column: the escaped field key and '='
	line   []byte

	// The current query window (windows.go): span buckets from base,
	// each bucket's lines in parts until the window is complete (with
	// span 1 they go straight out); buffered counts its bytes.
	limits   windowLimits
	span     int
	base     int64
	parts    [][]byte
	buffered int
}

// text writes whole lines; write errors surface at the final Flush (a
// bufio.Writer keeps its first error).
func (d *dumper) text(lines ...string) {
	for _, l := range lines {
		_, _ = d.out.WriteString(l)
		_ = d.out.WriteByte('\n')
	}
}

func (d *dumper) database(ctx context.Context, s databaseSchema) error {
	d.text(contextDB + s.name)
	for _, rp := range s.policies {
		d.text(contextRP + rp.Name)
		if err := d.policy(ctx, s.name, rp.Name); err != nil {
			return err
		}
	}
	return nil
}

// policy dumps one retention policy in time buckets (see buckets.go):
// bucket by bucket, and in each bucket measurement by measurement, series
// by series, so new points land at the end of the dump. It queries a
// window of buckets at a time (windows.go).
func (d *dumper) policy(ctx context.Context, db, rp string) error {
	fields, err := fieldTypes(ctx, d.client, db, rp)
	if err != nil {
		return err
	}
	if d.client.HyperbyteDB() {
		if err := checkDumpNames(ctx, d.client, db, rp, fields); err != nil {
			return err
		}
	}
	measurements := make([]string, 0, len(fields))
	for m := range fields {
		measurements = append(measurements, m)
	}
	sort.Strings(measurements)
	cursors, err := d.cursors(ctx, db, rp, measurements)
	if err != nil {
		return err
	}
	for {
		w, ok := d.nextWindow(cursors, d.span)
		if !ok {
			return nil
		}
		saved := saveCursors(cursors)
		err := d.window(ctx, cursors, w, fields)
		if errors.Is(err, errWindowFull) {
			restoreCursors(cursors, saved)
			d.span = max(1, d.span/4)
			continue
		}
		if err != nil {
			return err
		}
		d.flushWindow()
	}
}

// window dumps the points of every measurement in window w, one query per
// measurement that has points before its end.
func (d *dumper) window(ctx context.Context, cursors []*cursor, w window, fields map[string]map[string]lineprotocol.ValueKind) error {
	d.startWindow(w)
	for _, cur := range cursors {
		if cur.done || cur.next >= w.end {
			continue
		}
		if err := d.query(ctx, cur, w, fields[cur.measurement]); err != nil {
			if errors.Is(err, errWindowFull) {
				return err
			}
			return fmt.Errorf("dump %s: %w", influxql.QuoteIdent(cur.db, cur.rp, cur.measurement), err)
		}
	}
	return nil
}

// query dumps the points of one measurement in window w with one chunked
// query; GROUP BY * returns tags per series (not as columns, where a tag
// and a field of the same name would clash) and orders rows by series,
// then time. The cursor then moves past the window.
func (d *dumper) query(ctx context.Context, cur *cursor, w window, kinds map[string]lineprotocol.ValueKind) error {
	q := "SELECT * FROM " + influxql.QuoteIdent(cur.db, cur.rp, cur.measurement) + w.where() + " GROUP BY *"
	rows := 0
	err := d.client.Stream(ctx, influx.Scope{DB: cur.db, RP: cur.rp}, q, d.opts.ChunkSize, func(s *influx.Series) error {
		rows += len(s.Values)
		return d.series(s, kinds)
	})
	if err != nil {
		return err
	}
	if rows > 0 {
		cur.next, cur.done = w.end, w.end >= d.bounds().end
		return nil
	}
	return d.seek(ctx, cur, w.end)
}

// series writes the rows of one series chunk as points.
func (d *dumper) series(s *influx.Series, kinds map[string]lineprotocol.ValueKind) error {
	if err := d.prepare(s, kinds); err != nil {
		return err
	}
	for _, row := range s.Values {
		if len(row) != len(s.Columns) {
			return fmt.Errorf("row of %d values for %d columns", len(row), len(s.Columns))
		}
		if err := d.point(s, row); err != nil {
			return err
		}
	}
	return nil
}

// prepare computes what is the same for every row of a chunk: sorted
// non-empty tags (an empty value means the series lacks that tag) and the
// kind of each column.
func (d *dumper) prepare(s *influx.Series, kinds map[string]lineprotocol.ValueKind) error {
	if len(s.Columns) == 0 || s.Columns[0] != "time" {
		return fmt.Errorf("answer columns %v do not start with time", s.Columns)
	}
	if strings.HasPrefix(s.Name, "#") {
		// Such a point would read as a comment and vanish on restore.
		return fmt.Errorf("measurement %q starts with #, which line protocol cannot carry", s.Name)
	}
	d.tags = d.tags[:0]
	for k, v := range s.Tags {
		if v != "" {
			d.tags = append(d.tags, k)
		}
	}
	sort.Strings(d.tags)
	d.kinds = d.kinds[:0]
	for _, col := range s.Columns[1:] {
		kind, ok := kinds[col]
		if !ok && col == seriesIDColumn {
			kind = lineprotocol.Unknown // HyperbyteDB's own column: skipped
		} else if !ok {
			return fmt.Errorf("column %q is not a field of the measurement (SHOW FIELD KEYS)", col)
		}
		d.kinds = append(d.kinds, kind)
	}
	return d.checkNames(s)
}

// checkNames has the encoder validate the chunk's measurement, tags and
// field keys once, on a line holding them all; the chunk's rows are then
// encoded without checking the same names again (lax mode), which saves
// a good part of the encoding cost. Values are checked when parsed.
func (d *dumper) checkNames(s *influx.Series) error {
	d.enc.SetLax(false)
	d.enc.Reset()
	d.enc.StartLine(s.Name)
	for _, k := range d.tags {
		d.enc.AddTag(k, s.Tags[k])
	}
	for i, col := range s.Columns[1:] {
		if d.kinds[i] != lineprotocol.Unknown {
			d.enc.AddField(col, lineprotocol.BoolValue(true))
		}
	}
	d.enc.EndLine(time.Unix(0, 0))
	err := d.enc.Err()
	d.enc.Reset()
	d.enc.SetLax(true)
	if err != nil {
		return fmt.Errorf("series %v: %w", s.Tags, err)
	}
	d.encodePrefix(s)
	return nil
}

// encodePrefix precomputes, with the encoder, what every line of the chunk
// shares: the escaped measurement and tags, and each field key escaped
// and followed by '='. point then appends values to them, which is what
// the encoder would write, without escaping the same names on every row.
func (d *dumper) encodePrefix(s *influx.Series) {
	d.enc.Reset()
	d.enc.StartLine(s.Name)
	for _, k := range d.tags {
		d.enc.AddTag(k, s.Tags[k])
	}
	d.prefix = append(d.prefix[:0], d.enc.Bytes()...)
	d.keys = d.keys[:0]
	for i, col := range s.Columns[1:] {
		if d.kinds[i] == lineprotocol.Unknown {
			d.keys = append(d.keys, nil)
			continue
		}
		d.enc.Reset()
		d.enc.StartLine("m")
		d.enc.AddField(col, lineprotocol.BoolValue(true))
		key := d.enc.Bytes()
		d.keys = append(d.keys, append([]byte(nil), key[len("m "):len(key)-len("true")]...))
	}
	d.enc.Reset()
}

func (d *dumper) point(s *influx.Series, row []json.RawMessage) error {
	ts, err := lineprotocol.NewValueFromBytes(lineprotocol.Int, row[0])
	if err != nil {
		return fmt.Errorf("time %s: %w", row[0], err)
	}
	d.line = append(d.line[:0], d.prefix...)
	sep := byte(' ')
	for i, raw := range row[1:] {
		if d.kinds[i] == lineprotocol.Unknown {
			continue
		}
		n := len(d.line)
		line, ok, err := appendValue(append(append(d.line, sep), d.keys[i]...), d.kinds[i], raw)
		if err != nil {
			return fmt.Errorf("field %q at time %d: %w", s.Columns[i+1], ts.IntV(), err)
		}
		if !ok {
			d.line = line[:n] // null: this point has no such field
			continue
		}
		d.line, sep = line, ','

	}
	if sep == ' ' {
		return nil // an all-null row is no point: InfluxDB stores none
	}
	d.line = strconv.AppendInt(append(d.line, ' '), ts.IntV(), 10)
	return d.emit(ts.IntV(), append(d.line, '\n'))
}
