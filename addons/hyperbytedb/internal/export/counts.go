package export

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// Counts are what a dump holds: its points, and its series, the distinct
// measurement and tag set combinations of each database and retention
// policy. A backup records them (Counter) and verification counts the
// stored dump again (Count); both must agree.
type Counts struct {
	// Points is the number of point lines.
	Points uint64
	// Series is the number of distinct series.
	Series uint64
}

// tally is what both counters keep: where in the dump they are, and the
// series seen so far, as 64-bit hashes (8 bytes of memory per series,
// whatever its key's length; two series whose hashes collide count as
// one, which for a million series happens with odds of about 1 in 3*10^7;
// each process hashes with a seed of its own, so it does not repeat).
type tally struct {
	section int
	db, rp  string
	seed    maphash.Seed
	series  map[uint64]struct{}
	points  uint64
}

func newTally() tally {
	return tally{seed: maphash.MakeSeed(), series: map[uint64]struct{}{}}
}

// counts is what t has counted.
func (t *tally) counts() Counts {
	return Counts{Points: t.points, Series: uint64(len(t.series))}
}

// comment follows a comment line of the dump: the section markers and the
// database and retention policy of the points that follow, as Load reads
// them.
func (t *tally) comment(line []byte) {
	switch {
	case string(line) == ddlMarker:
		t.section = sectionDDL
	case string(line) == dmlMarker:
		t.section = sectionDML
	case bytes.HasPrefix(line, []byte(contextDB)):
		t.db, t.rp = string(line[len(contextDB):]), ""
	case bytes.HasPrefix(line, []byte(contextRP)):
		t.rp = string(line[len(contextRP):])
	}
}

// add counts a point whose series key hashes to key under the current
// database and retention policy.
func (t *tally) add(key uint64) {
	t.points++
	t.series[key] = struct{}{}
}

// contextHash starts a series hash with the current database and
// retention policy.
func (t *tally) contextHash() *maphash.Hash {
	var h maphash.Hash
	h.SetSeed(t.seed)
	_, _ = h.WriteString(t.db)
	_ = h.WriteByte(0)
	_, _ = h.WriteString(t.rp)
	_ = h.WriteByte(0)
	return &h
}

// classify says what a dump line is, for Load and the counters alike:
// blank, a comment (returned without its leading blanks), or content of
// the current section.
func classify(line []byte) (trimmed []byte, comment, blank bool) {
	trimmed = bytes.TrimLeft(line, " \t")
	switch {
	case len(bytes.TrimSpace(trimmed)) == 0:
		return trimmed, false, true
	case trimmed[0] == '#':
		return trimmed, true, false
	}
	return trimmed, false, false
}

// Counter is an io.Writer that passes a dump through to its writer and
// counts the points and series of what went through. It reads only each
// point's measurement and tags (up to the first unescaped space), and
// hashes them only when they differ from the previous point's: a dump
// holds a series' points one after another.
type Counter struct {
	w       io.Writer
	t       tally
	partial []byte // the start of a line whose end is still to come
	last    []byte // measurement and tags of the previous point
	lastKey uint64
}

// NewCounter returns a Counter writing to w.
func NewCounter(w io.Writer) *Counter {
	return &Counter{w: w, t: newTally()}
}

// Write implements io.Writer: it counts what w took.
func (c *Counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.scan(p[:n])
	return n, err
}

// Counts returns what went through so far; a last line without its
// newline is counted too.
func (c *Counter) Counts() Counts {
	if len(c.partial) > 0 {
		c.line(c.partial)
		c.partial = c.partial[:0]
	}
	return c.t.counts()
}

// scan counts the complete lines of p, keeping an incomplete last one for
// the next write.
func (c *Counter) scan(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.partial = append(c.partial, p...)
			return
		}
		line := p[:i]
		if len(c.partial) > 0 {
			line = append(c.partial, line...)
			c.partial = line[:0]
		}
		c.line(line)
		p = p[i+1:]
	}
}

// line counts one line of the dump.
func (c *Counter) line(line []byte) {
	trimmed, comment, blank := classify(line)
	switch {
	case blank:
	case comment:
		c.t.comment(trimmed)
		c.last = c.last[:0] // a new context: the same key is another series
	case c.t.section == sectionDML:
		key := seriesKey(trimmed)
		if len(c.last) == 0 || !bytes.Equal(key, c.last) {
			h := c.t.contextHash()
			_, _ = h.Write(key)
			c.lastKey = h.Sum64()
			c.last = append(c.last[:0], key...)
		}
		c.t.add(c.lastKey)
	}
}

// seriesKey is the escaped measurement and tags of a point line: up to its
// first space that no backslash escapes (a backslash before a space is
// always an escape in line protocol's names).
func seriesKey(line []byte) []byte {
	for from := 0; ; {
		i := bytes.IndexByte(line[from:], ' ')
		if i < 0 {
			return line
		}
		if i += from; i == 0 || line[i-1] != '\\' {
			return line[:i]
		}
		from = i + 1
	}
}

// maxCountLine bounds a line Count reads: a point longer than this is not
// one Dump writes (InfluxDB refuses bodies over 25 MB).
const maxCountLine = 64 << 20

// Count reads a whole dump from r, as Load would but writing nothing: it
// parses every DDL statement and every point in full (measurement, tags,
// fields and timestamp) and counts the points and series. The series of a
// point are its measurement and tags in the database and retention policy
// of its context, wherever the point is in the dump: a dump ordered by
// time bucket (Dump's) and one ordered by series (influx_inspect export's)
// count the same. An error names the line that does not parse.
func Count(ctx context.Context, r io.Reader) (Counts, error) {
	t := newTally()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), maxCountLine)
	p := pointParser{}
	for lineNo := 1; sc.Scan(); lineNo++ {
		if lineNo%100000 == 0 && ctx.Err() != nil {
			return t.counts(), ctx.Err()
		}
		if err := countLine(&t, &p, sc.Bytes()); err != nil {
			return t.counts(), fmt.Errorf("line %d: %w", lineNo, err)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("a line is longer than %d bytes", maxCountLine)
		}
		return t.counts(), fmt.Errorf("read dump: %w", err)
	}
	if t.section == sectionNone {
		return t.counts(), fmt.Errorf("no %q or %q line: not a dump", ddlMarker, dmlMarker)
	}
	return t.counts(), nil
}

// countLine parses and counts one line of a dump.
func countLine(t *tally, p *pointParser, line []byte) error {
	trimmed, comment, blank := classify(line)
	switch {
	case blank:
		return nil
	case comment:
		t.comment(trimmed)
		return nil
	case t.section == sectionDDL:
		_, _, err := parseDDL(string(line))
		return err
	case t.section == sectionDML && t.db == "":
		return fmt.Errorf("point before any %q line", contextDB)
	case t.section == sectionDML:
		key, err := p.parse(t, line)
		if err != nil {
			return err
		}
		t.add(key)
		return nil
	}
	return fmt.Errorf("data before %q or %q", ddlMarker, dmlMarker)
}

// pointParser decodes point lines in full.
type pointParser struct {
	tags [][2][]byte
}

// parse decodes one point line and returns the hash of its series: the
// context, the measurement and the tags in key order.
func (p *pointParser) parse(t *tally, line []byte) (uint64, error) {
	dec := lineprotocol.NewDecoderWithBytes(line)
	if !dec.Next() {
		return 0, errors.New("no point")
	}
	m, err := dec.Measurement()
	if err != nil {
		return 0, err
	}
	h := t.contextHash()
	_, _ = h.Write(m)
	p.tags = p.tags[:0]
	for {
		k, v, err := dec.NextTag()
		if err != nil {
			return 0, err
		}
		if k == nil {
			break
		}
		p.tags = append(p.tags, [2][]byte{k, v})
	}
	slices.SortFunc(p.tags, func(a, b [2][]byte) int { return bytes.Compare(a[0], b[0]) })
	for _, kv := range p.tags {
		_ = h.WriteByte(0)
		_, _ = h.Write(kv[0])
		_ = h.WriteByte(0)
		_, _ = h.Write(kv[1])
	}
	if err := checkFieldsAndTime(dec); err != nil {
		return 0, err
	}
	return h.Sum64(), dec.Err()
}

// checkFieldsAndTime decodes the rest of the decoder's point: at least one
// field, every value well formed, and a timestamp.
func checkFieldsAndTime(dec *lineprotocol.Decoder) error {
	fields := 0
	for {
		k, _, err := dec.NextField()
		if err != nil {
			return err
		}
		if k == nil {
			break
		}
		fields++
	}
	if fields == 0 {
		return errors.New("point has no fields")
	}
	ts, err := dec.Time(lineprotocol.Nanosecond, time.Time{})
	if err != nil {
		return err
	}
	if ts.IsZero() {
		return errors.New("point has no timestamp")
	}
	return nil
}
