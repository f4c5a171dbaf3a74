package export

import (
	"bytes"
	"context"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
)

// TestCounts: a dump counted as it is written (Counter) and counted again
// by parsing it (Count) holds exactly the dataset's points and series,
// whatever the chunking of the writes and the order of the dump.
func TestCounts(t *testing.T) { forEachServer(t, testCounts) }

func testCounts(t *testing.T, kind serverKind) {
	s := startServer(t, kind)
	ds := mixed(kind, time.Now())
	ds.Write(t, s.api)
	withInternal(t, s) // not dumped, so not counted
	// Every series of the bulk spans many one-minute buckets.
	bulk := hyperbytedbtest.Bulk{DB: "bulk", N: 3000, Series: 30, Step: 10 * time.Second}
	bulk.Write(t, s.api, 0, bulk.N)
	want := Counts{Points: uint64(len(ds.Points) + bulk.N), Series: uint64(ds.Series() + bulk.Series)}

	var buf bytes.Buffer
	counter := NewCounter(&smallWrites{w: &buf, size: 7}) // lines cut across writes
	if err := Dump(context.Background(), s.client, DumpOptions{ChunkSize: 3, Bucket: time.Minute}, counter); err != nil {
		t.Fatal(err)
	}
	if got := counter.Counts(); got != want {
		t.Fatalf("Counter counted %+v while dumping, want %+v", got, want)
	}
	for name, data := range map[string][]byte{"by time bucket": buf.Bytes(), "by series": bySeries(buf.Bytes())} {
		t.Run(name, func(t *testing.T) {
			got, err := Count(context.Background(), bytes.NewReader(data))
			if err != nil || got != want {
				t.Fatalf("Count = %+v (%v), want %+v", got, err, want)
			}
		})
	}
}

// bySeries reorders the points of each context of a dump by series, as
// influx_inspect export orders them.
func bySeries(dump []byte) []byte {
	var out, points []string
	flush := func() {
		sort.SliceStable(points, func(i, j int) bool {
			return string(seriesKey([]byte(points[i]))) < string(seriesKey([]byte(points[j])))
		})
		out, points = append(out, points...), nil
	}
	dml := false
	for _, line := range strings.SplitAfter(string(dump), "\n") {
		switch {
		case dml && line != "" && !strings.HasPrefix(line, "#"):
			points = append(points, line)
			continue
		case strings.HasPrefix(line, "#"):
			flush()
			dml = dml || strings.TrimSpace(line) == dmlMarker
		}
		out = append(out, line)
	}
	flush()
	return []byte(strings.Join(out, ""))
}

// smallWrites passes writes on in pieces of size bytes.
type smallWrites struct {
	w    io.Writer
	size int
}

func (s *smallWrites) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k, err := s.w.Write(p[:min(len(p), s.size)])
		n += k
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

// TestCountRejectsBrokenDumps: Count parses every line, and names the
// first that does not parse.
func TestCountRejectsBrokenDumps(t *testing.T) {
	const head = "# INFLUXDB EXPORT: 1677-09-21T00:12:43Z - 2262-04-11T23:47:16Z\n# DDL\n" +
		"CREATE DATABASE \"db\" WITH DURATION INF REPLICATION 1 SHARD DURATION 1w NAME \"autogen\"\n# DML\n"
	const ctx = "# CONTEXT-DATABASE:db\n# CONTEXT-RETENTION-POLICY:autogen\n"
	const point = "cpu,host=a v=1 1700000000000000000\n"
	tests := map[string]struct {
		dump string
		want string // substring of the error
	}{
		"a point cut short":         {dump: head + ctx + point + "cpu,host=a v=\n", want: "line 8:"},
		"a point without fields":    {dump: head + ctx + "cpu,host=a 1700000000000000000\n", want: "line 7:"},
		"a point without timestamp": {dump: head + ctx + "cpu,host=a v=1\n", want: "line 7: point has no timestamp"},
		"a bad field value":         {dump: head + ctx + "cpu v=1x 1\n", want: "line 7:"},
		"a point without context":   {dump: head + point, want: `line 5: point before any "# CONTEXT-DATABASE:" line`},
		"a broken DDL statement":    {dump: "# DDL\nCREATE DATABSE x\n", want: "line 2:"},
		"data before any section":   {dump: point, want: "line 1: data before"},
		"not a dump at all":         {dump: "# just a comment\n", want: "not a dump"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Count(context.Background(), strings.NewReader(tc.dump))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Count = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	got, err := Count(context.Background(), strings.NewReader(head+ctx+point+point+"cpu,host=b v=2i 1\n# CONTEXT-DATABASE:other\n"+point))
	if want := (Counts{Points: 4, Series: 3}); err != nil || got != want {
		t.Fatalf("Count = %+v (%v), want %+v: a series is per database", got, err, want)
	}
}

// TestSeriesKey: a point's series key ends at its first unescaped space.
func TestSeriesKey(t *testing.T) {
	for line, want := range map[string]string{
		`cpu,host=a v=1 1`:               `cpu,host=a`,
		`cpu\ load,host=a\ b v=1 1`:      `cpu\ load,host=a\ b`,
		`cpu,k=v\\ v=1 1`:                `cpu,k=v\\ v=1`, // a backslash before a space always escapes it
		`m v="a b" 1`:                    `m`,
		`no-space-at-all`:                `no-space-at-all`,
		`weird\,m,t\=k=\"v\" f="x y" 12`: `weird\,m,t\=k=\"v\"`,
	} {
		if got := string(seriesKey([]byte(line))); got != want {
			t.Errorf("seriesKey(%q) = %q, want %q", line, got, want)
		}
	}
}

// BenchmarkCounter measures what counting adds to a backup: a dump of
// bulk points (40 series, 8 points per series in a row, as one-minute
// buckets of per-second points put them) through a Counter, in the 256 KiB
// writes Dump makes.
func BenchmarkCounter(b *testing.B) {
	bulk := hyperbytedbtest.Bulk{DB: "bench", N: 200_000, Series: 40}
	var dump bytes.Buffer
	dump.WriteString("# DML\n# CONTEXT-DATABASE:bench\n# CONTEXT-RETENTION-POLICY:autogen\n")
	for bucket := 0; bucket < bulk.N; bucket += 320 {
		for s := range bulk.Series {
			for k := bucket + s; k < min(bucket+320, bulk.N); k += bulk.Series {
				dump.WriteString(bulk.Line(k))
			}
		}
	}
	data := dump.Bytes()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		c := NewCounter(io.Discard)
		for p := data; len(p) > 0; p = p[min(len(p), 256<<10):] {
			_, _ = c.Write(p[:min(len(p), 256<<10)])
		}
		if got := c.Counts(); got.Points != uint64(bulk.N) || got.Series != uint64(bulk.Series) {
			b.Fatalf("counted %+v", got)
		}
	}
}

// BenchmarkCount measures verification's parse of the same dump.
func BenchmarkCount(b *testing.B) {
	bulk := hyperbytedbtest.Bulk{DB: "bench", N: 200_000, Series: 40}
	var dump strings.Builder
	dump.WriteString("# DML\n# CONTEXT-DATABASE:bench\n# CONTEXT-RETENTION-POLICY:autogen\n")
	for k := range bulk.N {
		dump.WriteString(bulk.Line(k))
	}
	data := dump.String()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		got, err := Count(context.Background(), strings.NewReader(data))
		if err != nil || got.Points != uint64(bulk.N) || got.Series != uint64(bulk.Series) {
			b.Fatalf("counted %+v, %v", got, err)
		}
	}
}
