package export

import (
	"bytes"
	"context"
	"testing"
)

func TestLoadRejects(t *testing.T) { forEachServer(t, testLoadRejects) }

func testLoadRejects(t *testing.T, kind serverKind) {
	s := startServer(t, kind)
	s.api.Exec(t, "CREATE DATABASE typed")
	s.api.Write(t, "typed", "autogen", "m v=1i 1\n")
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
}
