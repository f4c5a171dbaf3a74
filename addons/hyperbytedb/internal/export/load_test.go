package export

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
)

func TestLoadRejects(t *testing.T) { forEachServer(t, testLoadRejects) }

func testLoadRejects(t *testing.T, kind serverKind) {
	s := startServer(t, kind)
	s.api.Exec(t, "CREATE DATABASE typed")
	s.api.Write(t, "typed", "autogen", "m v=1i 1\nf v=1.5 1\n")
	const head = "# DDL\nCREATE DATABASE typed\n# DML\n# CONTEXT-DATABASE:typed\n# CONTEXT-RETENTION-POLICY:autogen\n"
	tests := map[string]struct {
		dump      string // the dump to load
		want      string // substring of the error
		wantHyper string // substring of the error on HyperbyteDB, if not want
	}{
		"syntax error names line and column": {
			dump: head + "m v=2i 2\nm v=oops 3\n",
			want: "line 7, column 5: ",
		},
		"point without timestamp": {
			dump: head + "m v=2i\n",
			want: "line 6: point has no timestamp",
		},
		"point before any context": {
			dump: "# DML\nm v=1i 1\n",
			want: "line 2: point before any",
		},
		"data before the sections": {
			dump: "m v=1i 1\n",
			want: "line 1: data before",
		},
		"unsupported DDL": {
			dump: "# DDL\nDROP DATABASE typed\n",
			want: `line 2: unsupported DDL statement "DROP DATABASE typed"`,
		},
		"field type conflict inside the dump": {
			dump: head + "m v=2i 2\nm v=2.5 3\nm v=3i 4\n",
			want: `line 7: field "v" is float here and integer at an earlier point`,
		},
		"field type conflict with the server": {
			dump:      head + "m v=2.5 3\n",
			want:      `(dump line 6) rejected: server answered 400: partial write: field type conflict`,
			wantHyper: `field "v" is integer on the server and float in the backup; HyperbyteDB would convert the values silently`,
		},
		"integer into a float field of the server": {
			dump:      head + "f v=2i 3\n",
			want:      `(dump line 6) rejected: server answered 400: partial write: field type conflict`,
			wantHyper: `field "v" is float on the server and integer in the backup; HyperbyteDB would convert the values silently`,
		},
		"unparsable for the server names the line": {
			dump: head + "m v=2i 2\nm w=2u 3\n",
			want: `(dump line 7) rejected: server answered 400: partial write: unable to parse 'm w=2u 3'`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Load(context.Background(), s.client, LoadOptions{Mode: ModeMerge, BatchSize: 10}, bytes.NewReader([]byte(tc.dump)))
			if kind == hyperbyteDB && tc.wantHyper != "" {
				tc.want = tc.wantHyper
			}
			assertErr(t, err, tc.want)
		})
	}
	// Measurement f holds its one float point: the refused restore wrote
	// nothing (the emulation would have stored the integer as a float).
	var f []string
	for key, fields := range hyperbytedbtest.ReadContents(t, s.api).Points {
		if strings.HasPrefix(key, "typed\x1fautogen\x1ff\x1f") {
			f = append(f, key+" "+fields)
		}
	}
	if len(f) != 1 || !strings.Contains(f[0], "float:1.5") {
		t.Fatalf("measurement f holds %q after the refused restore, want its one point v=1.5", f)
	}
}

// Long lines end a batch before its point count does: 5000 points of
// 8 KiB are 40 MB, which InfluxDB 1.x refuses as one body (max-body-size
// 25 MB).
func TestLoadBoundsBatchBytes(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind serverKind) {
		s := startServer(t, kind)
		var dump strings.Builder
		dump.WriteString(ddlHead)
		pad := strings.Repeat("x", 8<<10)
		const points = 5000
		for i := range points {
			fmt.Fprintf(&dump, "long v=\"%d %s\" %d\n", i, pad, i+1)
		}
		stats := load(t, s, LoadOptions{Mode: ModeMerge}, []byte(dump.String()))
		if stats.Points != points || len(hyperbytedbtest.ReadContents(t, s.api).Points) != points {
			t.Fatalf("restored %d points, want %d", stats.Points, points)
		}
	})
}
