package export

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/internal/influx"
)

func TestDDLRoundTrip(t *testing.T) {
	week := 7 * 24 * time.Hour
	tests := map[string]struct {
		db       string            // database name
		policies []RetentionPolicy // as SHOW RETENTION POLICIES reports them
		want     []string          // the DDL lines
	}{
		"default autogen and a finite policy": {
			db: "metrics",
			policies: []RetentionPolicy{
				{Name: "week", Duration: week, ShardDuration: 24 * time.Hour, Replication: 1},
				{Name: "autogen", ShardDuration: week, Replication: 1, Default: true},
			},
			want: []string{
				"CREATE DATABASE metrics WITH DURATION INF REPLICATION 1 SHARD DURATION 1w NAME autogen",
				"CREATE RETENTION POLICY week ON metrics DURATION 1w REPLICATION 1 SHARD DURATION 1d",
			},
		},
		"names needing quotes": {
			db:       `a "b", c=d ü`,
			policies: []RetentionPolicy{{Name: "one hour", Duration: time.Hour, ShardDuration: time.Hour, Replication: 2, Default: true}},
			want:     []string{`CREATE DATABASE "a \"b\", c=d ü" WITH DURATION 1h REPLICATION 2 SHARD DURATION 1h NAME "one hour"`},
		},
		"no policies": {
			db:   "bare",
			want: []string{"CREATE DATABASE bare"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := ddlStatements(tc.db, tc.policies)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("DDL:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			var parsed []RetentionPolicy
			for _, line := range got {
				db, rp, err := parseDDL(line)
				if err != nil || db != tc.db {
					t.Fatalf("parse %q: database %q, %v", line, db, err)
				}
				if rp != nil {
					parsed = append(parsed, *rp)
				}
			}
			if again := ddlStatements(tc.db, parsed); strings.Join(again, "\n") != strings.Join(got, "\n") {
				t.Fatalf("parsed DDL renders differently:\n%s", strings.Join(again, "\n"))
			}
		})
	}
}

func TestToWire(t *testing.T) {
	tests := map[string]struct {
		lines []string // dump lines of a batch (v2 dialect)
		want  []string // what /write of InfluxDB 1.x gets; nil when verbatim
		err   string   // expected error, with lines numbered from 10
	}{
		"plain points are copied": {
			lines: []string{`m,t=a\ b f=1.5,i=-2i,s="x \"y\" \\z",b=true 10`, `m v=1 2`},
		},
		"only points with newline, tab, CR or quoted keys are re-encoded": {
			lines: []string{`m s="a\nb" 1`, `m v=1 2`, `m s="a\tb\r" 1`, `m k"ey=1i 1`},
			want:  []string{"m s=\"a\nb\" 1", `m v=1 2`, "m s=\"a\tb\r\" 1", `m k\"ey=1i 1`},
		},
		"missing timestamp": {lines: []string{`m v=1 1`, `m v=1`}, err: "line 11: point has no timestamp"},
		"bad number":        {lines: []string{`m v=1x 1`}, err: "line 10, column 5: "},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			buf := []byte(strings.Join(tc.lines, "\n") + "\n")
			got, err := toWire(buf, &batchSchema{})
			if tc.err != "" {
				err = lineError([]int{10, 11, 12, 13}, err)
				if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			want := tc.lines
			if tc.want != nil {
				want = tc.want
			}
			if err != nil || string(got) != strings.Join(want, "\n")+"\n" {
				t.Fatalf("got %q (%v), want %q", got, err, want)
			}
		})
	}
}

func TestFieldValue(t *testing.T) {
	tests := map[string]struct {
		kind lineprotocol.ValueKind // declared field type
		raw  string                 // JSON value from the query answer
		want string                 // line-protocol form; "" for absent
		err  bool                   // conversion must fail
	}{
		"whole float stays float":     {kind: lineprotocol.Float, raw: `1`, want: `1`},
		"float exponent":              {kind: lineprotocol.Float, raw: `1e+21`, want: `1e+21`},
		"integer":                     {kind: lineprotocol.Int, raw: `-9223372036854775808`, want: `-9223372036854775808i`},
		"boolean":                     {kind: lineprotocol.Bool, raw: `false`, want: `false`},
		"string with JSON escapes":    {kind: lineprotocol.String, raw: `"a\"b\\c\nd\u003c"`, want: `"a\"b\\c\nd<"`},
		"string without escapes":      {kind: lineprotocol.String, raw: `"ü x"`, want: `"ü x"`},
		"null is absent":              {kind: lineprotocol.Int, raw: `null`},
		"integer given as float":      {kind: lineprotocol.Int, raw: `1.5`, err: true},
		"string that is not a string": {kind: lineprotocol.String, raw: `12`, err: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v, ok, err := fieldValue(tc.kind, json.RawMessage(tc.raw))
			if tc.err {
				if err == nil {
					t.Fatalf("no error for %s", tc.raw)
				}
				return
			}
			got := ""
			if ok {
				got = v.String()
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}

// TestSeriesChecksNames: rows are encoded in lax mode, so the names of a
// chunk must be checked once up front.
func TestSeriesChecksNames(t *testing.T) {
	tests := map[string]struct {
		name    string            // measurement
		tags    map[string]string // series tags
		columns []string          // answer columns
		want    string            // expected error substring, "" for success
	}{
		"valid":                           {name: "m", tags: map[string]string{"t": "a b"}, columns: []string{"time", "f"}},
		"tag value ending in backslash":   {name: "m", tags: map[string]string{"t": `x\`}, columns: []string{"time", "f"}, want: "invalid tag value"},
		"field key with a control char":   {name: "m", columns: []string{"time", "f\x01"}, want: "invalid field key"},
		"measurement ending in backslash": {name: `m\`, columns: []string{"time", "f"}, want: "invalid measurement"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := &influx.Series{Name: tc.name, Tags: tc.tags, Columns: tc.columns,
				Values: [][]json.RawMessage{{json.RawMessage("1"), json.RawMessage("2")}}}
			kinds := map[string]lineprotocol.ValueKind{tc.columns[1]: lineprotocol.Float}
			var out bytes.Buffer
			d := &dumper{out: bufio.NewWriter(&out)}
			err := d.series(s, kinds)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
