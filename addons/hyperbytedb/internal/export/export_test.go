package export

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/internal/influx"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// Integration tests: each runs against a real InfluxDB 1.x (Debian
// influxd) and against the emulation of HyperbyteDB's v1 API in front of
// one (test/servers/hyperbytedb.go).

// serverKind names a server the tests run against.
type serverKind string

const (
	influxDB    serverKind = "influxdb"
	hyperbyteDB serverKind = "hyperbytedb"
)

var serverKinds = []serverKind{influxDB, hyperbyteDB}

// forEachServer runs test once per server kind, as subtests.
func forEachServer(t *testing.T, test func(t *testing.T, kind serverKind)) {
	for _, kind := range serverKinds {
		t.Run(string(kind), func(t *testing.T) { test(t, kind) })
	}
}

type server struct {
	kind serverKind
	// api reaches the InfluxDB that holds the data, for writing datasets
	// and reading the truth; front is what the driver talks to.
	api, front hyperbytedbtest.Server
	client     *influx.Client
	kill       func()
}

func startServer(t *testing.T, kind serverKind, opts ...servers.HyperbyteDBOption) server {
	t.Helper()
	var s server
	switch kind {
	case influxDB:
		db := servers.StartInfluxDB(t)
		s = server{api: hyperbytedbtest.Server{URL: db.URL}, front: hyperbytedbtest.Server{URL: db.URL}, kill: db.Kill}
	case hyperbyteDB:
		h := servers.StartHyperbyteDB(t, opts...)
		s = server{api: hyperbytedbtest.Server{URL: h.Backend.URL}, front: hyperbytedbtest.Server{URL: h.URL}, kill: h.Kill}
	}
	s.kind = kind
	c, err := influx.New(s.front.URL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := c.HyperbyteDB(); got != (kind == hyperbyteDB) {
		t.Fatalf("%s: client sees HyperbyteDB %t (version %q)", kind, got, c.Version())
	}
	s.client = c
	return s
}

// mixed is the Mixed dataset as the server can hold it exactly.
func mixed(kind serverKind, now time.Time) hyperbytedbtest.Dataset {
	ds := hyperbytedbtest.Mixed(now)
	if kind == hyperbyteDB {
		return ds.ForHyperbyteDB()
	}
	return ds
}

func dump(t *testing.T, s server, opts DumpOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Dump(context.Background(), s.client, opts, &buf); err != nil {
		t.Fatalf("dump: %v", err)
	}
	return buf.Bytes()
}

func load(t *testing.T, s server, opts LoadOptions, data []byte) LoadStats {
	t.Helper()
	stats, err := Load(context.Background(), s.client, opts, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return stats
}

func assertContents(t *testing.T, s server, want hyperbytedbtest.Contents) {
	t.Helper()
	if diff := hyperbytedbtest.Diff(want, hyperbytedbtest.ReadContents(t, s.api), 10); diff != "" {
		t.Fatal(diff)
	}
}

// withInternal adds an _internal database, which a default dump skips.
func withInternal(t *testing.T, s server) {
	s.api.Exec(t, `CREATE DATABASE "_internal"`)
	s.api.Write(t, "_internal", "", "runtime alloc=1i 1\n")
}

func TestDumpRestoreExact(t *testing.T) { forEachServer(t, testDumpRestoreExact) }

func testDumpRestoreExact(t *testing.T, kind serverKind) {
	src, dst := startServer(t, kind), startServer(t, kind)
	ds := mixed(kind, time.Now())
	ds.Write(t, src.api)
	withInternal(t, src)
	want := ds.Contents()
	assertContents(t, src, want) // the dataset itself went in exactly

	first := dump(t, src, DumpOptions{ChunkSize: 3})
	if second := dump(t, src, DumpOptions{}); !bytes.Equal(first, second) {
		t.Fatal("two dumps of unchanged data differ")
	}
	if bytes.Contains(first, []byte("_internal")) {
		t.Fatal("default dump contains _internal")
	}

	stats := load(t, dst, LoadOptions{Mode: ModeMerge}, first)
	if stats.Points != int64(len(ds.Points)) || len(stats.Databases) != 3 {
		t.Fatalf("stats %+v, want %d points in 3 databases", stats, len(ds.Points))
	}
	assertContents(t, dst, want)
	if again := dump(t, dst, DumpOptions{}); !bytes.Equal(first, again) {
		t.Fatalf("dump of the restored server differs from the original dump:\n%s\n---\n%s", first, again)
	}

	// Drop everything on the source and restore there too.
	for _, db := range ds.Databases {
		src.api.Exec(t, "DROP DATABASE "+quote(db.Name))
	}
	load(t, src, LoadOptions{Mode: ModeReplace, BatchSize: 2}, first)
	want.Schema["_internal"] = nil // untouched by the restore
	delete(want.Schema, "_internal")
	assertContents(t, src, want)
}

func quote(name string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `"`
}

func TestDumpSelectedDatabases(t *testing.T) { forEachServer(t, testDumpSelectedDatabases) }

func testDumpSelectedDatabases(t *testing.T, kind serverKind) {
	src, dst := startServer(t, kind), startServer(t, kind)
	ds := mixed(kind, time.Now())
	ds.Write(t, src.api)
	data := dump(t, src, DumpOptions{Databases: []string{"events", hyperbytedbtest.WeirdDB}})
	for _, other := range []string{"metrics", `"cpu"`, "CONTEXT-DATABASE:metrics"} {
		if bytes.Contains(data, []byte(other)) {
			t.Fatalf("dump of selected databases contains %q", other)
		}
	}
	load(t, dst, LoadOptions{Mode: ModeMerge}, data)
	assertContents(t, dst, only(ds, "events", hyperbytedbtest.WeirdDB).Contents())

	_, err := Load(context.Background(), dst.client, LoadOptions{Mode: ModeMerge, Databases: []string{"metrics"}}, bytes.NewReader(data))
	assertErr(t, err, "databases not in the backup: metrics")
	err = Dump(context.Background(), src.client, DumpOptions{Databases: []string{"nope"}}, io.Discard)
	assertErr(t, err, "databases not found on the server: nope")
}

// only returns the part of ds in the given databases.
func only(ds hyperbytedbtest.Dataset, dbs ...string) hyperbytedbtest.Dataset {
	keep := map[string]bool{}
	for _, db := range dbs {
		keep[db] = true
	}
	var out hyperbytedbtest.Dataset
	for _, db := range ds.Databases {
		if keep[db.Name] {
			out.Databases = append(out.Databases, db)
		}
	}
	for _, p := range ds.Points {
		if keep[p.DB] {
			out.Points = append(out.Points, p)
		}
	}
	return out
}

func assertErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one containing %q", err, want)
	}
}

func TestReplaceAndMerge(t *testing.T) { forEachServer(t, testReplaceAndMerge) }

func testReplaceAndMerge(t *testing.T, kind serverKind) {
	s := startServer(t, kind)
	ds := only(mixed(kind, time.Now()), "events", "metrics")
	ds.Write(t, s.api)
	data := dump(t, s, DumpOptions{})
	extra := hyperbytedbtest.Point{DB: "events", RP: "autogen", Measurement: "log",
		Fields: map[string]any{"msg": "not in the backup"}, Time: time.Unix(0, 42)}
	other := hyperbytedbtest.Point{DB: "other", RP: "autogen", Measurement: "m",
		Fields: map[string]any{"v": int64(1)}, Time: time.Unix(0, 7)}
	more := ds
	more.Databases = append(append([]hyperbytedbtest.Database(nil), ds.Databases...), hyperbytedbtest.Database{Name: "other", Policies: []hyperbytedbtest.Policy{{Name: "autogen"}}})
	more.Points = append(append([]hyperbytedbtest.Point(nil), ds.Points...), extra, other)
	hyperbytedbtest.Dataset{Databases: more.Databases[2:], Points: []hyperbytedbtest.Point{extra, other}}.Write(t, s.api)

	load(t, s, LoadOptions{Mode: ModeMerge}, data)
	assertContents(t, s, more.Contents()) // merge keeps the extra point

	load(t, s, LoadOptions{Mode: ModeReplace}, data)
	want := ds
	want.Databases = more.Databases
	want.Points = append(append([]hyperbytedbtest.Point(nil), ds.Points...), other)
	assertContents(t, s, want.Contents()) // replace removed it; "other" was not restored, so untouched
}

// TestReplaceRestoresPolicies: after a replace restore, the dump's
// retention policies have the dump's definitions and its default is the
// default again, also on HyperbyteDB, where the database is emptied
// rather than dropped (a policy the dump lacks stays there, no longer the
// default: docs/hyperbytedb-compatibility.md).
func TestReplaceRestoresPolicies(t *testing.T) { forEachServer(t, testReplaceRestoresPolicies) }

func testReplaceRestoresPolicies(t *testing.T, kind serverKind) {
	s := startServer(t, kind)
	ds := only(mixed(kind, time.Now()), "metrics")
	ds.Write(t, s.api)
	data := dump(t, s, DumpOptions{})
	want := hyperbytedbtest.ReadContents(t, s.api).Schema["metrics"]
	s.api.Exec(t, `ALTER RETENTION POLICY "week" ON "metrics" DURATION 30d`)
	s.api.Exec(t, `CREATE RETENTION POLICY "later" ON "metrics" DURATION INF REPLICATION 1 DEFAULT`)

	load(t, s, LoadOptions{Mode: ModeReplace}, data)
	got := hyperbytedbtest.ReadContents(t, s.api).Schema["metrics"]
	if kind == hyperbyteDB {
		want = append(want, "later|0s|false")
		slices.Sort(want)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("retention policies of metrics after a replace restore = %q, want %q", got, want)
	}
}

func TestRestoreRenamed(t *testing.T) { forEachServer(t, testRestoreRenamed) }

func testRestoreRenamed(t *testing.T, kind serverKind) {
	s := startServer(t, kind)
	ds := only(mixed(kind, time.Now()), "events", "metrics")
	ds.Write(t, s.api)
	data := dump(t, s, DumpOptions{})
	load(t, s, LoadOptions{Mode: ModeReplace, Databases: []string{"events"}, Rename: map[string]string{"events": "events copy"}}, data)

	want := ds.Contents()
	renamed := only(ds, "events")
	renamed.Databases[0].Name = "events copy"
	for i := range renamed.Points {
		renamed.Points[i].DB = "events copy"
	}
	maps.Copy(want.Points, renamed.Contents().Points)
	want.Schema["events copy"] = want.Schema["events"]
	assertContents(t, s, want)

	_, err := Load(context.Background(), s.client, LoadOptions{Mode: ModeMerge, Rename: map[string]string{"events": "metrics"}}, bytes.NewReader(data))
	assertErr(t, err, `databases "events" and "metrics" would both be restored as "metrics"`)
}

func TestDumpTimeWindow(t *testing.T) { forEachServer(t, testDumpTimeWindow) }

func testDumpTimeWindow(t *testing.T, kind serverKind) {
	s := startServer(t, kind)
	ds := only(mixed(kind, time.Now()), "events")
	ds.Write(t, s.api)
	start, end := ds.Points[2].Time, ds.Points[5].Time
	data := dump(t, s, DumpOptions{Start: start, End: end})
	if got := bytes.Count(data, []byte("\nlog,")); got != 3 {
		t.Fatalf("window [%s, %s) dumped %d points, want 3:\n%s", start, end, got, data)
	}
	if !bytes.HasPrefix(data, []byte(headerPrefix+start.UTC().Format(time.RFC3339Nano))) {
		t.Fatalf("header does not state the window: %q", data[:80])
	}
}

func TestDumpFailsWhenServerDies(t *testing.T) { forEachServer(t, testDumpFailsWhenServerDies) }

// The points span many buckets, so the dump is still querying when the
// server dies.
func testDumpFailsWhenServerDies(t *testing.T, kind serverKind) {
	s := startServer(t, kind)
	var lines strings.Builder
	for i := range 200000 {
		fmt.Fprintf(&lines, "m,s=%d v=%di %d\n", i%10, i, int64(i)*int64(time.Second))
	}
	s.api.Exec(t, "CREATE DATABASE big")
	s.api.Write(t, "big", "autogen", lines.String())
	w := &killingWriter{kill: s.kill, after: 64 << 10}
	err := Dump(context.Background(), s.client, DumpOptions{ChunkSize: 100}, w)
	if err == nil {
		t.Fatalf("dump succeeded after the server was killed (%d bytes)", w.n)
	}
	if !strings.Contains(err.Error(), `dump "big"."autogen".m: query`) {
		t.Fatalf("error does not say what failed: %v", err)
	}
}

// killingWriter calls kill once after bytes have been written.
type killingWriter struct {
	kill  func()
	after int
	n     int
}

func (w *killingWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	if w.n >= w.after && w.kill != nil {
		w.kill()
		w.kill = nil
	}
	return len(p), nil
}

// A measurement line protocol cannot carry (one starting with #, made by
// SELECT INTO) fails the dump instead of reading as a comment and
// vanishing from the restore.
func TestDumpRejectsUnwritableMeasurement(t *testing.T) {
	forEachServer(t, testDumpRejectsUnwritableMeasurement)
}

func testDumpRejectsUnwritableMeasurement(t *testing.T, kind serverKind) {
	s := startServer(t, kind)
	s.api.Exec(t, "CREATE DATABASE odd")
	s.api.Write(t, "odd", "autogen", "m v=1 1\n")
	s.api.Exec(t, `SELECT * INTO "odd"."autogen"."#m" FROM "odd"."autogen"."m"`)
	err := Dump(context.Background(), s.client, DumpOptions{}, io.Discard)
	assertErr(t, err, `measurement "#m" starts with #`)
}
