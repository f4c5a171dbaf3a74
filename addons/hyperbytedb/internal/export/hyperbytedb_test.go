package export

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/internal/influx"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// Tests of what HyperbyteDB does differently, run against both servers:
// InfluxDB 1.x holds these names and data exactly; on HyperbyteDB the
// driver must fail naming them, never change data silently.

const ddlHead = "# DDL\nCREATE DATABASE names\n# DML\n# CONTEXT-DATABASE:names\n# CONTEXT-RETENTION-POLICY:autogen\n"

func TestRestoreNamesHyperbyteDBCannotHold(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind serverKind) {
		s := startServer(t, kind)
		tests := map[string]struct {
			points string // dump lines after ddlHead
			want   string // error on HyperbyteDB
		}{
			"field key sanitized":  {points: "cpu usage.idle=1 1\n", want: `field key "usage.idle": HyperbyteDB stores and answers it as "usage_idle"`},
			"tag key sanitized":    {points: "cpu,host.name=a v=1 1\n", want: `tag key "host.name": HyperbyteDB stores and answers it as "host_name"`},
			"leading digit":        {points: "cpu 1v=1 1\n", want: `field key "1v": HyperbyteDB stores and answers it as "_1v"`},
			"colon in measurement": {points: "app:cpu v=1 1\n", want: `measurement "app:cpu" holds ':': HyperbyteDB lists it as "cpu"`},
			"colliding measurements": {points: "a.b v=1 1\na_b v=2 2\n",
				want: `would share HyperbyteDB's table names_autogen_a_b`},
			"backslashes in a measurement": {points: `a\\b v=1 1` + "\n",
				want: `measurement "a\\\\b": HyperbyteDB's line-protocol parser reads \\ as one backslash`},
			"backslashes in a tag value": {points: `cpu,host=a\\b v=1 1` + "\n",
				want: `tag host="a\\\\b" of measurement "cpu": HyperbyteDB's line-protocol parser reads \\ as one backslash`},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				_, err := Load(context.Background(), s.client, LoadOptions{Mode: ModeReplace}, strings.NewReader(ddlHead+tc.points))
				if kind == influxDB {
					if err != nil {
						t.Fatalf("InfluxDB holds these names, restore failed: %v", err)
					}
					return
				}
				assertErr(t, err, tc.want)
				if got := hyperbytedbtest.ReadContents(t, s.api).Points; len(got) != 0 {
					t.Fatalf("a refused restore wrote points: %v", got)
				}
			})
		}
	})
}

func TestDumpNamesHyperbyteDBCannotHold(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind serverKind) {
		tests := map[string]struct {
			points string // written to the server
			want   string // dump error on HyperbyteDB
		}{
			"field key sanitized":  {points: "cpu usage.idle=1 1\n", want: `field key "usage.idle": HyperbyteDB stores and answers it as "usage_idle"`},
			"tag key sanitized":    {points: "cpu,host.name=a v=1 1\n", want: `tag key "host.name"`},
			"colon in measurement": {points: "app:cpu v=1 1\n", want: `cpu is listed but has no fields`},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				s := startServer(t, kind)
				s.api.Exec(t, "CREATE DATABASE names")
				s.api.Write(t, "names", "autogen", tc.points)
				err := Dump(context.Background(), s.client, DumpOptions{}, io.Discard)
				if kind == influxDB {
					if err != nil {
						t.Fatalf("InfluxDB holds these names, dump failed: %v", err)
					}
					return
				}
				assertErr(t, err, tc.want)
			})
		}
	})
}

// Replace mode must not touch a database whose name starts with the
// restored one's: HyperbyteDB's DROP DATABASE foo drops foobar too.
func TestReplaceKeepsPrefixSiblings(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind serverKind) {
		s := startServer(t, kind)
		ds := hyperbytedbtest.Dataset{Databases: []hyperbytedbtest.Database{
			{Name: "foo", Policies: []hyperbytedbtest.Policy{{Name: "autogen"}}},
			{Name: "foobar", Policies: []hyperbytedbtest.Policy{{Name: "autogen"}}},
		}}
		for i, db := range []string{"foo", "foobar", "foo"} {
			ds.Points = append(ds.Points, hyperbytedbtest.Point{DB: db, RP: "autogen", Measurement: "m",
				Fields: map[string]any{"v": int64(i)}, Time: time.Unix(0, int64(i+1))})
		}
		ds.Write(t, s.api)
		data := dump(t, s, DumpOptions{Databases: []string{"foo"}})
		extra := hyperbytedbtest.Point{DB: "foo", RP: "autogen", Measurement: "m", Fields: map[string]any{"v": int64(9)}, Time: time.Unix(0, 99)}
		hyperbytedbtest.Dataset{Points: []hyperbytedbtest.Point{extra}}.Write(t, s.api)
		load(t, s, LoadOptions{Mode: ModeReplace}, data)
		assertContents(t, s, ds.Contents()) // foobar intact, foo's extra point gone
	})
}

// A restore checks the server afterwards: HyperbyteDB's stale schema
// cache hides measurements written after a DROP DATABASE.
func TestRestoreChecksServerSchema(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind serverKind) {
		s := startServer(t, kind)
		s.front.Exec(t, "CREATE DATABASE names")
		s.front.Write(t, "names", "autogen", "cpu v=1 1\n")
		s.front.Exec(t, "DROP DATABASE names")
		_, err := Load(context.Background(), s.client, LoadOptions{Mode: ModeMerge}, strings.NewReader(ddlHead+"cpu v=2 2\n"))
		if kind == influxDB {
			if err != nil {
				t.Fatal(err)
			}
			return
		}
		assertErr(t, err, `after the restore the server does not list measurement`)
	})
}

// Restore takes dumps in any order, such as the series-first order of
// earlier releases (measurement, series, then time over all days).
func TestLoadSeriesFirstDump(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind serverKind) {
		s := startServer(t, kind)
		const day = int64(24 * time.Hour)
		var b strings.Builder
		b.WriteString("# INFLUXDB EXPORT: 1677-09-21T00:12:43.145224194Z - 2262-04-11T23:47:16.854775806Z\n")
		b.WriteString("# DDL\nCREATE DATABASE old WITH DURATION INF REPLICATION 1 SHARD DURATION 1w NAME autogen\n")
		b.WriteString("# DML\n# CONTEXT-DATABASE:old\n# CONTEXT-RETENTION-POLICY:autogen\n")
		want := hyperbytedbtest.Dataset{Databases: []hyperbytedbtest.Database{{Name: "old", Policies: []hyperbytedbtest.Policy{{Name: "autogen"}}}}}
		for _, host := range []string{"a", "b"} {
			for d := range int64(3) {
				fmt.Fprintf(&b, "cpu,host=%s v=%di,up=true %d\n", host, d, 1_600_000_000_000_000_000+d*day)
				want.Points = append(want.Points, hyperbytedbtest.Point{DB: "old", RP: "autogen", Measurement: "cpu",
					Tags: map[string]string{"host": host}, Fields: map[string]any{"v": d, "up": true},
					Time: time.Unix(0, 1_600_000_000_000_000_000+d*day)})
			}
		}
		load(t, s, LoadOptions{Mode: ModeMerge}, []byte(b.String()))
		assertContents(t, s, want.Contents())
	})
}

// No query answer is larger than a bucket of one measurement: the
// emulation refuses answers over 1 MiB, as HyperbyteDB times out on
// what it cannot build in time, yet the whole measurement is ~7 MB.
func TestDumpBoundsEveryAnswer(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind serverKind) {
		s := startServer(t, kind, servers.WithMaxResponse(1<<20))
		b := hyperbytedbtest.Bulk{DB: "big", N: 60_000, Series: 10}
		b.Write(t, s.api, 0, b.N)
		data := dump(t, s, DumpOptions{})
		if got := bytes.Count(data, []byte("\nbulk,")); got != b.N {
			t.Fatalf("dumped %d points, want %d", got, b.N)
		}
		if kind == hyperbyteDB {
			err := s.client.Stream(context.Background(), influx.Scope{DB: "big"}, `SELECT * FROM "big"."autogen"."bulk" GROUP BY *`, 100, func(*influx.Series) error { return nil })
			assertErr(t, err, "query timeout")
		}
	})
}
